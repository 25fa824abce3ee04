import { describe, expect, it } from "vitest";
import { summarize, withRunErrors, type RunReport, type ScenarioResult } from "../types.js";
import { HumanReporter } from "./human.js";
import { JsonReporter } from "./json.js";
import { JunitReporter } from "./junit.js";
import { REPORTERS, createReporter } from "./registry.js";
import { TapReporter } from "./tap.js";

const results: ScenarioResult[] = [
  {
    id: "lifecycle.spawn",
    title: "spawn",
    group: "lifecycle",
    capability: null,
    level: "MUST",
    status: "pass",
    durationMs: 3,
  },
  {
    id: "lifecycle.pause-unpause",
    title: "pause <b>",
    group: "lifecycle",
    capability: "pause",
    level: "MUST",
    status: "fail",
    reason: 'after pause: getInfo says RUNNING(1) & "x" <script>',
    step: "pause",
    location: "src/my-driver.ts:42:7",
    mismatch: "declared-but-fails",
    durationMs: 4,
  },
  {
    id: "lifecycle.console-output",
    title: "console",
    group: "lifecycle",
    capability: "consoleOutput",
    level: "SHOULD",
    status: "fail",
    reason: "empty",
    durationMs: 1,
  },
  {
    id: "migration.live",
    title: "move",
    group: "migration",
    capability: "liveMigration",
    level: "MUST",
    status: "skipped",
    reason: "environment limit: one host",
    durationMs: 0,
  },
  {
    id: "snapshot.image-running",
    title: "image",
    group: "snapshot",
    capability: "imageSnapshot",
    level: "MUST",
    status: "unsupported",
    reason: "capability imageSnapshot not declared",
    durationMs: 2,
  },
];
const report: RunReport = {
  driver: { name: "xenapi", version: "0.0.1" },
  notes: ["XenAPI results come from a simulator"],
  level: "MUST",
  startedAt: "2026-01-01T00:00:00.000Z",
  durationMs: 10,
  runner: "direct",
  results,
  ...summarize(results, "MUST"),
};

describe("reporters", () => {
  it("have a name → class registry", () => {
    expect(Object.keys(REPORTERS).sort()).toEqual(["human", "json", "junit", "tap"]);
    expect(createReporter("tap")).toBeInstanceOf(TapReporter);
  });

  it("every reporter shows the notes", () => {
    for (const name of Object.keys(REPORTERS) as (keyof typeof REPORTERS)[]) {
      expect(createReporter(name).render(report), name).toContain("XenAPI results come from a simulator");
    }
  });

  it("human: one line per scenario, reasons, the summary table and the verdict", () => {
    const out = new HumanReporter().render(report);
    expect(out).toContain("✗ lifecycle.pause-unpause [MUST]");
    expect(out).toContain("fail (declared-but-fails): after pause");
    expect(out).toContain("[step: pause]\n      at src/my-driver.ts:42:7");
    expect(out).toMatch(/lifecycle\s+1\s+2\s+0\s+0/);
    expect(out).toContain("FAIL: 1 passed, 2 failed (1 at level MUST), 1 unsupported, 1 skipped");
  });

  it("json: sorted keys, parseable, identical for identical input", () => {
    const a = new JsonReporter().render(report);
    expect(JSON.parse(a)).toEqual(JSON.parse(JSON.stringify(report)));
    expect(a).toBe(new JsonReporter().render(JSON.parse(JSON.stringify(report)) as RunReport));
    expect(Object.keys(JSON.parse(a) as object)).toEqual([...Object.keys(report)].sort());
  });

  it("junit: escaped, failures and skips counted, unsupported marked", () => {
    const xml = new JunitReporter().render(report);
    // The SHOULD failure under level MUST does not fail the run: not a <failure>, like the exit code.
    expect(xml).toContain('tests="5" failures="1" skipped="3"');
    expect(xml.match(/<failure /g)).toHaveLength(1);
    expect(xml).toContain('<skipped message="SHOULD failure below level MUST (does not fail the run): empty"/>');
    expect(xml).toContain('<property name="virtkit.status" value="fail"/>');
    // Under --level SHOULD it is a failure again.
    const strict = new JunitReporter().render({ ...report, level: "SHOULD", ...summarize(results, "SHOULD") });
    expect(strict).toContain('tests="5" failures="2" skipped="2"');
    expect(xml).toContain("&lt;script&gt;");
    expect(xml).not.toContain("<script>");
    expect(xml).toContain('<skipped message="unsupported: capability imageSnapshot not declared"/>');
    expect(xml).toContain('type="declared-but-fails"');
    expect(xml).toContain("step: pause\nat: src/my-driver.ts:42:7</failure>");
  });

  it("tap: plan, levels, SKIP for unsupported/skipped, TODO for failures below the level", () => {
    const tap = new TapReporter().render(report);
    const lines = tap.split("\n");
    expect(lines[0]).toBe("TAP version 13");
    expect(lines[1]).toBe("1..5");
    expect(tap).toContain("ok 1 - lifecycle.spawn [MUST] spawn");
    expect(tap).toContain("not ok 2 - lifecycle.pause-unpause [MUST]");
    expect(tap).toContain('  at: "src/my-driver.ts:42:7"');
    expect(tap).toContain("not ok 3 - lifecycle.console-output [SHOULD] console # TODO SHOULD below level MUST");
    expect(tap).toContain("ok 4 - migration.live [MUST] move # SKIP environment limit: one host");
    expect(tap).toContain(
      "ok 5 - snapshot.image-running [MUST] image # SKIP unsupported: capability imageSnapshot not declared",
    );
  });

  it("an error outside any scenario fails the run in every report, as it fails the exit code", () => {
    const passing = results.filter((r) => r.status !== "fail");
    const clean: RunReport = { ...report, results: passing, ...summarize(passing, "MUST") };
    expect(clean.ok).toBe(true);
    const broken = withRunErrors(clean, ["uncaught exception: Error: boom in the driver"]);
    expect(broken.ok).toBe(false);
    expect(broken.errors).toEqual(["uncaught exception: Error: boom in the driver"]);
    expect(withRunErrors(clean, [])).toBe(clean);
    const human = new HumanReporter().summary(broken);
    expect(human).toMatch(/Errors outside any scenario \(they fail the run\):\n {2}- uncaught exception: Error: boom in the driver/);
    expect(human).toMatch(/^FAIL: .*1 error outside any scenario/m);
    expect(JSON.parse(new JsonReporter().render(broken))).toMatchObject({ ok: false, errors: ["uncaught exception: Error: boom in the driver"] });
    const junit = new JunitReporter().render(broken);
    expect(junit).toMatch(/<testsuite [^>]*tests="4" failures="1"/);
    expect(junit).toContain('<testcase classname="virtkit.run" name="errors outside any scenario"');
    const tap = new TapReporter().render(broken);
    expect(tap.split("\n")[1]).toBe("1..4");
    expect(tap).toContain("not ok 4 - errors outside any scenario");
  });
});
