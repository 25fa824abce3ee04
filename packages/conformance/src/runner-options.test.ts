// The run options a driver author reaches for: fail-fast, a seeded order, per-scenario deadlines,
// the dry-run plan, and where in the driver a failure came from.
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import type { ComputeDriver, Instance } from "@virtkit/core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { check } from "./assertions.js";
import { fakeEnvironment } from "./environments/fake-environment.js";
import { driverLocation, parseFrame } from "./failure-location.js";
import { DEFAULT_SCENARIO_TIMEOUT_MS, scenarioDeadlineMs } from "./make-test.js";
import { planRun, runConformance, scheduleScenarios, shuffle } from "./runner.js";
import type { ScenarioDefinition } from "./scenario.js";
import { SCENARIOS } from "./scenarios.js";

const ok = (id: string, level: ScenarioDefinition["level"] = "MUST"): ScenarioDefinition => ({
  id,
  title: id,
  group: id.split(".")[0]!,
  capability: null,
  level,
  run: async () => undefined,
});
const failing = (id: string, level: ScenarioDefinition["level"] = "MUST"): ScenarioDefinition => ({
  ...ok(id, level),
  run: async () => check(false, "broken on purpose"),
});

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "virtkit-runner-options-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("fail-fast", () => {
  it("starts nothing after the first failure at the run's level, and says why", async () => {
    const scenarios = [ok("a.one"), failing("a.should", "SHOULD"), failing("a.two"), ok("a.three"), ok("a.four")];
    const report = await runConformance({ driver: { name: "fake" }, environment: fakeEnvironment(), scenarios, failFast: true });
    expect(report.results.map((r) => [r.id, r.status])).toEqual([
      ["a.one", "pass"],
      // A SHOULD failure under level MUST does not stop the run.
      ["a.should", "fail"],
      ["a.two", "fail"],
      ["a.three", "skipped"],
      ["a.four", "skipped"],
    ]);
    expect(report.results[3]?.reason).toBe("not run: --fail-fast stopped the run after a.two failed");
    expect(report.ok).toBe(false);
  });

  it("without it, every scenario runs", async () => {
    const scenarios = [failing("a.two"), ok("a.three")];
    const report = await runConformance({ driver: { name: "fake" }, environment: fakeEnvironment(), scenarios });
    expect(report.results.map((r) => r.status)).toEqual(["fail", "pass"]);
  });
});

describe("--shuffle --seed", () => {
  it("gives the same order for the same seed, another for another seed, and the same set", () => {
    const ids = (seed: number) => scheduleScenarios({ seed }).map((s) => s.id);
    expect(ids(42)).toEqual(ids(42));
    expect(ids(42)).not.toEqual(ids(43));
    expect(ids(42)).not.toEqual(SCENARIOS.map((s) => s.id));
    expect([...ids(42)].sort()).toEqual(SCENARIOS.map((s) => s.id).sort());
    expect(shuffle([1, 2, 3, 4, 5, 6, 7, 8], 1)).toEqual(shuffle([1, 2, 3, 4, 5, 6, 7, 8], 1));
  });

  it("runs in that order and notes the seed so the order can be repeated", async () => {
    const scenarios = ["s.a", "s.b", "s.c", "s.d", "s.e", "s.f"].map((id) => ok(id));
    const report = await runConformance({ driver: { name: "fake" }, environment: fakeEnvironment(), scenarios, seed: 9 });
    expect(report.results.map((r) => r.id)).toEqual(shuffle(scenarios, 9).map((s) => s.id));
    expect(report.notes).toContain("scenario order shuffled with seed 9 (repeat it with --shuffle --seed 9)");
  });
});

describe("per-scenario timeouts", () => {
  it("replace a scenario's own deadline, whatever the run's pace", () => {
    const [spawn] = scheduleScenarios({ focus: ["^lifecycle\\.spawn$"], timeouts: { "lifecycle.spawn": 1234 }, scenarioTimeoutMs: 20_000 });
    expect(scenarioDeadlineMs(spawn!, 20_000)).toBe(1234);
    const [plain] = scheduleScenarios({ focus: ["^lifecycle\\.spawn$"] });
    expect(scenarioDeadlineMs(plain!, DEFAULT_SCENARIO_TIMEOUT_MS)).toBe(DEFAULT_SCENARIO_TIMEOUT_MS);
  });

  it("fail a scenario that overruns its own", async () => {
    const slow: ScenarioDefinition = { ...ok("t.slow"), run: () => new Promise((r) => setTimeout(r, 2_000)) };
    const report = await runConformance({
      driver: { name: "fake" },
      environment: fakeEnvironment(),
      scenarios: [slow],
      timeouts: { "t.slow": 50 },
    });
    expect(report.results[0]).toMatchObject({ status: "fail", reason: "scenario timed out after 50 ms" });
  });
});

