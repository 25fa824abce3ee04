// What vitest shows for the kit's scenarios agrees with the kit: a real vitest run (Node API, a
// forked worker) of an author's suite with one scenario of each outcome, with vitest's own JUnit
// reporter and the kit's VirtkitReporter side by side.
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createVitest, type TestCase } from "vitest/node";
import type { RunReport } from "../types.js";
import { VirtkitReporter } from "./conformance-reporter.js";
import { isSupportedVitest, assertSupportedVitest, resolvedVitest } from "./vitest-version.js";

const fixtures = fileURLToPath(new URL("./fixtures/", import.meta.url));
let dir: string;
let vitestJunit: string;
let kitJunit: string;
let kitReport: RunReport;
let summary = "";
const states: Record<string, { state: string; note?: string }> = {};

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "virtkit-vitest-truth-"));
  const reporter = new VirtkitReporter({
    junit: join(dir, "kit", "junit.xml"),
    json: join(dir, "kit", "report.json"),
    write: (t) => void (summary += t),
  });
  const collect = {
    onTestCaseResult(tc: TestCase) {
      const r = tc.result();
      states[tc.name.split(" ")[0]!] = { state: r.state, ...(r.state === "skipped" && r.note ? { note: r.note } : {}) };
    },
  };
  const vitest = await createVitest(
    "test",
    {
      run: true,
      watch: false,
      config: false,
      root: fixtures,
      include: ["author-suite.ts"],
      reporters: [["junit", {}], reporter, collect],
      outputFile: { junit: join(dir, "vitest-junit.xml") },
      pool: "forks",
      maxWorkers: 1,
      silent: true,
    },
    { cacheDir: join(dir, "vite-cache") },
  );
  try {
    await vitest.start();
  } finally {
    await vitest.close();
  }
  vitestJunit = await readFile(join(dir, "vitest-junit.xml"), "utf8");
  kitJunit = await readFile(join(dir, "kit", "junit.xml"), "utf8");
  kitReport = JSON.parse(await readFile(join(dir, "kit", "report.json"), "utf8")) as RunReport;
}, 120_000);
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("defineConformanceSuite under vitest", () => {
  it("fails only at-level failures; skips unsupported, environment-limited and below-level ones, with the reason", () => {
    expect(states["t.pass"]).toEqual({ state: "passed" });
    expect(states["t.must-fail"]).toEqual({ state: "failed" });
    expect(states["t.should-fail"]).toEqual({
      state: "skipped",
      note: "SHOULD failure below level MUST (does not fail the run): SHOULD broken [step: create driver]",
    });
    expect(states["t.unsupported"]?.state).toBe("skipped");
    expect(states["t.unsupported"]?.note).toMatch(/^unsupported: capability pause not declared; refused with UnsupportedOperationError$/);
    expect(states["t.limited"]).toEqual({ state: "skipped", note: "environment limit: one host here" });
  });

  it("vitest's own JUnit agrees with the kit's: 1 failure, 3 skipped, reasons as properties", () => {
    expect(vitestJunit).toMatch(/<testsuites [^>]*tests="5" failures="1"/);
    expect(vitestJunit.match(/<skipped\/>/g)).toHaveLength(3);
    expect(vitestJunit.match(/<failure /g)).toHaveLength(1);
    expect(vitestJunit).toContain('<property name="virtkit.unsupported" value="unsupported: capability pause not declared');
    expect(vitestJunit).toContain('<property name="virtkit.below-level-failure" value="SHOULD failure below level MUST');
    expect(vitestJunit).toContain('<property name="virtkit.skipped" value="environment limit: one host here"');
    expect(kitJunit).toMatch(/<testsuites [^>]*tests="5" failures="1" skipped="3"/);
    expect(kitJunit.match(/<failure /g)).toHaveLength(1);
  });

  it("the kit's vitest reporter builds the same report the CLI would, and prints the verdict", () => {
    expect(kitReport).toMatchObject({
      driver: { name: "author-fake" },
      level: "MUST",
      runner: "vitest",
      ok: false,
      summary: { total: 5, pass: 1, fail: 2, unsupported: 1, skipped: 1, failingAtLevel: 1 },
    });
    expect(kitReport.notes).toContain("an author's suite");
    expect(summary).toContain("FAIL: 1 passed, 2 failed (1 at level MUST), 1 unsupported, 1 skipped");
  });
});

describe("the vitest peer range", () => {
  it("accepts 3.2 to 4.x and says plainly what it found otherwise", () => {
    for (const v of ["3.2.0", "3.2.7", "4.0.18", "4.1.12"]) expect(isSupportedVitest(v), v).toBe(true);
    for (const v of ["3.1.4", "2.1.9", "5.0.0", "nonsense"]) expect(isSupportedVitest(v), v).toBe(false);
    expect(isSupportedVitest(resolvedVitest()!.version)).toBe(true);
    expect(() => assertSupportedVitest(() => ({ version: "3.1.4", path: "/p/node_modules/vitest/package.json" }))).toThrow(
      "@virtkit/conformance works with vitest >=3.2.0 <5, but found vitest 3.1.4 (/p/node_modules/vitest/package.json)",
    );
    expect(() => assertSupportedVitest(() => undefined)).toThrow(/needs vitest >=3\.2\.0 <5 \(a peer dependency\)/);
  });
});
