// The inside of the simulator worker (see simulator-worker.ts): the same startXapiSimulator, its
// HTTP endpoints served from this thread's event loop, and its test controls (guests, fault
// switches, leftovers) answered over the parent port. One worker hosts many simulators.
import { parentPort } from "node:worker_threads";
import { startXapiSimulator, type XapiSimulator } from "./simulator.js";
import type { WorkerReply, WorkerRequest } from "./worker-protocol.js";

const port = parentPort;
if (!port) throw new Error("worker-host.js runs only as a worker thread (startXapiSimulatorInWorker)");

const sims = new Map<number, XapiSimulator>();
let nextId = 1;

function simOf(sid: number): XapiSimulator {
  const sim = sims.get(sid);
  if (!sim) throw new Error(`no simulator ${sid} in this worker (closed?)`);
  return sim;
}

/** Calls a method, or reads a property, of an object by name (the guest's and faults' own members only). */
function invoke(target: object, member: string, args: readonly unknown[]): unknown {
  const value = (target as Record<string, unknown>)[member];
  if (typeof value === "function") return (value as (...a: unknown[]) => unknown).apply(target, [...args]);
  if (value === undefined && !(member in target)) throw new Error(`unknown member ${member}`);
  return value;
}

async function handle(req: WorkerRequest): Promise<unknown> {
  switch (req.op) {
    case "start": {
      const sim = await startXapiSimulator(req.options);
      const sid = nextId++;
      sims.set(sid, sim);
      return { sid, url: sim.url, slaveUrl: sim.slaveUrl, secondPoolUrl: sim.secondPoolUrl, username: sim.username, password: sim.password };
    }
    case "guest": {
      const guest = simOf(req.sid).guest(req.vmUuid);
      const out = invoke(guest, req.member, req.args);
      // Maps and arrays of the guest are copies, as structured clone makes them.
      return out;
    }
    case "fault":
      return invoke(simOf(req.sid).faults, req.member, req.args);
    case "leftovers":
      return [...simOf(req.sid).leftovers()];
    case "close": {
      const sim = sims.get(req.sid);
      sims.delete(req.sid);
      await sim?.close();
      return undefined;
    }
  }
}

port.on("message", (req: WorkerRequest) => {
  handle(req).then(
    (value) => port.postMessage({ id: req.id, ok: true, value } satisfies WorkerReply),
    (err: unknown) =>
      port.postMessage({ id: req.id, ok: false, error: err instanceof Error ? err.message : String(err) } satisfies WorkerReply),
  );
});