describe("planRun (--dry-run)", () => {
  it("says what would run, what is refused or unsupported, and what the environment skips, running nothing", async () => {
    let spawned = 0;
    const plan = await planRun({
      driver: { name: "fake" },
      environment: fakeEnvironment({
        capabilities: { pause: false, consoleOutput: false },
        limits: { migration: "one host here" },
        wrapDriver: (d) =>
          new Proxy(d, {
            get: (t, k) =>
              k === "spawn" ? (...a: Parameters<ComputeDriver["spawn"]>) => (spawned++, t.spawn(...a)) : Reflect.get(t, k, t),
          }),
      }),
      focus: ["^lifecycle\\.(spawn|pause-unpause)$", "^migration\\.live$"],
    });
    expect(spawned).toBe(0);
    expect(plan.capabilities.pause).toBe(false);
    expect(plan.scenarios.map((s) => [s.id, s.action, s.reason])).toEqual([
      ["lifecycle.spawn", "run", undefined],
      [
        "lifecycle.pause-unpause",
        "refuse",
        "capability pause not declared: checks that it is refused with UnsupportedOperationError",
      ],
      ["migration.live", "skip", "environment limit: one host here"],
    ]);
  });
});

describe("failure location", () => {
  it("parses V8 frames, file URLs and async frames", () => {
    expect(parseFrame("    at Foo.bar (file:///x/y.js:3:4)")).toEqual({ fn: "Foo.bar", file: "/x/y.js", line: 3, column: 4 });
    expect(parseFrame("    at async /x/y.js:3:4")).toMatchObject({ file: "/x/y.js", line: 3 });
    expect(parseFrame("Error: boom")).toBeUndefined();
  });

  it("skips the kit's frames, Node's and error constructors, and follows causes", () => {
    const err = new Error("x");
    err.stack = [
      "Error: x",
      "    at new UnsupportedOperationError (/repo/node_modules/@virtkit/core/dist/errors.js:10:5)",
      "    at node:internal/process/task_queues:95:5",
      "    at check (/kit/dist/checks/lifecycle.js:20:3)",
      "    at MyDriver.pause (/home/me/driver/src/my-driver.ts:42:11)",
    ].join("\n");
    expect(driverLocation(err, "/home/me/driver", "/kit/")).toBe("src/my-driver.ts:42:11");
    const kitOnly = new Error("kit");
    kitOnly.stack = "Error: kit\n    at check (/kit/dist/checks/lifecycle.js:20:3)";
    expect(driverLocation(kitOnly, "/", "/kit/")).toBeUndefined();
    const wrapper = new Error("wrapper", { cause: err });
    wrapper.stack = "Error: wrapper\n    at check (/kit/dist/make-test.js:1:1)";
    expect(driverLocation(wrapper, "/elsewhere", "/kit/")).toBe(
      "/home/me/driver/src/my-driver.ts:42:11",
    );
  });

  it("reports the driver's file and line for a driver call that fails, next to the step", async () => {
    // A driver module outside the kit, so its frame is the driver's.
    const file = join(dir, "throwing-driver.mjs");
    await writeFile(file, `export function breakPause(driver) {\n  driver.pause = async () => {\n    throw new Error("pause exploded");\n  };\n}\n`);
    const { breakPause } = (await import(pathToFileURL(file).href)) as { breakPause: (d: ComputeDriver) => void };
    const report = await runConformance({
      driver: { name: "fake" },
      environment: fakeEnvironment({ wrapDriver: (d) => (breakPause(d), d) }),
      focus: ["^lifecycle\\.pause-unpause$"],
    });
    const [r] = report.results;
    expect(r).toMatchObject({ status: "fail", step: "pause" });
    expect(r?.location).toBe(`${file}:3:11`);
  });

  it("points at the driver's error behind a kit check that failed on it in the same step", async () => {
    const file = join(dir, "wrong-error-driver.mjs");
    await writeFile(file, `export function wrongError(driver) {\n  driver.getInfo = async (i) => {\n    throw new TypeError("not the typed error " + i.name.length);\n  };\n}\n`);
    const { wrongError } = (await import(pathToFileURL(file).href)) as { wrongError: (d: ComputeDriver) => void };
    const unknown: ScenarioDefinition = {
      ...ok("loc.not-found"),
      run: async (ctx) => {
        ctx.step("getInfo of an unknown instance");
        const { expectRejects } = await import("./assertions.js");
        await expectRejects(ctx, ctx.driver.getInfo(ctx.newInstance() as Instance), ["VIRTKIT_INSTANCE_NOT_FOUND"], "getInfo");
      },
    };
    const report = await runConformance({
      driver: { name: "fake" },
      environment: fakeEnvironment({ wrapDriver: (d) => (wrongError(d), d) }),
      scenarios: [unknown],
    });
    expect(report.results[0]).toMatchObject({ status: "fail", step: "getInfo of an unknown instance" });
    expect(report.results[0]?.reason).toMatch(/expected VIRTKIT_INSTANCE_NOT_FOUND, got TypeError/);
    expect(report.results[0]?.location).toBe(`${file}:3:11`);
  });
});
