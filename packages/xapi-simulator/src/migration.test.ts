// pool_migrate between the two hosts of pool 1, and migrate_send to pool 2 (its own endpoint)
// after host.migrate_receive there, carrying the VM's disks and guest.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { XapiSimulator } from "./simulator.js";
import { startXapiSimulator } from "./simulator.js";
import { Session, spawnVm } from "./testing/rpc-client.js";

let sim: XapiSimulator;
let s: Session;
let s2: Session;
beforeAll(async () => {
  sim = await startXapiSimulator({ operationMs: 0, migrationMs: 0 });
  s = await Session.login(sim.url, sim.username, sim.password);
  s2 = await Session.login(sim.secondPoolUrl, sim.username, sim.password);
});
afterAll(async () => {
  await sim.close();
});

describe("VM.pool_migrate", () => {
  it("moves a running VM to the other host without rebooting it; memory follows", async () => {
    const { ref: vm, uuid } = await spawnVm(s, "pm");
    await s.call("VM.start", vm, false, false);
    const from = await s.call<string>("VM.get_resident_on", vm);
    const to = (await s.call<string[]>("host.get_all")).find((h) => h !== from) ?? "";
    const freeTo = await s.call<number>("host.compute_free_memory", to);
    sim.guest(uuid).writeData("k", "v");
    await s.call("VM.pool_migrate", vm, to, { live: "true" });
    expect(await s.call("VM.get_resident_on", vm)).toBe(to);
    expect(await s.call("host.get_resident_VMs", from)).not.toContain(vm);
    expect(await s.call("host.get_resident_VMs", to)).toContain(vm);
    expect(await s.call("host.compute_free_memory", to)).toBe(freeTo - 1024 ** 3);
    expect(sim.guest(uuid).bootCount).toBe(1);
    expect(sim.guest(uuid).readData("k")).toBe("v");
  });

  it("a cancelled migration leaves the VM running on its source", async () => {
    const { ref: vm } = await spawnVm(s, "pm-cancel");
    await s.call("VM.start", vm, false, false);
    const from = await s.call<string>("VM.get_resident_on", vm);
    const to = (await s.call<string[]>("host.get_all")).find((h) => h !== from) ?? "";
    // Long enough that the cancel below lands first on a loaded machine (300 ms did not, in a CI run
    // with every package's tests at once: the task had succeeded); the cancel ends it at once.
    sim.faults.setMigrationDuration(30_000);
    const task = await s.call<string>("Async.VM.pool_migrate", vm, to, { live: "true" });
    await new Promise((r) => setTimeout(r, 50));
    expect(Object.values(await s.call<Record<string, string>>("VM.get_current_operations", vm))).toEqual(["pool_migrate"]);
    await s.call("task.cancel", task);
    await new Promise((r) => setTimeout(r, 30));
    sim.faults.setMigrationDuration(0);
    expect(await s.call("task.get_status", task)).toBe("cancelled");
    expect(await s.call("VM.get_resident_on", vm)).toBe(from);
    expect(await s.call("VM.get_power_state", vm)).toBe("Running");
  });
});

