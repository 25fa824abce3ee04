// The power-state table, exhaustively: every VM call in every power state either succeeds and
// lands in XAPI's resulting state, or fails with VM_BAD_POWER_STATE [vm, expected, actual] exactly
// as xapi_vm_lifecycle.ml words it (lower case, XAPI's order of the allowed states).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { XapiSimulator } from "./simulator.js";
import { startXapiSimulator } from "./simulator.js";
import { Session, spawnVm } from "./testing/rpc-client.js";

type State = "Halted" | "Paused" | "Running" | "Suspended";
const STATES: State[] = ["Halted", "Paused", "Running", "Suspended"];

interface Case {
  readonly call: string;
  readonly allowed: readonly State[];
  /** XAPI's expected-state text in VM_BAD_POWER_STATE. */
  readonly expected: string;
  /** Power state after success (undefined: the VM is gone, or unchanged). */
  readonly after?: State | "same" | "gone";
  readonly args: (ctx: { s: Session; vm: string; host: string; other: string }) => unknown[];
}

const CASES: Case[] = [
  { call: "VM.start", allowed: ["Halted"], expected: "halted", after: "Running", args: ({ vm }) => [vm, false, false] },
  { call: "VM.start_on", allowed: ["Halted"], expected: "halted", after: "Running", args: ({ vm, host }) => [vm, host, false, false] },
  { call: "VM.clean_shutdown", allowed: ["Running"], expected: "running", after: "Halted", args: ({ vm }) => [vm] },
  { call: "VM.clean_reboot", allowed: ["Running"], expected: "running", after: "Running", args: ({ vm }) => [vm] },
  { call: "VM.pause", allowed: ["Running"], expected: "running", after: "Paused", args: ({ vm }) => [vm] },
  { call: "VM.suspend", allowed: ["Running"], expected: "running", after: "Suspended", args: ({ vm }) => [vm] },
  { call: "VM.pool_migrate", allowed: ["Running"], expected: "running", after: "Running", args: ({ vm, other }) => [vm, other, { live: "true" }] },
  { call: "VM.hard_shutdown", allowed: ["Paused", "Suspended", "Running"], expected: "paused, suspended, running", after: "Halted", args: ({ vm }) => [vm] },
  { call: "VM.shutdown", allowed: ["Paused", "Suspended", "Running"], expected: "paused, suspended, running", after: "Halted", args: ({ vm }) => [vm] },
  { call: "VM.hard_reboot", allowed: ["Paused", "Running"], expected: "paused, running", after: "Running", args: ({ vm }) => [vm] },
  { call: "VM.unpause", allowed: ["Paused"], expected: "paused", after: "Running", args: ({ vm }) => [vm] },
  { call: "VM.resume", allowed: ["Suspended"], expected: "suspended", after: "Running", args: ({ vm }) => [vm, false, false] },
  { call: "VM.resume_on", allowed: ["Suspended"], expected: "suspended", after: "Running", args: ({ vm, host }) => [vm, host, false, false] },
  { call: "VM.destroy", allowed: ["Halted", "Suspended"], expected: "halted, suspended", after: "gone", args: ({ vm }) => [vm] },
  { call: "VM.clone", allowed: ["Halted"], expected: "halted", after: "same", args: ({ vm }) => [vm, "clone"] },
  { call: "VM.copy", allowed: ["Halted"], expected: "halted", after: "same", args: ({ vm }) => [vm, "copy", "OpaqueRef:NULL"] },
  { call: "VM.snapshot", allowed: STATES, expected: "halted, paused, suspended, running", after: "same", args: ({ vm }) => [vm, "snap"] },
];

let sim: XapiSimulator;
let s: Session;
let hosts: string[];

beforeAll(async () => {
  sim = await startXapiSimulator({ operationMs: 0, migrationMs: 0 });
  s = await Session.login(sim.url, sim.username, sim.password);
  hosts = await s.call<string[]>("host.get_all");
});
afterAll(async () => {
  await sim.close();
});

async function vmIn(state: State): Promise<string> {
  const { ref } = await spawnVm(s, `vm-${state}`);
  if (state === "Halted") return ref;
  await s.call("VM.start", ref, state === "Paused", false);
  if (state === "Suspended") await s.call("VM.suspend", ref);
  expect(await s.call("VM.get_power_state", ref)).toBe(state);
  return ref;
}

