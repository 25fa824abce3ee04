// The simulator hosted in the worker thread: the same wire, the same refusals, its controls over
// the message port. (The worker runs the built dist/worker-host.js: `pnpm build` first.)
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startXapiSimulatorInWorker, type RemoteXapiSimulator } from "./simulator-worker.js";
import { Session } from "./testing/rpc-client.js";

let sim: RemoteXapiSimulator;
let s: Session;

beforeAll(async () => {
  sim = await startXapiSimulatorInWorker({ operationMs: 0, migrationMs: 0 });
  s = await Session.login(sim.url, sim.username, sim.password);
});

afterAll(async () => {
  await s?.call("session.logout").catch(() => undefined);
  await sim?.close();
});

describe("startXapiSimulatorInWorker", () => {
  it("serves XAPI from the worker, as strict as in process", async () => {
    const [template] = await s.call<string[]>("VM.get_by_name_label", "Other install media");
    expect(await s.fails("VM.start", template, false, false)).toEqual(["VM_IS_TEMPLATE", template, "start"]);
  });

  it("drives guests and fault switches over the port", async () => {
    const [template] = await s.call<string[]>("VM.get_by_name_label", "Other install media");
    const before = (await sim.leftovers()).length;
    const vm = await s.call<string>("VM.clone", template, "worker-guest");
    await s.call("VM.provision", vm);
    await s.call("VM.set_is_a_template", vm, false);
    const uuid = await s.call<string>("VM.get_uuid", vm);
    const guest = sim.guest(uuid);
    expect(await guest.bootCount()).toBe(0);
    await guest.setAgent("absent");
    expect(await guest.agentMode()).toBe("absent");

    await sim.faults.failNext("VM.get_power_state", "INTERNAL_ERROR", ["injected"]);
    expect(await s.fails("VM.get_power_state", vm)).toEqual(["INTERNAL_ERROR", "injected"]);
    expect(await s.call("VM.get_power_state", vm)).toBe("Halted");

    expect((await sim.leftovers()).length).toBeGreaterThan(before);
    await s.call("VM.destroy", vm);
    await expect(sim.guest(uuid).bootCount()).rejects.toThrow(/no VM with uuid/);
  });

  it("refuses a logger, which cannot cross to the worker", async () => {
    await expect(startXapiSimulatorInWorker({ logger: () => undefined } as never)).rejects.toThrow(TypeError);
  });
});
