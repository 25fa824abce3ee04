// Async calls return tasks (pending -> success | failure | cancelled, results XML-encoded as XAPI
// stores them); event.from returns changes after a token, waits when there are none, and times out.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { XapiSimulator } from "./simulator.js";
import { startXapiSimulator } from "./simulator.js";
import { Session, spawnVm } from "./testing/rpc-client.js";

interface Batch {
  events: { id: number; class: string; operation: string; ref: string; snapshot?: Record<string, unknown> }[];
  valid_ref_counts: Record<string, number>;
  token: string;
}

let sim: XapiSimulator;
let s: Session;
beforeAll(async () => {
  sim = await startXapiSimulator({ operationMs: 5 });
  s = await Session.login(sim.url, sim.username, sim.password);
});
afterAll(async () => {
  await sim.close();
});

describe("tasks", () => {
  it("a task goes pending -> success with the result XAPI encodes, and can be destroyed", async () => {
    const [template] = await s.call<string[]>("VM.get_by_name_label", "Other install media");
    sim.faults.hangNextTask("VM.clone");
    const task = await s.call<string>("Async.VM.clone", template, "t1");
    const rec = await s.call<{ status: string; name_label: string; allowed_operations: string[] }>("task.get_record", task);
    expect(rec.status).toBe("pending");
    expect(rec.name_label).toBe("Async.VM.clone");
    expect(rec.allowed_operations).toEqual(["cancel"]);
    sim.faults.releaseHungTasks();
    let done: { status: string; result: string; progress: number; error_info: string[] };
    do done = await s.call("task.get_record", task);
    while (done.status === "pending");
    expect(done.status).toBe("success");
    expect(done.progress).toBe(1);
    expect(done.error_info).toEqual([]);
    const ref = /^<value>(OpaqueRef:[^<]+)<\/value>$/.exec(done.result)?.[1] ?? "";
    expect(await s.call("VM.get_name_label", ref)).toBe("t1");
    await s.call("task.destroy", task);
    expect(await s.fails("task.get_record", task)).toEqual(["HANDLE_INVALID", "task", task]);
  });

  it("a failed call ends the task in failure with error_info [code, ...params]; void results are empty", async () => {
    const { ref: vm } = await spawnVm(s, "t2");
    const bad = await s.task("VM.pause", vm);
    expect(bad.status).toBe("failure");
    expect(bad.error_info).toEqual(["VM_BAD_POWER_STATE", vm, "running", "halted"]);
    const ok = await s.task("VM.start", vm, false, false);
    expect(ok).toMatchObject({ status: "success", result: "" });
  });

  it("faults: failNext fails the next call or task; hangNextTask holds a task until cancelled", async () => {
    const { ref: vm } = await spawnVm(s, "t3");
    sim.faults.failNext("VM.start", "NO_HOSTS_AVAILABLE");
    expect(await s.fails("VM.start", vm, false, false)).toEqual(["NO_HOSTS_AVAILABLE"]);
    sim.faults.failNext("VM.start", "HOST_NOT_ENOUGH_FREE_MEMORY", ["1", "0"]);
    expect((await s.task("VM.start", vm, false, false)).error_info).toEqual(["HOST_NOT_ENOUGH_FREE_MEMORY", "1", "0"]);
    expect(await s.call("VM.get_power_state", vm)).toBe("Halted");
    sim.faults.hangNextTask("VM.start");
    const task = await s.call<string>("Async.VM.start", vm, false, false);
    await new Promise((r) => setTimeout(r, 50));
    expect(await s.call("task.get_status", task)).toBe("pending");
    expect(sim.leftovers()).toContain(`pool1: pending task Async.VM.start (${task})`);
    await s.call("task.cancel", task);
    await new Promise((r) => setTimeout(r, 20));
    expect(await s.call("task.get_status", task)).toBe("cancelled");
    expect(await s.call("VM.get_power_state", vm)).toBe("Halted");
  });
});

describe("event.from", () => {
  it("an empty token returns every current object; a token returns only later changes, add/mod/del", async () => {
    const first = await s.call<Batch>("event.from", ["vm"], "", 0);
    expect(first.token).toMatch(/^\d{20},\d{20}$/);
    expect(first.events.length).toBe(first.valid_ref_counts.vm);
    expect(first.events.every((e) => e.operation === "add" && e.class === "vm")).toBe(true);

    const { ref: vm } = await spawnVm(s, "ev");
    const next = await s.call<Batch>("event.from", ["vm"], first.token, 1);
    const mine = next.events.filter((e) => e.ref === vm);
    expect(mine).toHaveLength(1);
    expect(mine[0]?.operation).toBe("add");
    expect(mine[0]?.snapshot?.name_label).toBe("ev");

    await s.call("VM.start", vm, false, false);
    const started = await s.call<Batch>("event.from", [`vm/${vm}`], next.token, 1);
    expect(started.events.map((e) => [e.operation, e.snapshot?.power_state])).toEqual([["mod", "Running"]]);

    await s.call("VM.hard_shutdown", vm);
    await s.call("VM.destroy", vm);
    const gone = await s.call<Batch>("event.from", ["vm"], started.token, 1);
    expect(gone.events.filter((e) => e.ref === vm).map((e) => e.operation)).toEqual(["del"]);
  });

  it("waits for a change, or returns empty at the timeout", async () => {
    const { token } = await s.call<Batch>("event.from", ["task"], "", 0);
    const t0 = Date.now();
    const empty = await s.call<Batch>("event.from", ["task"], token, 0.2);
    expect(empty.events).toEqual([]);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(180);
    const [template] = await s.call<string[]>("VM.get_by_name_label", "Other install media");
    const waiting = s.call<Batch>("event.from", ["task"], token, 5);
    await new Promise((r) => setTimeout(r, 30));
    const t1 = Date.now();
    await s.call("Async.VM.clone", template, "ev2");
    const batch = await waiting;
    expect(Date.now() - t1).toBeLessThan(2000);
    expect(batch.events[0]?.class).toBe("task");
  });

  it("with eventBatchMs, a woken event.from waits that long and returns the operation's changes in one batch, as XAPI does", async () => {
    const batched = await startXapiSimulator({ operationMs: 5, eventBatchMs: 200 });
    try {
      const b = await Session.login(batched.url, batched.username, batched.password);
      const [template] = await b.call<string[]>("VM.get_by_name_label", "Other install media");
      const { token } = await b.call<Batch>("event.from", ["task"], "", 0);
      const waiting = b.call<Batch>("event.from", ["task"], token, 5);
      await new Promise((r) => setTimeout(r, 30));
      const t0 = Date.now();
      const task = await b.call<string>("Async.VM.clone", template, "batched");
      const batch = await waiting;
      expect(Date.now() - t0).toBeGreaterThanOrEqual(150);
      // The clone (5 ms) ended within the wait: its task shows up once, finished.
      const mine = batch.events.filter((e) => e.ref === task);
      expect(mine).toHaveLength(1);
      expect(mine[0]?.snapshot?.status).toBe("success");
      // Changes already there are returned at once, without the wait.
      const t1 = Date.now();
      const at = await b.call<Batch>("event.from", ["task"], token, 5);
      expect(at.events.some((e) => e.ref === task)).toBe(true);
      expect(Date.now() - t1).toBeLessThan(150);
    } finally {
      await batched.close();
    }
  });

  it("a malformed token is EVENT_FROM_TOKEN_PARSE_FAILURE [token]", async () => {
    expect(await s.fails("event.from", ["vm"], "not-a-token", 0)).toEqual(["EVENT_FROM_TOKEN_PARSE_FAILURE", "not-a-token"]);
  });
});
