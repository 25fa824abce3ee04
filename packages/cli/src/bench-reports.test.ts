// `virtkit matrix --bench-report`: a report whose leak check did not complete (`leaks: null`) is
// read and shown as failed; one that claims ok without a completed leak check is refused.
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { benchSummary } from "@virtkit/conformance";
import { readBenchReports } from "./bench-reports.js";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "virtkit-bench-reports-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const report = (extra: Record<string, unknown>) => ({
  schema: "virtkit.bench/1",
  driver: { name: "fake" },
  notes: [],
  settings: { count: 1, concurrency: 1, timeoutMs: 50, cleanupTimeoutMs: 300, operations: ["spawn"] },
  machine: { cpus: 2, loadavg: [0, 0, 0], node: "v20", platform: "linux" },
  startedAt: new Date(0).toISOString(),
  durationMs: 1,
  operations: [],
  cleanupErrors: ["cleanup did not finish within 300 ms; state unknown"],
  interrupted: false,
  ...extra,
});

describe("readBenchReports and an incomplete leak check", () => {
  it("reads leaks: null with its reason, and the column says the leak check did not complete", async () => {
    const file = join(dir, "incomplete.json");
    await writeFile(file, JSON.stringify(report({ leaks: null, leakCheckIncomplete: "the leak check did not finish within the cleanup budget (300 ms)", ok: false })));
    const [read] = await readBenchReports([file]);
    expect(read?.leaks).toBeNull();
    expect(benchSummary(read!)).toMatch(/^bench FAILED \(leak check incomplete\)/);
  });

  it("refuses leaks: null without a reason, or with ok true (exit 2)", async () => {
    for (const [name, extra, why] of [
      ["no-reason", { leaks: null, ok: false }, /leaks is null but leakCheckIncomplete gives no reason/],
      ["claims-ok", { leaks: null, leakCheckIncomplete: "timed out", ok: true }, /ok is true although the leak check did not complete/],
    ] as const) {
      const file = join(dir, `${name}.json`);
      await writeFile(file, JSON.stringify(report(extra)));
      const err = (await readBenchReports([file]).catch((e: unknown) => e)) as { message: string; oclif?: { exit?: number } };
      expect(err.message).toMatch(why);
      expect(err.oclif?.exit).toBe(2);
    }
  });
});
