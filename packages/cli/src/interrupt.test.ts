// Ctrl-C during `conformance run`: the first stops new scenarios, lets the running ones clean up,
// writes the reports with what finished (marked interrupted) and exits 130; a second exits at once.
// The signal goes to the CLI's whole process group, as a terminal's Ctrl-C does (vitest's worker
// process gets it too).
import { EventEmitter } from "node:events";
import { existsSync } from "node:fs";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunReport, ScenarioResult } from "@virtkit/conformance";
import { summarize } from "@virtkit/conformance";
import { EXIT_INTERRUPTED, interruptedReport, partialReport, watchInterrupt, type SignalSource } from "./interrupt.js";
import { slowSpawnPlugin, startCli, until, wrappedFakePlugin } from "./testing/cli-process.js";

const SLOW = 240_000;

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "virtkit-interrupt-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A stand-in for `process`: signals are emitted by the test, `exit` is recorded. */
class FakeProcess extends EventEmitter implements SignalSource {
  exits: number[] = [];
  override once(event: NodeJS.Signals, listener: () => void): this {
    return super.once(event, listener);
  }
  override removeListener(event: NodeJS.Signals, listener: () => void): this {
    return super.removeListener(event, listener);
  }
  exit(code: number): never {
    this.exits.push(code);
    return undefined as never;
  }
}

describe("watchInterrupt", () => {
  it("aborts on the first signal, ends the grace after graceMs, exits 130 on the second", async () => {
    const proc = new FakeProcess();
    const told: string[] = [];
    const w = watchInterrupt({ source: proc, graceMs: 50, onFirst: (s) => told.push(s) });
    expect(w.signal.aborted).toBe(false);
    proc.emit("SIGINT");
    expect(w.signal.aborted).toBe(true);
    expect(w.by()).toBe("SIGINT");
    expect(told).toEqual(["SIGINT"]);
    expect(proc.exits).toEqual([]);
    await w.graceOver;
    proc.emit("SIGTERM");
    expect(proc.exits).toEqual([EXIT_INTERRUPTED]);
    w.dispose();
    expect(proc.listenerCount("SIGINT") + proc.listenerCount("SIGTERM")).toBe(0);
  });

  it("leaves no listener behind when no signal came", () => {
    const proc = new FakeProcess();
    const w = watchInterrupt({ source: proc });
    expect(proc.listenerCount("SIGINT")).toBe(1);
    w.dispose();
    expect(proc.listenerCount("SIGINT") + proc.listenerCount("SIGTERM")).toBe(0);
    expect(w.by()).toBeUndefined();
  });
});

const result = (id: string, status: ScenarioResult["status"], reason?: string): ScenarioResult =>
  ({ id, title: id, group: "g", capability: null, level: "MUST", status, durationMs: 1, ...(reason ? { reason } : {}) }) as ScenarioResult;

describe("interrupted reports", () => {
  it("a scenario aborted while running is interrupted, not a driver failure; the run is never ok", () => {
    const report: RunReport = {
      driver: { name: "fake" },
      notes: [],
      level: "MUST",
      startedAt: new Date().toISOString(),
      durationMs: 5,
      runner: "direct",
      results: [
        result("a", "pass"),
        { ...result("b", "fail", "not finished: interrupted by SIGINT"), mismatch: "declared-but-fails", leaks: ["vm-1"] },
        result("c", "skipped", "the run was aborted"),
      ],
      ...summarize([], "MUST"),
    };
    const out = interruptedReport(report, "SIGINT", summarize);
    expect(out.ok).toBe(false);
    expect(out.results[1]).toMatchObject({ status: "skipped", reason: "interrupted by SIGINT while running (its cleanup ran)", leaks: ["vm-1"] });
    expect(out.results[1]).not.toHaveProperty("mismatch");
    expect(out.results[2]).toMatchObject({ status: "skipped", reason: "not run: the run was interrupted" });
    expect(out.summary).toMatchObject({ pass: 1, fail: 0, skipped: 2 });
    expect(out.leaks).toEqual(["b: vm-1"]);
    expect(out.notes.at(-1)).toMatch(/^interrupted by SIGINT: 1 of 3 scenarios finished/);
  });

  it("the grace ran out: what finished, and a note saying the rest is missing", () => {
    const out = partialReport(
      { driver: { name: "fake" }, level: "MUST", runner: "vitest", startedAt: new Date(), results: [result("a", "pass")], total: 10, signal: "SIGINT" },
      summarize,
    );
    expect(out).toMatchObject({ ok: false, summary: { total: 1, pass: 1 }, runner: "vitest" });
    expect(out.notes.at(-1)).toMatch(/interrupted by SIGINT: 1 of 10 scenarios finished; the scenarios still running did not clean up within 30 s/);
  });
});