describe("cross-pool VM.migrate_send", () => {
  it("checks maps first, then moves the VM, its snapshot and its disk data to pool 2", async () => {
    const { ref: vm, uuid } = await spawnVm(s, "xp");
    await s.call("VM.start", vm, false, false);
    sim.guest(uuid).writeData("marker", "crossed");
    const snap = await s.call<string>("VM.snapshot", vm, "xp-snap");
    const [host2] = await s2.call<string[]>("host.get_all");
    const [net2] = await s2.call<string[]>("network.get_all");
    const [sr2] = await s2.call<string[]>("SR.get_all");
    const dest = await s2.call<Record<string, string>>("host.migrate_receive", host2, net2, {});
    expect(Object.keys(dest).sort()).toEqual(["SM", "host", "master", "session_id", "xenops"]);
    expect(dest.master).toBe(sim.secondPoolUrl);

    const vbds = await s.call<string[]>("VM.get_VBDs", vm);
    const vdi = await s.call<string>("VBD.get_VDI", vbds[0]);
    const [vif] = await s.call<string[]>("VM.get_VIFs", vm);
    expect(await s.fails("VM.assert_can_migrate", vm, dest, true, {}, { [vif ?? ""]: net2 }, {}, {})).toEqual(["VDI_NOT_IN_MAP", vdi]);
    expect(await s.fails("VM.assert_can_migrate", vm, dest, true, { [vdi]: sr2 }, {}, {}, {})).toEqual(["VIF_NOT_IN_MAP", vif]);
    await s.call("VM.assert_can_migrate", vm, dest, true, { [vdi]: sr2 }, { [vif ?? ""]: net2 }, {}, {});

    const t = await s.task("VM.migrate_send", vm, dest, true, { [vdi]: sr2 }, { [vif ?? ""]: net2 }, {}, {});
    expect(t.status, JSON.stringify(t.error_info)).toBe("success");
    const newRef = /<value>(.*)<\/value>/.exec(t.result)?.[1] ?? "";
    expect(await s.fails("VM.get_by_uuid", uuid)).toEqual(["UUID_INVALID", "VM", uuid]);
    expect(await s.fails("VM.get_record", snap)).toEqual(["HANDLE_INVALID", "VM", snap]);
    expect(await s2.call("VM.get_by_uuid", uuid)).toBe(newRef);
    const rec = await s2.call<{ power_state: string; resident_on: string; snapshots: string[] }>("VM.get_record", newRef);
    expect(rec.power_state).toBe("Running");
    expect(rec.resident_on).toBe(host2);
    expect(rec.snapshots).toHaveLength(1);
    expect(sim.guest(uuid).readData("marker")).toBe("crossed");
    const vdi2 = await s2.call<string>("VBD.get_VDI", (await s2.call<string[]>("VM.get_VBDs", newRef))[0]);
    expect(await s2.call("VDI.get_SR", vdi2)).toBe(sr2);
    expect(sim.leftovers().filter((l) => l.startsWith("pool1: VM xp"))).toEqual([]);
    expect(sim.leftovers()).toContain(`pool2: VM xp (${newRef})`);
  });

  it("a halted VM arrives halted, a suspended one suspended with a suspend image in pool 2; a paused one may not go", async () => {
    const [host2] = await s2.call<string[]>("host.get_all");
    const [net2] = await s2.call<string[]>("network.get_all");
    const [sr2] = await s2.call<string[]>("SR.get_all");
    for (const state of ["Halted", "Suspended", "Paused"] as const) {
      const { ref: vm, uuid } = await spawnVm(s, `xp-${state}`);
      if (state !== "Halted") await s.call("VM.start", vm, state === "Paused", false);
      if (state === "Suspended") await s.call("VM.suspend", vm);
      const dest = await s2.call<Record<string, string>>("host.migrate_receive", host2, net2, {});
      const vdi = await s.call<string>("VBD.get_VDI", (await s.call<string[]>("VM.get_VBDs", vm))[0]);
      const [vif] = await s.call<string[]>("VM.get_VIFs", vm);
      const args = [vm, dest, false, { [vdi]: sr2 }, { [vif ?? ""]: net2 }, {}, {}];
      if (state === "Paused") {
        expect(await s.fails("VM.migrate_send", ...args)).toEqual(["VM_BAD_POWER_STATE", vm, "halted, suspended, running", "paused"]);
        continue;
      }
      const moved = await s.call<string>("VM.migrate_send", ...args);
      const rec = await s2.call<{ uuid: string; power_state: string; suspend_VDI: string; resident_on: string }>("VM.get_record", moved);
      expect(rec).toMatchObject({ uuid, power_state: state, resident_on: "OpaqueRef:NULL" });
      if (state === "Suspended") expect(await s2.call("VDI.get_SR", rec.suspend_VDI)).toBe(sr2);
      else expect(rec.suspend_VDI).toBe("OpaqueRef:NULL");
    }
  });

  it("a destination session that is not open there fails the call", async () => {
    const { ref: vm } = await spawnVm(s, "xp-bad");
    const [host2] = await s2.call<string[]>("host.get_all");
    const [net2] = await s2.call<string[]>("network.get_all");
    const dest = await s2.call<Record<string, string>>("host.migrate_receive", host2, net2, {});
    const forged = { ...dest, session_id: "OpaqueRef:forged" };
    expect(await s.fails("VM.migrate_send", vm, forged, false, {}, {}, {}, {})).toEqual(["SESSION_INVALID", "OpaqueRef:forged"]);
    expect(await s.call("VM.get_power_state", vm)).toBe("Halted");
  });
});
