// Random concurrent operations (seeded) on many VMs, then the books must balance: every VM's
// resident_on matches its host's resident_VMs, host free memory matches the running VMs, SR
// utilisation matches its VDIs, nothing is left in current_operations, and no call ever failed
// with anything but a XAPI error XAPI would give for it. Interleaving depends on timing, so the
// seed fixes the choice of calls, not their order.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { XapiSimulator } from "./simulator.js";
import { startXapiSimulator } from "./simulator.js";
import { Failure, Session, spawnVm } from "./testing/rpc-client.js";

/** mulberry32: a small seeded PRNG, so a failure replays. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const EXPECTED_ERRORS = new Set(["VM_BAD_POWER_STATE", "OTHER_OPERATION_IN_PROGRESS", "HANDLE_INVALID", "VM_IS_SNAPSHOT", "VDI_IN_USE"]);

let sim: XapiSimulator;
let s: Session;
beforeAll(async () => {
  sim = await startXapiSimulator({ operationMs: 3, migrationMs: 5 });
  s = await Session.login(sim.url, sim.username, sim.password);
});
afterAll(async () => {
  await sim.close();
});

describe("state stays consistent under random concurrent operations", () => {
  it("seed 20261130", { timeout: 60_000 }, async () => {
    const rnd = prng(20261130);
    const hosts = await s.call<string[]>("host.get_all");
    const vms = await Promise.all(Array.from({ length: 8 }, (_, i) => spawnVm(s, `inv-${i}`).then((v) => v.ref)));
    const ops: [string, (vm: string) => unknown[]][] = [
      ["VM.start", (vm) => [vm, false, false]],
      ["VM.clean_shutdown", (vm) => [vm]],
      ["VM.hard_shutdown", (vm) => [vm]],
      ["VM.hard_reboot", (vm) => [vm]],
      ["VM.pause", (vm) => [vm]],
      ["VM.unpause", (vm) => [vm]],
      ["VM.suspend", (vm) => [vm]],
      ["VM.resume", (vm) => [vm, false, false]],
      ["VM.pool_migrate", (vm) => [vm, hosts[Math.floor(rnd() * hosts.length)], { live: "true" }]],
      ["VM.snapshot", (vm) => [vm, "inv-snap"]],
    ];
    const unexpected: string[] = [];
    let succeeded = 0;
    await Promise.all(
      Array.from({ length: 6 }, async () => {
        for (let i = 0; i < 40; i++) {
          const vm = vms[Math.floor(rnd() * vms.length)] ?? "";
          const [method, args] = ops[Math.floor(rnd() * ops.length)] ?? ops[0]!;
          const run =
            rnd() < 0.5
              ? s.call(method, ...args(vm)).then(() => void succeeded++)
              : s.task(method, ...args(vm)).then((t) => {
                  if (t.status === "success") succeeded++;
                  else if (!EXPECTED_ERRORS.has(t.error_info[0] ?? "")) unexpected.push(`${method}: ${t.error_info.join(" ")}`);
                });
          await run.catch((e: unknown) => {
            if (!(e instanceof Failure) || !EXPECTED_ERRORS.has(e.code)) unexpected.push(`${method}: ${String(e)}`);
          });
        }
      }),
    );
    expect(unexpected).toEqual([]);
    // The mix must actually change state, not only collect refusals.
    expect(succeeded).toBeGreaterThan(25);

    const all = await s.call<Record<string, { power_state: string; resident_on: string; current_operations: object; memory_static_max: number; is_control_domain: boolean }>>("VM.get_all_records");
    const hostRecs = await s.call<Record<string, { resident_VMs: string[]; metrics: string }>>("host.get_all_records");
    for (const [ref, vm] of Object.entries(all)) {
      expect(vm.current_operations).toEqual({});
      const live = vm.power_state === "Running" || vm.power_state === "Paused";
      if (live) expect(hostRecs[vm.resident_on]?.resident_VMs).toContain(ref);
      else expect(vm.resident_on).toBe("OpaqueRef:NULL");
    }
    for (const [host, rec] of Object.entries(hostRecs)) {
      const metrics = await s.call<{ memory_total: number; memory_free: number }>("host_metrics.get_record", rec.metrics);
      const used = rec.resident_VMs.filter((r) => !all[r]?.is_control_domain).reduce((n, r) => n + Number(all[r]?.memory_static_max), 0);
      expect(metrics.memory_free, host).toBe(metrics.memory_total - 2 * 1024 ** 3 - used);
      for (const r of rec.resident_VMs) expect(all[r]?.resident_on).toBe(host);
    }
    const srs = await s.call<Record<string, { VDIs: string[]; physical_utilisation: number }>>("SR.get_all_records");
    for (const sr of Object.values(srs)) {
      const sizes = await Promise.all(sr.VDIs.map((v) => s.call<number>("VDI.get_virtual_size", v)));
      expect(sr.physical_utilisation).toBe(sizes.reduce((a, b) => a + b, 0));
    }
  });
});