describe("Ctrl-C during conformance run", () => {
  for (const runner of ["direct", "vitest"] as const) {
    it(`${runner} runner: stops starting scenarios, writes the reports with what finished, exits 130`, async () => {
      const json = join(dir, `interrupted-${runner}.json`);
      const junit = join(dir, `interrupted-${runner}.xml`);
      // Slowed so the run is surely still going when the signal comes (the plain fake runs in about a second).
      const plugin = await slowSpawnPlugin(dir, `slow${runner}`, 200, join(dir, `marker-${runner}`));
      const run = startCli(["conformance", "run", "--driver", plugin, "--runner", runner, "--parallel", "1", "--report-json", json, "--junit", junit], dir);
      try {
        // Once the first scenarios have finished.
        await until(() => (run.out().match(/✓/g) ?? []).length >= 3, 120_000);
        run.group("SIGINT");
        const { code } = await run.exited;
        expect(code, run.err()).toBe(EXIT_INTERRUPTED);
        expect(run.err()).toMatch(/SIGINT: no new scenario starts; waiting up to 30 s for the running ones to clean up/);
        const report = JSON.parse(await readFile(json, "utf8")) as RunReport;
        expect(report.ok).toBe(false);
        expect(report.notes.at(-1)).toMatch(/^interrupted by SIGINT: \d+ of \d+ scenarios finished/);
        expect(report.summary.pass).toBeGreaterThanOrEqual(3);
        // The rest were not run, and said so; nothing blames the driver for the interruption.
        expect(report.results.filter((r) => r.reason === "not run: the run was interrupted").length).toBeGreaterThan(100);
        expect(report.summary.fail).toBe(0);
        expect(existsSync(junit)).toBe(true);
      } finally {
        run.group("SIGKILL");
      }
    }, SLOW);
  }

  for (const runner of ["direct", "vitest"] as const) {
    it(`${runner} runner: a scenario whose driver call hangs when Ctrl-C comes stops at once, cleans up, and says it was interrupted while running`, async () => {
      const started = join(dir, `pause-started-${runner}`);
      const destroyed = join(dir, `destroyed-${runner}`);
      // A pause that hangs 60 s and ignores its signal; destroy leaves a mark (the kit's cleanup).
      const plugin = await wrappedFakePlugin(
        dir,
        `hangingpause${runner}`,
        `(d) => {
  const destroy = d.destroy.bind(d);
  d.pause = async () => { writeFileSync(${JSON.stringify(started)}, ""); await new Promise((r) => setTimeout(r, 60000)); };
  d.destroy = async (...a) => { appendFileSync(${JSON.stringify(destroyed)}, "x"); return destroy(...a); };
}`,
        `import { appendFileSync, writeFileSync } from "node:fs";`,
      );
      const json = join(dir, `hanging-${runner}.json`);
      const run = startCli(["conformance", "run", "--driver", plugin, "--runner", runner, "--focus", "^lifecycle\\.pause-unpause$", "--scenario-timeout", "120000", "--report-json", json], dir);
      try {
        await until(() => existsSync(started), 120_000);
        const t0 = Date.now();
        run.group("SIGINT");
        const { code } = await run.exited;
        expect(code, run.err()).toBe(EXIT_INTERRUPTED);
        // Not the 25 s hard stop: the scenario's own signal stopped it.
        expect(Date.now() - t0).toBeLessThan(15_000);
        expect(existsSync(destroyed)).toBe(true);
        const report = JSON.parse(await readFile(json, "utf8")) as RunReport;
        expect(report.results.map((r) => [r.id, r.status, r.reason])).toEqual([
          ["lifecycle.pause-unpause", "skipped", "interrupted by SIGINT while running (its cleanup ran)"],
        ]);
      } finally {
        run.group("SIGKILL");
      }
    }, SLOW);
  }

  it("a second Ctrl-C exits 130 at once, without waiting for a running scenario", async () => {
    const marker = join(dir, "spawn-started");
    // A destroy that takes 20 s and ignores its signal: the scenario's cleanup, which the first
    // Ctrl-C lets finish, has to wait for it (the scenario itself stops at once on its signal).
    const plugin = await wrappedFakePlugin(
      dir,
      "slowdestroy",
      `(d) => {
  const spawn = d.spawn.bind(d), destroy = d.destroy.bind(d);
  d.spawn = async (...a) => { writeFileSync(${JSON.stringify(marker)}, ""); return spawn(...a); };
  d.destroy = async (...a) => { await new Promise((r) => setTimeout(r, 20000)); return destroy(...a); };
}`,
      `import { writeFileSync } from "node:fs";`,
    );
    const run = startCli(["conformance", "run", "--driver", plugin, "--runner", "vitest", "--focus", "^lifecycle\\.spawn$", "--scenario-timeout", "60000"], dir);
    try {
      await until(() => existsSync(marker), 120_000);
      run.group("SIGINT");
      await until(() => /no new scenario starts/.test(run.err()), 10_000);
      // Still waiting for the running scenario.
      await new Promise((r) => setTimeout(r, 1_000));
      expect(run.child.exitCode).toBeNull();
      const t0 = Date.now();
      run.group("SIGINT");
      const { code } = await run.exited;
      expect(code).toBe(EXIT_INTERRUPTED);
      expect(Date.now() - t0).toBeLessThan(5_000);
      // The worker still runs the scenario; the CLI that left took its stop file along.
      expect((await readdir(tmpdir())).filter((f) => f.startsWith(`virtkit-stop-${run.child.pid}-`))).toEqual([]);
    } finally {
      run.group("SIGKILL");
      // A killed worker cannot remove the run's stop file; the CLI does on exit. Checked, and tidied if not.
      const mine = `virtkit-stop-${run.child.pid}-`;
      for (const f of await readdir(tmpdir())) if (f.startsWith(mine)) await rm(join(tmpdir(), f), { force: true });
    }
  }, SLOW);
});
