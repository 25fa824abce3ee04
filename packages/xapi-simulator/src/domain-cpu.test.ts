// CPU time as XAPI exposes it: a per-vCPU counter that grows only while the domain runs, read raw
// from GET /vm_rrd (`last_ds` of the DERIVE sources cpu<N>) and as a rate from VM.query_data_source.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DomainCpu } from "./domain-cpu.js";
import type { XapiSimulator } from "./simulator.js";
import { startXapiSimulator } from "./simulator.js";
import { Session, spawnVm } from "./testing/rpc-client.js";

describe("DomainCpu", () => {
  it("counts utilisation x wall time per vCPU while running, nothing while paused or halted, afresh for a new domain", () => {
    let now = 0;
    const cpu = new DomainCpu(0.5, () => now);
    expect(cpu.sample("vm")).toBeUndefined();
    cpu.transition("vm", { power: "Halted", domid: -1 }, { power: "Running", domid: 3, vcpus: 2 });
    now = 2000;
    expect(cpu.sample("vm")).toEqual({ perVcpu: [1, 1], rate: 0.5, running: true });
    cpu.transition("vm", { power: "Running", domid: 3 }, { power: "Paused", domid: 3, vcpus: 2 });
    now = 10_000;
    expect(cpu.sample("vm")).toEqual({ perVcpu: [1, 1], rate: 0, running: false });
    cpu.transition("vm", { power: "Paused", domid: 3 }, { power: "Running", domid: 3, vcpus: 2 });
    now = 12_000;
    expect(cpu.sample("vm")?.perVcpu).toEqual([2, 2]);
    cpu.transition("vm", { power: "Running", domid: 3 }, { power: "Halted", domid: -1, vcpus: 2 });
    now = 20_000;
    expect(cpu.sample("vm")?.perVcpu).toEqual([2, 2]);
    cpu.transition("vm", { power: "Halted", domid: -1 }, { power: "Running", domid: 4, vcpus: 1 });
    expect(cpu.sample("vm")?.perVcpu).toEqual([0]);
    cpu.forget("vm");
    expect(cpu.sample("vm")).toBeUndefined();
  });
});

describe("GET /vm_rrd and VM.query_data_source", () => {
  let sim: XapiSimulator;
  let s: Session;
  beforeAll(async () => {
    sim = await startXapiSimulator({ operationMs: 0, migrationMs: 0 });
    s = await Session.login(sim.url, sim.username, sim.password);
  });
  afterAll(async () => {
    await sim.close();
  });

  const rrd = async (uuid: string, session = s.ref): Promise<{ status: number; text: string }> => {
    const res = await fetch(`${sim.url}/vm_rrd?session_id=${encodeURIComponent(session)}&uuid=${uuid}`);
    return { status: res.status, text: await res.text() };
  };
  const lastDs = (xml: string, name: string): number => {
    const m = new RegExp(`<ds><name>${name}</name><type>DERIVE</type>.*?<last_ds>([^<]+)</last_ds>`).exec(xml);
    if (!m) throw new Error(`no ${name} in ${xml.slice(0, 200)}`);
    return Number(m[1]);
  };

  it("serves a running VM's counters growing, a paused one's standing still, and refuses a bad session", async () => {
    const { ref, uuid } = await spawnVm(s, "cpu");
    expect((await rrd(uuid)).status).toBe(404);
    await s.call("VM.start", ref, false, false);
    const first = await rrd(uuid);
    expect(first.status).toBe(200);
    expect(first.text).toMatch(/^<\?xml version="1.0"\?><rrd><version>0003<\/version><step>5<\/step>/);
    const a = lastDs(first.text, "cpu0");
    await new Promise((r) => setTimeout(r, 40));
    const b = lastDs((await rrd(uuid)).text, "cpu0");
    expect(b).toBeGreaterThan(a);
    expect(await s.call("VM.query_data_source", ref, "cpu0")).toBeCloseTo(0.25);
    expect(await s.call("VM.query_data_source", ref, "cpu_usage")).toBeCloseTo(0.25);
    expect((await s.fails("VM.query_data_source", ref, "cpu99"))[0]).toBe("INTERNAL_ERROR");

    await s.call("VM.pause", ref);
    const p1 = lastDs((await rrd(uuid)).text, "cpu0");
    await new Promise((r) => setTimeout(r, 30));
    expect(lastDs((await rrd(uuid)).text, "cpu0")).toBe(p1);
    expect(await s.call("VM.query_data_source", ref, "cpu0")).toBe(0);

    await s.call("VM.hard_shutdown", ref);
    expect((await s.fails("VM.query_data_source", ref, "cpu0"))[0]).toBe("INTERNAL_ERROR");
    expect((await rrd(uuid, "OpaqueRef:not-a-session")).status).toBe(401);
  });
});