describe("every VM call in every power state", () => {
  for (const c of CASES) {
    for (const state of STATES) {
      const ok = c.allowed.includes(state);
      it(`${c.call} from ${state} ${ok ? "succeeds" : "is VM_BAD_POWER_STATE"}`, async () => {
        const vm = await vmIn(state);
        const resident = await s.call<string>("VM.get_resident_on", vm);
        const host = hosts[0] ?? "";
        const other = hosts.find((h) => h !== resident) ?? host;
        const args = c.args({ s, vm, host, other });
        if (!ok) {
          expect(await s.fails(c.call, ...args)).toEqual(["VM_BAD_POWER_STATE", vm, c.expected, state.toLowerCase()]);
          expect(await s.call("VM.get_power_state", vm)).toBe(state);
          return;
        }
        // Half of the cases go through Async + task, the other half synchronously.
        if ((c.call.length + state.length) % 2 === 0) {
          const t = await s.task(c.call, ...args);
          expect(t.status, JSON.stringify(t.error_info)).toBe("success");
        } else {
          await s.call(c.call, ...args);
        }
        if (c.after === "gone") {
          expect(await s.fails("VM.get_record", vm)).toEqual(["HANDLE_INVALID", "VM", vm]);
          return;
        }
        const rec = await s.call<{ power_state: string; resident_on: string; current_operations: object }>("VM.get_record", vm);
        expect(rec.power_state).toBe(c.after === "same" ? state : c.after);
        const live = rec.power_state === "Running" || rec.power_state === "Paused";
        expect(rec.resident_on === "OpaqueRef:NULL").toBe(!live);
        if (c.call === "VM.pool_migrate") expect(rec.resident_on).toBe(other);
        expect(rec.current_operations).toEqual({});
      });
    }
  }

  it("allowed_operations follows the power state", async () => {
    const vm = await vmIn("Halted");
    let ops = await s.call<string[]>("VM.get_allowed_operations", vm);
    expect(ops).toEqual(expect.arrayContaining(["start", "clone", "copy", "destroy", "snapshot"]));
    expect(ops).not.toContain("clean_shutdown");
    await s.call("VM.start", vm, false, false);
    ops = await s.call<string[]>("VM.get_allowed_operations", vm);
    expect(ops).toEqual(expect.arrayContaining(["clean_shutdown", "hard_shutdown", "pause", "suspend", "pool_migrate", "snapshot"]));
    expect(ops).not.toContain("start");
    expect(ops).not.toContain("destroy");
  });

  it("templates refuse what XAPI refuses: VM_IS_TEMPLATE [vm, op]; provision and revert only where XAPI allows", async () => {
    const [template] = await s.call<string[]>("VM.get_by_name_label", "Debian Bookworm 12 (virtkit)");
    expect(await s.fails("VM.start", template, false, false)).toEqual(["VM_IS_TEMPLATE", template, "start"]);
    expect(await s.fails("VM.destroy", template)).toEqual(["VM_IS_TEMPLATE", template, "destroy"]);
    const vm = await vmIn("Halted");
    expect(await s.fails("VM.provision", vm)).toEqual(["PROVISION_ONLY_ALLOWED_ON_TEMPLATE"]);
    expect(await s.fails("VM.revert", vm)).toEqual(["REVERT_ONLY_ALLOWED_ON_SNAPSHOT"]);
    const snap = await s.call<string>("VM.snapshot", vm, "s1");
    expect(await s.fails("VM.start", snap, false, false)).toEqual(["VM_IS_SNAPSHOT", snap, "start"]);
  });

  it("every host lists its running control domain, which refuses VM operations as XAPI does", async () => {
    const all = await s.call<Record<string, { is_control_domain: boolean; power_state: string; resident_on: string; domid: number }>>("VM.get_all_records");
    const dom0s = Object.entries(all).filter(([, v]) => v.is_control_domain);
    expect(dom0s.map(([, v]) => v.resident_on).sort()).toEqual([...hosts].sort());
    const [ref, dom0] = dom0s[0] ?? ["", undefined];
    expect(dom0).toMatchObject({ power_state: "Running", domid: 0 });
    expect(await s.fails("VM.clean_shutdown", ref)).toEqual(["OPERATION_NOT_ALLOWED", "This operation is not allowed on a control domain"]);
    expect(await s.fails("VM.destroy", ref)).toEqual(["VM_BAD_POWER_STATE", ref, "halted, suspended", "running"]);
    expect(sim.leftovers()).not.toContain(expect.stringContaining("Control domain"));
  });

  it("blocked_operations (Nova's rescue bootlock) fail the operation with OPERATION_BLOCKED [vm, reason]", async () => {
    const vm = await vmIn("Halted");
    await s.call("VM.add_to_blocked_operations", vm, "start", "bootlock");
    expect(await s.fails("VM.start", vm, false, false)).toEqual(["OPERATION_BLOCKED", vm, "bootlock"]);
    expect(await s.call("VM.get_allowed_operations", vm)).not.toContain("start");
    // start_on is its own operation in XAPI: a lock on "start" alone does not stop it.
    expect(await s.call("VM.get_allowed_operations", vm)).toContain("start_on");
    await s.call("VM.remove_from_blocked_operations", vm, "start");
    await s.call("VM.start", vm, false, false);
    expect(await s.call("VM.get_power_state", vm)).toBe("Running");
  });

  it("OTHER_OPERATION_IN_PROGRESS [VM, vm, op, task] while an async operation runs; hard_shutdown may overtake", async () => {
    const vm = await vmIn("Running");
    sim.faults.hangNextTask("VM.clean_shutdown");
    const task = await s.call<string>("Async.VM.clean_shutdown", vm);
    await new Promise((r) => setTimeout(r, 20));
    expect(await s.call("VM.get_current_operations", vm)).toEqual({ [task]: "clean_shutdown" });
    expect(await s.call("VM.get_allowed_operations", vm)).not.toContain("pause");
    expect(await s.fails("VM.pause", vm)).toEqual(["OTHER_OPERATION_IN_PROGRESS", "VM", vm, "clean_shutdown", task]);
    expect(await s.call("task.get_status", task)).toBe("pending");
    await s.call("task.cancel", task);
    await new Promise((r) => setTimeout(r, 20));
    const t = await s.call<{ status: string; error_info: string[] }>("task.get_record", task);
    expect(t.status).toBe("cancelled");
    expect(t.error_info).toEqual(["TASK_CANCELLED", task]);
    expect(await s.call("VM.get_power_state", vm)).toBe("Running");
    expect(await s.call("VM.get_current_operations", vm)).toEqual({});
    expect(await s.fails("task.cancel", task)).toEqual(["OPERATION_NOT_ALLOWED", `Task ${task} is cancelled, it cannot be cancelled`]);
  });

  it("a guest ignoring ACPI keeps clean_shutdown waiting; hard_shutdown is allowed meanwhile and ends it", async () => {
    const { ref: vm, uuid } = await spawnVm(s, "acpi");
    await s.call("VM.start", vm, false, false);
    sim.guest(uuid).ignoreAcpi(true);
    const task = await s.call<string>("Async.VM.clean_shutdown", vm);
    await new Promise((r) => setTimeout(r, 60));
    expect(await s.call("task.get_status", task)).toBe("pending");
    expect(await s.call("VM.get_power_state", vm)).toBe("Running");
    await s.call("VM.hard_shutdown", vm);
    await new Promise((r) => setTimeout(r, 60));
    const t = await s.call<{ status: string; error_info: string[] }>("task.get_record", task);
    expect(t.status).toBe("failure");
    expect(t.error_info).toEqual(["VM_BAD_POWER_STATE", vm, "running", "halted"]);
  });

  it("a guest ignoring ACPI times clean_reboot out with VM_SHUTDOWN_TIMEOUT [vm, seconds]", async () => {
    const quick = await startXapiSimulator({ operationMs: 0, cleanShutdownTimeoutMs: 100 });
    try {
      const q = await Session.login(quick.url, quick.username, quick.password);
      const { ref: vm, uuid } = await spawnVm(q, "acpi");
      await q.call("VM.start", vm, false, false);
      quick.guest(uuid).ignoreAcpi();
      expect(await q.fails("VM.clean_reboot", vm)).toEqual(["VM_SHUTDOWN_TIMEOUT", vm, "0.1"]);
      expect(quick.guest(uuid).bootCount).toBe(1);
      quick.guest(uuid).ignoreAcpi(false);
      await q.call("VM.clean_reboot", vm);
      expect(quick.guest(uuid).bootCount).toBe(2);
    } finally {
      await quick.close();
    }
  });
});
