import { InstanceNotFoundError, InvalidInputError, type ComputeDriver } from "@virtkit/core";
import { describe, expect, it } from "vitest";
import { fakeEnvironment } from "../environments/fake-environment.js";
import { BENCH_OPERATIONS, parseBenchReport } from "./bench-report.js";
import { latencyStats, percentile } from "./latency-stats.js";
import { benchSummary, renderBench } from "./render-bench.js";
import { benchSettings, parseBenchOperations, runBench } from "./run-bench.js";

const driver = { name: "fake", version: "0.1.0", spec: "fake" };

/** The driver with `method` replaced, every call of every method counted. */
function instrument(calls: Map<string, number>, replace: Record<string, (...args: unknown[]) => Promise<unknown>> = {}) {
  return (d: ComputeDriver): ComputeDriver =>
    new Proxy(d, {
      get(target, key) {
        const value = Reflect.get(target, key, target) as unknown;
        if (typeof key !== "string" || typeof value !== "function") return value;
        return (...args: unknown[]) => {
          calls.set(key, (calls.get(key) ?? 0) + 1);
          return replace[key] ? replace[key](...args) : (value as (...a: unknown[]) => unknown).apply(target, args);
        };
      },
    });
}

describe("runBench against the fake", () => {
  it("times every operation once per instance, measures throughput, and leaves nothing", async () => {
    const calls = new Map<string, number>();
    const report = await runBench({
      driver,
      environment: fakeEnvironment({ wrapDriver: instrument(calls) }),
      count: 5,
      concurrency: 2,
    });
    expect(report).toMatchObject({ schema: "virtkit.bench/1", ok: true, interrupted: false, leaks: [], cleanupErrors: [] });
    expect(report.settings).toMatchObject({ count: 5, concurrency: 2 });
    expect(report.operations.map((o) => o.operation)).toEqual([...BENCH_OPERATIONS]);
    for (const o of report.operations) {
      expect(o.status, o.operation).toBe("measured");
      if (o.status !== "measured") continue;
      const l = o.latency;
      expect(l.samples, o.operation).toBe(5);
      expect(l.minMs).toBeLessThanOrEqual(l.p50Ms);
      expect(l.p50Ms).toBeLessThanOrEqual(l.p95Ms);
      expect(l.p95Ms).toBeLessThanOrEqual(l.p99Ms);
      expect(l.p99Ms).toBeLessThanOrEqual(l.maxMs);
    }
    expect(report.throughput).toMatchObject({ status: "measured", concurrency: 2, instances: 5 });
    if (report.throughput?.status === "measured") expect(report.throughput.instancesPerSecond).toBeGreaterThan(0);
    // 5 lifecycles + 5 throughput instances, each spawned once and destroyed once.
    expect(calls.get("spawn")).toBe(10);
    expect(calls.get("destroy")).toBe(10);
    expect(calls.get("pause")).toBe(5);
    expect(calls.get("reboot")).toBe(10);
    expect(report.driver.capabilities).toMatchObject({ pause: true });
    // The JSON round-trips through the reader the matrix uses.
    expect(parseBenchReport(JSON.parse(JSON.stringify(report)))).toEqual(report);
    expect(renderBench(report)).toMatch(/^spawn\s+measured\s+5\s/m);
    expect(renderBench(report)).toMatch(/OK: everything created was destroyed/);
    expect(benchSummary(report)).toMatch(/^bench: spawn p50 [\d.]+ \/ p95 [\d.]+ ms · destroy p50 .* inst\/s at 2$/);
  });

  it("skips what the driver does not declare, with the reason, and never calls it", async () => {
    const calls = new Map<string, number>();
    const report = await runBench({
      driver,
      environment: fakeEnvironment({
        capabilities: { pause: false, suspend: false, instanceSnapshots: false, softReboot: false },
        wrapDriver: instrument(calls),
      }),
      count: 2,
      operations: ["spawn", "pause", "unpause", "resume", "snapshotRevert", "rebootSoft", "rebootHard", "destroy"],
    });
    expect(report.ok).toBe(true);
    const by = Object.fromEntries(report.operations.map((o) => [o.operation, o]));
    expect(Object.keys(by)).toEqual(["spawn", "pause", "unpause", "resume", "snapshotRevert", "rebootSoft", "rebootHard", "destroy"]);
    for (const [op, cap] of [
      ["pause", "pause"],
      ["unpause", "pause"],
      ["resume", "suspend"],
      ["snapshotRevert", "instanceSnapshots"],
      ["rebootSoft", "softReboot"],
    ] as const) {
      expect(by[op], op).toEqual({ operation: op, capability: cap, status: "skipped", reason: `capability ${cap} not declared by the driver` });
    }
    expect(by.rebootHard).toMatchObject({ status: "measured", latency: { samples: 2 } });
    for (const m of ["pause", "unpause", "suspend", "resume", "createInstanceSnapshot", "revertToInstanceSnapshot"]) expect(calls.get(m), m).toBeUndefined();
    expect(calls.get("reboot")).toBe(2);
    // Not selected: not run, not reported.
    expect(calls.get("getInfo")).toBeUndefined();
    expect(report.throughput).toBeUndefined();
  });

  it("runs an unselected prerequisite untimed (unpause needs a pause)", async () => {
    const calls = new Map<string, number>();
    const report = await runBench({ driver, environment: fakeEnvironment({ wrapDriver: instrument(calls) }), count: 3, operations: ["unpause"] });
    expect(report.operations).toEqual([expect.objectContaining({ operation: "unpause", status: "measured", latency: expect.objectContaining({ samples: 3 }) })]);
    expect(calls.get("pause")).toBe(3);
  });

  it("stops at a failing spawn, reports it typed, and still cleans up", async () => {
    let spawns = 0;
    const report = await runBench({
      driver,
      environment: fakeEnvironment({
        wrapDriver: (d) =>
          instrument(new Map(), {
            spawn: async (...args) => {
              // The second spawn fails after the first succeeded: something to clean up.
              if (++spawns === 2) throw new InstanceNotFoundError("boom-uuid");
              return d.spawn(...(args as Parameters<ComputeDriver["spawn"]>));
            },
          })(d),
      }),
      count: 3,
    });
    expect(report.ok).toBe(false);
    expect(report.error).toMatchObject({ operation: "spawn", instance: expect.stringMatching(/-2$/), code: "VIRTKIT_INSTANCE_NOT_FOUND" });
    expect(report.operations.find((o) => o.operation === "spawn")).toMatchObject({ status: "failed", reason: expect.stringMatching(/^VIRTKIT_INSTANCE_NOT_FOUND: /) });
    expect(report.throughput).toMatchObject({ status: "not-run", reason: expect.stringMatching(/spawn of .* failed/) });
    expect(report.leaks).toEqual([]);
    expect(renderBench(report)).toMatch(/FAILED: spawn of \S+-2 failed: VIRTKIT_INSTANCE_NOT_FOUND/);
  });

  it("reports what cleanup finds left behind as leaks", async () => {
    const report = await runBench({
      driver,
      environment: fakeEnvironment({ wrapDriver: instrument(new Map(), { destroy: async () => undefined }) }),
      count: 1,
      operations: ["spawn", "destroy"],
    });
    expect(report.ok).toBe(false);
    expect(report.error).toBeUndefined();
    expect(report.leaks?.some((l) => /still listed/.test(l))).toBe(true);
    expect(report.leaks?.some((l) => /left on fake host/.test(l))).toBe(true);
    expect(benchSummary(report)).toMatch(/^bench FAILED \(leaks\)/);
  });

  it("gives every call a deadline", async () => {
    const report = await runBench({
      driver,
      environment: fakeEnvironment({ wrapDriver: instrument(new Map(), { getInfo: () => new Promise(() => undefined) }) }),
      count: 1,
      timeoutMs: 50,
      operations: ["getInfo"],
    });
    expect(report.error).toMatchObject({ operation: "getInfo", code: "VIRTKIT_OPERATION_TIMEOUT" });
    expect(report.leaks).toEqual([]);
  });

  it("gives cleanup its own budget, not the per-call --timeout", async () => {
    // A driver that honours the deadline it is given: listing takes 150 ms, more than --timeout 50.
    const slowList = async (...args: unknown[]) => {
      const { timeoutMs } = (args[0] ?? {}) as { timeoutMs?: number };
      await new Promise((r) => setTimeout(r, Math.min(150, timeoutMs ?? 150)));
      if ((timeoutMs ?? Infinity) < 150) throw Object.assign(new Error("listing timed out"), { code: "VIRTKIT_OPERATION_TIMEOUT" });
      return [];
    };
    const report = await runBench({
      driver,
      environment: fakeEnvironment({ wrapDriver: instrument(new Map(), { listInstanceUuids: slowList }) }),
      count: 1,
      timeoutMs: 50,
      operations: ["spawn", "destroy"],
    });
    expect(report).toMatchObject({ ok: true, leaks: [], cleanupErrors: [] });
    expect(report.leakCheckIncomplete).toBeUndefined();
  });

  it("says the leak check did not complete (leaks: null and why), never leaks: []", async () => {
    const hangs = await runBench({
      driver,
      environment: fakeEnvironment({ wrapDriver: instrument(new Map(), { listInstanceUuids: () => new Promise(() => undefined) }) }),
      count: 1,
      timeoutMs: 50,
      cleanupTimeoutMs: 300,
      operations: ["spawn", "destroy"],
    });
    expect(hangs).toMatchObject({ ok: false, leaks: null });
    expect(hangs.leakCheckIncomplete).toBe("the leak check did not finish within the cleanup budget (300 ms)");
    expect(hangs.cleanupErrors).toEqual(["cleanup did not finish within 300 ms; state unknown"]);
    expect(renderBench(hangs)).toMatch(/Leaks: unknown, the leak check did not complete \(the leak check did not finish/);
    expect(renderBench(hangs)).toMatch(/FAILED: leak check incomplete; 1 cleanup error/);
    expect(benchSummary(hangs)).toMatch(/^bench FAILED \(leak check incomplete\)/);
    expect(parseBenchReport(JSON.parse(JSON.stringify(hangs)))).toEqual(hangs);

    const refuses = await runBench({
      driver,
      environment: fakeEnvironment({
        wrapDriver: instrument(new Map(), { listInstanceUuids: async () => Promise.reject(new Error("connection reset")) }),
      }),
      count: 1,
      operations: ["spawn", "destroy"],
    });
    expect(refuses).toMatchObject({ ok: false, leaks: null });
    expect(refuses.leakCheckIncomplete).toMatch(/^the driver's instance lists on \S+ could not be read: Error: connection reset$/);
  });

  it("stops on its signal (Ctrl-C) and cleans up what was in flight", async () => {
    const controller = new AbortController();
    const calls = new Map<string, number>();
    const running = runBench({
      driver,
      environment: fakeEnvironment({ driverOptions: { latencyMs: 5 }, wrapDriver: instrument(calls) }),
      count: 1000,
      concurrency: 4,
      signal: controller.signal,
    });
    setTimeout(() => controller.abort(new Error("SIGINT")), 100);
    const report = await running;
    expect(report).toMatchObject({ interrupted: true, ok: false, leaks: [], cleanupErrors: [] });
    expect(report.error).toBeUndefined();
    expect(calls.get("spawn")).toBeLessThan(1000);
    expect(report.throughput).toMatchObject({ status: "not-run", reason: "the bench was interrupted" });
  });
});

describe("bench settings and figures", () => {
  it("refuses bad settings typed", () => {
    expect(() => benchSettings({ count: 0 })).toThrow(InvalidInputError);
    expect(() => benchSettings({ concurrency: 1.5 })).toThrow(/concurrency/);
    expect(() => parseBenchOperations("spawn,nope")).toThrow(/unknown operation "nope"; known: spawn, getInfo/);
    expect(() => parseBenchOperations(" , ")).toThrow(InvalidInputError);
    expect(parseBenchOperations("destroy, spawn,destroy")).toEqual(["destroy", "spawn"]);
    expect(benchSettings({ operations: ["destroy", "spawn"] }).operations).toEqual(["spawn", "destroy"]);
  });

  it("computes nearest-rank percentiles", () => {
    const hundred = Array.from({ length: 100 }, (_, i) => 100 - i);
    expect(percentile([...hundred].sort((a, b) => a - b), 50)).toBe(50);
    expect(latencyStats(hundred)).toEqual({ samples: 100, minMs: 1, maxMs: 100, meanMs: 50.5, p50Ms: 50, p95Ms: 95, p99Ms: 99 });
    expect(latencyStats([3])).toMatchObject({ p50Ms: 3, p99Ms: 3 });
    expect(latencyStats([])).toBeUndefined();
  });

  it("reads only its own schema version", () => {
    expect(() => parseBenchReport({ schema: "virtkit.bench/2" })).toThrow(/expected "virtkit.bench\/1"/);
    expect(() => parseBenchReport([])).toThrow(/not a JSON object/);
    expect(() =>
      parseBenchReport({ schema: "virtkit.bench/1", driver: { name: "x" }, settings: { count: 1, concurrency: 1 }, operations: [{ operation: "spawn", status: "measured", latency: {} }] }),
    ).toThrow(/operations\[0\]\.latency is incomplete/);
    const base = { schema: "virtkit.bench/1", driver: { name: "x" }, settings: { count: 1, concurrency: 1 }, operations: [], notes: [], ok: false };
    expect(() => parseBenchReport({ ...base, leaks: null })).toThrow(/leaks is null but leakCheckIncomplete gives no reason/);
    expect(() => parseBenchReport({ ...base, leaks: null, leakCheckIncomplete: "x", ok: true })).toThrow(/ok is true although/);
    expect(() => parseBenchReport({ ...base, leaks: [], leakCheckIncomplete: "x" })).toThrow(/although leaks is a list/);
    expect(parseBenchReport({ ...base, leaks: null, leakCheckIncomplete: "timed out" }).leaks).toBeNull();
  });
});

describe("bench figures in the support matrix", () => {
  it("adds a latency line to the named column of the Markdown and HTML views, never to the JSON", async () => {
    const { buildMatrix } = await import("../matrix/build-matrix.js");
    const { renderMarkdown } = await import("../matrix/render-markdown.js");
    const { renderHtml } = await import("../matrix/render-html.js");
    const { summarize } = await import("../types.js");
    const run = (name: string) => ({
      driver: { name },
      notes: [],
      level: "MUST" as const,
      startedAt: "2026-11-30T00:00:00.000Z",
      durationMs: 1,
      runner: "direct" as const,
      results: [],
      ...summarize([], "MUST"),
    });
    const bench = await runBench({ driver: { name: "alpha" }, environment: fakeEnvironment(), count: 2, operations: ["spawn", "destroy"] });
    const matrix = buildMatrix([run("alpha"), run("beta")], [], []);
    const md = renderMarkdown(matrix, { bench: [bench] });
    expect(md).toMatch(/^\| _latency \(virtkit conformance bench\)_ \| \| bench: spawn p50 [\d.]+ \/ p95 [\d.]+ ms · destroy p50 [\d.]+ \/ p95 [\d.]+ ms \| — \|$/m);
    expect(md).toMatch(/\*\*alpha\*\*: bench: .*\(2 instances, 1 at a time; \d+ cpus, load /);
    expect(renderMarkdown(matrix)).not.toMatch(/latency/);
    const html = renderHtml(matrix, undefined, { bench: [bench] });
    expect(html).toMatch(/<th scope="col" data-driver="alpha">alpha<br><span class="level">0 pass · 0 fail<\/span><br><span class="level bench" data-bench="ok">bench: spawn p50 /);
    expect(html).not.toMatch(/data-driver="beta">beta[^<]*<br><span class="level">0 pass · 0 fail<\/span><br><span class="level bench"/);
    expect(JSON.stringify(matrix)).not.toMatch(/p50/);
  });
});
