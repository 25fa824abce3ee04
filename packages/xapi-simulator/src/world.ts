// Everything one simulator instance holds: its two pools, the guests (by VM uuid, so they follow a
// VM across pools), the message registry, fault switches, timings and the log.
import { timingSafeEqual } from "node:crypto";
import { XapiError } from "./errors.js";
import { Faults } from "./faults.js";
import { Guest } from "./guest.js";
import type { XapiPool } from "./pool.js";
import type { MessageDef } from "./registry.js";
import type { TaskControl } from "./tasks.js";
import { allGenericMessages } from "./handlers/generic.js";
import { deviceMessages } from "./handlers/devices.js";
import { hostMessages } from "./handlers/host.js";
import { sessionTaskEventMessages } from "./handlers/session-task-event.js";
import { vmMessages } from "./handlers/vm.js";

/** Timings and credentials of a simulator instance. */
export interface WorldOptions {
  readonly username: string;
  readonly password: string;
  /** How long a VM operation (start, shutdown, clone, ...) keeps the VM busy. */
  readonly operationMs: number;
  /** How long clean_shutdown/clean_reboot wait for a guest that ignores ACPI (XAPI: 1200 s). */
  readonly cleanShutdownTimeoutMs: number;
  /** Multiplies the agent plugin's waits (its `timeout` argument and 0.5 s poll); 1 is real time. */
  readonly agentTimeScale: number;
  /** How late a `slow` agent answers. */
  readonly slowAgentMs: number;
  /** How long a woken event.from waits before it collects the changes (XAPI: 50 ms; 0: at once). */
  readonly eventBatchMs: number;
}

/** The registry of every message the simulator answers, by "Class.name". */
export function buildRegistry(): Map<string, MessageDef> {
  const registry = new Map<string, MessageDef>();
  // Hand-written messages override generated ones of the same name.
  for (const def of [...allGenericMessages(), ...sessionTaskEventMessages(), ...vmMessages(), ...deviceMessages(), ...hostMessages()]) {
    registry.set(`${def.cls}.${def.name}`, def);
  }
  return registry;
}

// Handlers keep no state of their own (everything comes through the call's context): one table
// serves every simulator in the process, built once (a suite starts one simulator per scenario).
let sharedRegistry: ReadonlyMap<string, MessageDef> | undefined;

/** One simulator instance's state. */
export class World {
  readonly pools: XapiPool[] = [];
  readonly guests = new Map<string, Guest>();
  readonly registry: ReadonlyMap<string, MessageDef> = (sharedRegistry ??= buildRegistry());
  readonly faults: Faults;
  readonly tasks = new Map<string, TaskControl>();
  private readonly urls = new Map<XapiPool, string>();
  private readonly internalSessions = new Set<string>();

  constructor(
    readonly options: WorldOptions,
    readonly log: (line: string) => void,
    migrationMs: number,
    /** False when nobody listens: the per-call line is not even formatted. */
    readonly logging = true,
  ) {
    this.faults = new Faults(migrationMs);
    this.faults.onDropSessions = () => {
      for (const p of this.pools) p.dropSessions();
    };
  }

  setUrl(pool: XapiPool, url: string): void {
    this.urls.set(pool, url);
  }

  urlOf(pool: XapiPool): string {
    return this.urls.get(pool) ?? "";
  }

  poolByMasterUrl(url: string): XapiPool | undefined {
    const norm = url.replace(/\/+$/, "");
    return this.pools.find((p) => this.urlOf(p) === norm);
  }

  /** session.login_with_password: SESSION_AUTHENTICATION_FAILED [user, reason] on bad credentials. */
  login(pool: XapiPool, user: string, password: string, originator: string): string {
    const ok = user === this.options.username && sameSecret(password, this.options.password);
    if (!ok) throw new XapiError("SESSION_AUTHENTICATION_FAILED", [user, "Authentication failure"]);
    return pool.login(user, originator);
  }

  /** A pool-internal session (migrate_receive's), not counted as a client's leftover. */
  internalLogin(pool: XapiPool): string {
    const ref = pool.login("__pool_internal__", "xapi");
    this.internalSessions.add(ref);
    return ref;
  }

  isInternalSession(ref: string): boolean {
    return this.internalSessions.has(ref);
  }

  /** The guest inside the VM with this uuid (created on first use). */
  guestOf(uuid: string): Guest {
    let g = this.guests.get(uuid);
    if (!g) {
      g = new Guest(uuid, {
        disk: () => this.guestDisk(uuid),
        isWindows: () => {
          const found = this.findVm(uuid);
          return found !== undefined && (found.pool.db.get("VM", found.ref).platform as Record<string, string>).viridian === "true";
        },
        crash: () => {
          const found = this.findVm(uuid);
          if (!found) throw new Error(`no VM with uuid ${uuid}`);
          found.pool.crashVm(found.ref);
        },
      });
      this.guests.set(uuid, g);
    }
    return g;
  }

  private guestDisk(uuid: string): { read(): Record<string, string>; write(d: Record<string, string>): void } {
    const found = this.findVm(uuid);
    if (!found) throw new Error(`no VM with uuid ${uuid}`);
    const vdi = found.pool.rootVdi(found.ref);
    if (!vdi) throw new Error(`VM ${uuid} has no disk to hold data`);
    const disk = found.pool.disk(vdi);
    return { read: () => disk.readGuestData(), write: (d) => disk.writeGuestData(d) };
  }

  /** The pool and ref of the (non-snapshot) VM with this uuid. */
  findVm(uuid: string): { pool: XapiPool; ref: string } | undefined {
    for (const pool of this.pools) {
      const ref = pool.db.findByUuid("VM", uuid);
      if (ref && pool.db.get("VM", ref).is_a_snapshot !== true) return { pool, ref };
    }
    return undefined;
  }

  forgetGuestIfGone(uuid: string): void {
    if (!this.findVm(uuid)) this.guests.delete(uuid);
  }

  /** task.cancel */
  cancelTask(pool: XapiPool, ref: string): void {
    const task = pool.db.get("task", ref);
    const control = this.tasks.get(ref);
    if (task.status !== "pending" || !control) {
      throw new XapiError("OPERATION_NOT_ALLOWED", [`Task ${ref} is ${String(task.status)}, it cannot be cancelled`]);
    }
    pool.db.update("task", ref, { status: "cancelling", allowed_operations: [] });
    control.cancel();
  }

  leftovers(): string[] {
    const out: string[] = [];
    for (const pool of this.pools) {
      for (const l of pool.leftovers()) out.push(l);
    }
    return out;
  }
}

function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a, "utf8");
  const y = Buffer.from(b, "utf8");
  return x.length === y.length && timingSafeEqual(x, y);
}
