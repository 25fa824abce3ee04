// Fault switches: dropped sessions, latency, a connection lost after the call ran; the call log
// never holds a secret; leftovers name what a client left behind; instances are independent.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { XapiSimulator } from "./simulator.js";
import { startXapiSimulator } from "./simulator.js";
import { Session, jsonCall, spawnVm } from "./testing/rpc-client.js";

let sim: XapiSimulator;
const lines: string[] = [];
beforeAll(async () => {
  sim = await startXapiSimulator({ operationMs: 0, password: "correct horse battery staple", logger: (l) => lines.push(l) });
});
afterAll(async () => {
  await sim.close();
});

describe("fault switches", () => {
  it("dropSessions invalidates every session; a new login works", async () => {
    const s = await Session.login(sim.url, sim.username, sim.password);
    sim.faults.dropSessions();
    expect(await s.fails("VM.get_all")).toEqual(["SESSION_INVALID", s.ref]);
    const again = await Session.login(sim.url, sim.username, sim.password);
    expect((await again.call<string[]>("VM.get_all")).length).toBeGreaterThan(0);
    await again.logout();
  });

  it("setLatency delays every answer", async () => {
    const s = await Session.login(sim.url, sim.username, sim.password);
    sim.faults.setLatency(150);
    const t0 = Date.now();
    await s.call("pool.get_all");
    expect(Date.now() - t0).toBeGreaterThanOrEqual(140);
    sim.faults.setLatency(0);
    await s.logout();
  });

  it("dropConnectionOnNext: the call runs, the socket is destroyed before the reply", async () => {
    const s = await Session.login(sim.url, sim.username, sim.password);
    const { ref: vm } = await spawnVm(s, "drop");
    sim.faults.dropConnectionOnNext("VM.start");
    const err = await s.call("VM.start", vm, false, false).catch((e: unknown) => e);
    expect((err as NodeJS.ErrnoException).code).toMatch(/ECONNRESET|EPIPE|socket hang up/i);
    expect(await s.call("VM.get_power_state", vm)).toBe("Running");
    await s.call("VM.hard_shutdown", vm);
    await s.call("VM.destroy", vm);
    await s.logout();
  });

  it("reset turns every switch off", async () => {
    sim.faults.failNext("pool.get_all", "INTERNAL_ERROR", ["x"]);
    sim.faults.setLatency(1000);
    sim.faults.reset();
    const s = await Session.login(sim.url, sim.username, sim.password);
    const t0 = Date.now();
    await s.call("pool.get_all");
    expect(Date.now() - t0).toBeLessThan(900);
    await s.logout();
  });
});

describe("secrets and leftovers", () => {
  it("the call log names methods and outcomes, never the password, session refs or agent secrets", async () => {
    const s = await Session.login(sim.url, sim.username, sim.password);
    await jsonCall(sim.url, "session.login_with_password", ["root", "wrong-password-xyz", "1", "t"]).catch(() => undefined);
    await s.call("pool.get_all");
    const joined = lines.join("\n");
    expect(joined).toContain("session.login_with_password -> ok");
    expect(joined).toContain("session.login_with_password -> SESSION_AUTHENTICATION_FAILED");
    expect(joined).not.toContain(sim.password);
    expect(joined).not.toContain("wrong-password-xyz");
    expect(joined).not.toContain(s.ref);
    expect(joined).not.toContain(s.ref.slice("OpaqueRef:".length));
    await s.logout();
  });

  it("leftovers lists VMs, disks, devices and open sessions until they are gone", async () => {
    const fresh = await startXapiSimulator({ operationMs: 0 });
    try {
      expect(fresh.leftovers()).toEqual([]);
      const s = await Session.login(fresh.url, fresh.username, fresh.password);
      const { ref: vm } = await spawnVm(s, "left");
      const left = fresh.leftovers();
      expect(left).toContain(`pool1: VM left (${vm})`);
      expect(left.some((l) => l.startsWith("pool1: VDI "))).toBe(true);
      expect(left.some((l) => l.startsWith("pool1: VBD "))).toBe(true);
      expect(left.some((l) => l.startsWith("pool1: VIF "))).toBe(true);
      expect(left).toContain("pool1: 1 session(s) still open");
      const vbds = await s.call<string[]>("VM.get_VBDs", vm);
      const vdis = await Promise.all(vbds.map((v) => s.call<string>("VBD.get_VDI", v)));
      await s.call("VM.destroy", vm);
      for (const v of vdis) await s.call("VDI.destroy", v);
      await s.logout();
      expect(fresh.leftovers()).toEqual([]);
      // Another instance knows nothing of this one.
      expect(() => sim.guest("00000000-0000-0000-0000-000000000000")).toThrow(/no VM/);
    } finally {
      await fresh.close();
    }
  });

  it("guest.crash applies actions_after_crash as xenopsd does (preserve keeps the domain paused)", async () => {
    const s = await Session.login(sim.url, sim.username, sim.password);
    const { ref: vm, uuid } = await spawnVm(s, "crash");
    await s.call("VM.set_actions_after_crash", vm, "preserve");
    await s.call("VM.start", vm, false, false);
    sim.guest(uuid).crash();
    expect(await s.call("VM.get_power_state", vm)).toBe("Paused");
    await s.call("VM.hard_reboot", vm);
    expect(sim.guest(uuid).bootCount).toBe(2);
    await s.call("VM.hard_shutdown", vm);
    await s.call("VM.set_actions_after_crash", vm, "destroy");
    await s.call("VM.start", vm, false, false);
    sim.guest(uuid).crash();
    expect(await s.call("VM.get_power_state", vm)).toBe("Halted");
    await s.logout();
  });
});
