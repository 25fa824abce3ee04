// startXapiSimulatorInWorker: the same simulator (startXapiSimulator, unchanged and as strict),
// hosted in a worker thread so its request handling runs on another core than the caller's
// (a conformance run otherwise puts the driver, the kit and the simulator on one event loop).
// One worker per process hosts every simulator started this way; its test controls (guests,
// fault switches, leftovers) travel over the worker's message port and answer asynchronously.
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { Worker } from "node:worker_threads";
import type { XapiFaults } from "./faults.js";
import type { SimulatedGuest } from "./guest.js";
import type { WorkerReply, WorkerRequest, WorkerSimulatorOptions } from "./worker-protocol.js";

export type { WorkerSimulatorOptions } from "./worker-protocol.js";

/** Every member of T as an async call: methods keep their arguments, properties become getters. */
export type Remote<T> = {
  readonly [K in keyof T]: T[K] extends (...args: infer A) => infer R ? (...args: A) => Promise<R> : () => Promise<T[K]>;
};

/** A simulated guest reached across the worker boundary. */
export type RemoteSimulatedGuest = Remote<Omit<SimulatedGuest, "vmUuid">> & { readonly vmUuid: string };

/** A simulator running in the worker: the same as XapiSimulator, its controls asynchronous. */
export interface RemoteXapiSimulator {
  readonly url: string;
  readonly slaveUrl: string;
  readonly secondPoolUrl: string;
  readonly username: string;
  readonly password: string;
  readonly faults: Remote<XapiFaults>;
  /** The guest in the VM with this uuid; its calls reject for an unknown VM. */
  guest(vmUuid: string): RemoteSimulatedGuest;
  leftovers(): Promise<readonly string[]>;
  close(): Promise<void>;
}

const GUEST_MEMBERS = [
  "bootCount",
  "agentMode",
  "ignoresAcpi",
  "agentRequests",
  "networkResets",
  "setAgent",
  "ignoreAcpi",
  "verifyPassword",
  "writeData",
  "readData",
  "files",
  "consoleLines",
  "writeConsole",
  "crash",
] as const satisfies readonly (keyof Omit<SimulatedGuest, "vmUuid">)[];

const FAULT_MEMBERS = [
  "dropSessions",
  "failNext",
  "hangNextTask",
  "releaseHungTasks",
  "setLatency",
  "setMigrationDuration",
  "dropConnectionOnNext",
  "refuseRrd",
  "reset",
] as const satisfies readonly (keyof XapiFaults)[];

// The two lists above must name every member (a new one would otherwise be missing remotely).
type Missing<T, L extends readonly unknown[]> = Exclude<keyof T, L[number]>;
const _allGuest: [Missing<Omit<SimulatedGuest, "vmUuid">, typeof GUEST_MEMBERS>] extends [never] ? true : never = true;
const _allFaults: [Missing<XapiFaults, typeof FAULT_MEMBERS>] extends [never] ? true : never = true;
void _allGuest;
void _allFaults;

/** The worker's script: next to this file once built; from the build when run from source (tests). */
function workerScript(): URL {
  const built = new URL("./worker-host.js", import.meta.url);
  if (existsSync(fileURLToPath(built))) return built;
  return new URL("../dist/worker-host.js", import.meta.url);
}

type Pending = { resolve(v: unknown): void; reject(e: Error): void };

/** The process's simulator worker: started on first use, holds the process open only while in use. */
class SimulatorWorker {
  private readonly worker: Worker;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private live = 0;
  private dead: Error | undefined;

  constructor(onExit: () => void) {
    this.worker = new Worker(workerScript());
    this.worker.unref();
    this.worker.on("message", (reply: WorkerReply) => {
      const p = this.pending.get(reply.id);
      if (!p) return;
      this.pending.delete(reply.id);
      this.updateRef();
      if (reply.ok) p.resolve(reply.value);
      else p.reject(new Error(reply.error));
    });
    const fail = (err: Error) => {
      this.dead ??= err;
      onExit();
      for (const p of this.pending.values()) p.reject(err);
      this.pending.clear();
    };
    this.worker.on("error", fail);
    this.worker.on("exit", (code) => fail(new Error(`the simulator worker exited (${code})`)));
  }

  request<T>(req: DistributiveOmit<WorkerRequest, "id">): Promise<T> {
    if (this.dead) return Promise.reject(this.dead);
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.updateRef();
      this.worker.postMessage({ ...req, id } as WorkerRequest);
    });
  }

  opened(): void {
    this.live++;
    this.updateRef();
  }

  closed(): void {
    this.live = Math.max(0, this.live - 1);
    this.updateRef();
  }

  // A live simulator or an unanswered request keeps the process alive, as an in-process server would.
  private updateRef(): void {
    if (this.live > 0 || this.pending.size > 0) this.worker.ref();
    else this.worker.unref();
  }
}

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

let shared: SimulatorWorker | undefined;

function sharedWorker(): SimulatorWorker {
  shared ??= new SimulatorWorker(() => {
    shared = undefined;
  });
  return shared;
}

/** Starts a simulator (same options as startXapiSimulator, minus the logger) in the process's simulator worker. */
export async function startXapiSimulatorInWorker(options: WorkerSimulatorOptions = {}): Promise<RemoteXapiSimulator> {
  if ("logger" in options) throw new TypeError("a logger cannot cross to the simulator worker: use startXapiSimulator");
  const worker = sharedWorker();
  const info = await worker.request<{ sid: number; url: string; slaveUrl: string; secondPoolUrl: string; username: string; password: string }>({
    op: "start",
    options,
  });
  worker.opened();
  const { sid } = info;
  let closed: Promise<void> | undefined;
  const faults = Object.fromEntries(
    FAULT_MEMBERS.map((member) => [member, (...args: unknown[]) => worker.request({ op: "fault", sid, member, args })]),
  ) as unknown as Remote<XapiFaults>;
  return {
    url: info.url,
    slaveUrl: info.slaveUrl,
    secondPoolUrl: info.secondPoolUrl,
    username: info.username,
    password: info.password,
    faults,
    guest(vmUuid: string): RemoteSimulatedGuest {
      const members = Object.fromEntries(
        GUEST_MEMBERS.map((member) => [member, (...args: unknown[]) => worker.request({ op: "guest", sid, vmUuid, member, args })]),
      );
      return { ...members, vmUuid } as unknown as RemoteSimulatedGuest;
    },
    leftovers: () => worker.request<readonly string[]>({ op: "leftovers", sid }),
    close(): Promise<void> {
      closed ??= worker.request<void>({ op: "close", sid }).finally(() => worker.closed());
      return closed;
    },
  };
}
