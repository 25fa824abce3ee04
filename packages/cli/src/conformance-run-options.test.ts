// `conformance run`'s options for driver authors and CI, and `conformance explain`, as a user runs
// them: real spawns of bin/run.js (built first: turbo's test task depends on build).
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { unreachablePlugin, wrappedFakePlugin } from "./testing/cli-process.js";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const bin = join(root, "bin", "run.js");
const cleanEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("VIRTKIT_LIBVIRT")));
// Each test spawns the CLI several times; on a loaded 2-core machine one spawn can take 10 s.
const SLOW = 300_000;
const fakePlugin = pathToFileURL(join(root, "node_modules", "@virtkit", "driver-fake", "dist", "plugin.js")).href;

function virtkit(args: string[]) {
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: "utf8", env: cleanEnv, timeout: 120_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** A fake-based plugin file whose drivers have `defect` applied (a function source over the driver). */
function brokenPlugin(name: string, defect: string): Promise<string> {
  return wrappedFakePlugin(dir, name, defect);
}

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "virtkit-cli-options-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("conformance explain", () => {
  it("explains a scenario (human and --json), and list links to it", () => {
    const human = virtkit(["conformance", "explain", "lifecycle.pause-unpause"]);
    expect(human.status, human.stderr).toBe(0);
    expect(human.stdout).toContain("lifecycle.pause-unpause [MUST]");
    expect(human.stdout).toContain("Contract rule:");
    expect(human.stdout).toMatch(/When pause is declared \(traced against the fake driver: pass\):\n {2}1\. spawn <prefix>-1/);
    const json = virtkit(["conformance", "explain", "migration.live", "--json"]);
    expect(json.status).toBe(0);
    expect(JSON.parse(json.stdout)).toMatchObject({ id: "migration.live", capability: "liveMigration" });
    const unknown = virtkit(["conformance", "explain", "pause"]);
    expect(unknown.status).toBe(2);
    expect(unknown.stderr).toMatch(/no scenario "pause" \(did you mean lifecycle\.pause-unpause/);
    const list = virtkit(["conformance", "list"]);
    expect(list.stdout).toMatch(/what one checks, step by step: virtkit conformance explain <id>/);
    const listed = JSON.parse(virtkit(["conformance", "list", "--json"]).stdout) as { scenarios: { id: string; explain: string }[] };
    expect(listed.scenarios[0]?.explain).toBe(`virtkit conformance explain ${listed.scenarios[0]?.id}`);
  }, SLOW);
});

describe("conformance run: usage errors before the run", () => {
  it("a --focus/--skip that selects nothing exits 2, unless --allow-empty", () => {
    const r = virtkit(["conformance", "run", "--driver", "fake", "--focus", "^no-such-scenario$"]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/--focus \^no-such-scenario\$ selects no scenario/);
    const skipAll = virtkit(["conformance", "run", "--driver", "fake", "--skip", "."]);
    expect(skipAll.status).toBe(2);
    const allowed = virtkit(["conformance", "run", "--driver", "fake", "--focus", "^no-such$", "--allow-empty", "--runner", "direct", "--json"]);
    expect(allowed.status).toBe(0);
    expect(JSON.parse(allowed.stdout)).toMatchObject({ ok: true, summary: { total: 0 } });
  }, SLOW);

  it("an unwritable report path exits 2 at once, and nothing runs", () => {
    for (const [flag, path, why] of [
      ["--junit", join(dir, "missing-dir", "junit.xml"), /the directory .*missing-dir does not exist/],
      ["--tap", dir, /it is a directory/],
      ["--report-json", join(dir, "file.txt", "report.json"), /is not a directory|does not exist/],
    ] as const) {
      const r = virtkit(["conformance", "run", "--driver", "fake", flag, path]);
      expect(r.status, flag).toBe(2);
      expect(r.stderr, flag).toMatch(new RegExp(`cannot write the ${flag} report to`));
      expect(r.stderr, flag).toMatch(why);
      // Refused before the run: no scenario line was printed.
      expect(r.stdout, flag).toBe("");
    }
  }, SLOW);

  it("two report flags naming one file exit 2 at once, however the path is spelt", async () => {
    const same = join(dir, "same-report.xml");
    await mkdir(join(dir, "real"), { recursive: true });
    await symlink(join(dir, "real"), join(dir, "link"));
    for (const args of [
      ["--junit", same, "--report-json", same],
      ["--tap", same, "--junit", `${dir}/./same-report.xml`],
      ["--junit", join(dir, "real", "same-report.xml"), "--report-json", join(dir, "link", "same-report.xml")],
    ]) {
      const r = virtkit(["conformance", "run", "--driver", "fake", "--runner", "direct", ...args]);
      expect(r.status, args.join(" ")).toBe(2);
      expect(r.stderr, args.join(" ")).toMatch(/--(junit|tap) and --(tap|report-json) name the same file \(.*same-report\.xml\): each report needs its own/);
      expect(existsSync(join(dir, "real", "same-report.xml")), args.join(" ")).toBe(false);
      expect(r.stdout, args.join(" ")).toBe("");
    }
    expect(existsSync(same)).toBe(false);
    // Different files are fine.
    const ok = virtkit(["conformance", "run", "--driver", "fake", "--runner", "direct", "--focus", "^lifecycle\\.spawn$",
      "--junit", join(dir, "a.xml"), "--report-json", join(dir, "a.json")]);
    expect(ok.status, ok.stderr).toBe(0);
    expect(existsSync(join(dir, "a.xml")) && existsSync(join(dir, "a.json"))).toBe(true);
  }, SLOW);

  it("--explore refuses the flags of a scenario run instead of ignoring them", () => {
    const r = virtkit(["conformance", "run", "--driver", "fake", "--explore", "--runs", "1", "--junit", join(dir, "explore.xml"), "--focus", "x"]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/--explore runs random sequences, not the scenarios: .* not --focus, --junit/);
    expect(existsSync(join(dir, "explore.xml"))).toBe(false);
  }, SLOW);

  it("a --focus that backtracks catastrophically over a title does not hang the CLI or the vitest worker", () => {
    // Exponential in a title's length under a backtracking engine: hours, and no Ctrl-C while it runs.
    const evil = "^(\\w+\\s?)+!$";
    const opts = { encoding: "utf8" as const, env: cleanEnv, timeout: 60_000 };
    const list = spawnSync(process.execPath, [bin, "conformance", "list", "--focus", evil, "--json"], opts);
    expect(list.status, list.stderr).toBe(0);
    expect((JSON.parse(list.stdout) as { scenarios: unknown[] }).scenarios).toEqual([]);
    // The default runner matches again in its worker: one real scenario beside the evil pattern.
    const run = spawnSync(process.execPath, [bin, "conformance", "run", "--driver", "fake", "--focus", `${evil}|^lifecycle\\.spawn$`], opts);
    expect(run.status, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/PASS: 1 passed, 0 failed/);
  }, SLOW);

  it("--explore: a driver's unhandled rejection fails the exploration with a result (human and --json), not a crash", async () => {
    // The rejection leaves spawn un-awaited: every step still agrees with the model.
    const stray = await brokenPlugin(
      "explore-stray",
      `(d) => {
  const spawn = d.spawn.bind(d);
  d.spawn = async (...args) => { if (!globalThis.strayOnce) { globalThis.strayOnce = true; Promise.reject(new Error("stray from spawn")); } return spawn(...args); };
}`,
    );
    const human = virtkit(["conformance", "run", "--driver", stray, "--explore", "--runs", "3", "--seed", "7"]);
    expect(human.status, human.stderr).toBe(1);
    expect(human.stdout).toMatch(/^errors outside any step \(they fail the exploration\):\n {2}unhandled rejection: Error: stray from spawn$/m);
    expect(human.stdout).toMatch(/^replay: virtkit conformance run --driver \S+explore-stray\.mjs --explore --seed 7$/m);
    expect(human.stderr).not.toMatch(/\n\s+at /); // no crash's stack trace

    const json = virtkit(["conformance", "run", "--driver", stray, "--explore", "--runs", "3", "--seed", "7", "--json"]);
    expect(json.status, json.stderr).toBe(1);
    const result = JSON.parse(json.stdout) as { ok: boolean; seed: number; errors?: string[] };
    expect(result).toMatchObject({ ok: false, seed: 7, errors: ["unhandled rejection: Error: stray from spawn"] });

    // The same driver without the stray rejection explores clean.
    const clean = virtkit(["conformance", "run", "--driver", "fake", "--explore", "--runs", "3", "--seed", "7"]);
    expect(clean.status, clean.stderr).toBe(0);
    expect(clean.stdout).not.toMatch(/errors outside any step/);
  }, SLOW);

  it("a broken register is one load error (exit 2), not a failure per scenario", async () => {
    const file = join(dir, "bad-register.mjs");
    await writeFile(
      file,
      `import { plugin as fake } from ${JSON.stringify(fakePlugin)};
export const plugin = { ...fake, name: "bad-register", register(container) { container.register("virtkit:driver:elsewhere", { useValue: {} }); } };
`,
    );
    const r = virtkit(["conformance", "run", "--driver", file]);
    expect(r.status).toBe(2);
    expect(r.stdout).toBe("");
    expect(r.stderr.trimEnd().split("\n")).toHaveLength(1);
    expect(r.stderr).toMatch(/"bad-register": plugin bad-register did not register a driver under virtkit:driver:bad-register/);
  }, SLOW);

  it("a driver that cannot be set up (host unreachable) is one error (exit 1) and one failing report entry, not the same failure per scenario", async () => {
    const file = await unreachablePlugin(dir, "unreachable");
    const junit = join(dir, "unreachable.xml");
    const tap = join(dir, "unreachable.tap");
    for (const runner of ["direct", "vitest"]) {
      // An earlier run's passing report at the same path must not survive: the files a CI job
      // publishes say the run failed, and why.
      await writeFile(junit, '<testsuite failures="0"/>');
      const r = virtkit(["conformance", "run", "--driver", file, "--runner", runner, "--junit", junit, "--tap", tap]);
      const xml = await readFile(junit, "utf8");
      expect(xml).toMatch(/<testsuites name="virtkit conformance: [^"]*" tests="1" failures="1"/);
      expect(xml).toMatch(/<testcase classname="virtkit.setup" name="driver.setup \[MUST\][^"]*"[^>]*>\s*<failure message="the driver&apos;s setup failed, so no scenario ran: connect ECONNREFUSED 127\.0\.0\.1:1"/);
      expect(await readFile(tap, "utf8")).toMatch(/^1\.\.1\n(# .*\n)*not ok 1 - driver\.setup /m);
      expect(r.status).toBe(1);
      expect(r.stdout).toBe("");
      expect(r.stderr.trimEnd().split("\n")).toHaveLength(1);
      expect(r.stderr).toMatch(/setup failed, so no scenario ran: .*ECONNREFUSED 127\.0\.0\.1:1/);
    }
  }, SLOW);

  it("a driver setup that never settles (a promise nothing resolves) is the same one error at the deadline, under both runners", async () => {
    // Nothing holds the process open while it waits: the check must, or Node exits silently (13).
    const file = await brokenPlugin("hangdrv", "(d) => { d.initHost = () => new Promise(() => undefined); }");
    for (const runner of ["direct", "vitest"]) {
      const r = virtkit(["conformance", "run", "--driver", file, "--runner", runner, "--scenario-timeout", "2000"]);
      expect(r.status, `${runner}: ${r.stderr}`).toBe(1);
      expect(r.stdout).toBe("");
      expect(r.stderr).toMatch(/the driver's setup failed, so no scenario ran: .*2000 ms/);
    }
  }, SLOW);

  it("--config is validated with a clear usage error", async () => {
    // Keys are named by position and length, never by their text (a key may be a pasted secret).
    const cases: [unknown, RegExp][] = [
      [{ focus: ["^lifecycle"], "hunter2-pasted-token": 1 }, /unknown key #2 \(20 characters; known: options, focus, skip, level,/],
      [{ level: "OFTEN" }, /"level" must be MUST, SHOULD or MAY/],
      [{ timeouts: { "hunter2.nope": 1000 } }, /"timeouts" key #1 \(12 characters\) names no scenario \(see virtkit conformance list\)/],
      [{ parallel: 0 }, /"parallel" must be an integer from 1 to 64/],
      [{ options: { hunter2: { nested: "hunter2" } } }, /"options" key #1 \(7 characters\): the value must be a string, number or boolean \(the value is not shown\)/],
      [{ options: { "hunter2 key": "x" } }, /"options" key #1: malformed \(11 characters\)/],
      [[1, 2], /expected a JSON object/],
    ];
    for (const [i, [content, why]] of cases.entries()) {
      const file = join(dir, `bad-${i}.json`);
      await writeFile(file, JSON.stringify(content));
      const r = virtkit(["conformance", "run", "--driver", "fake", "--config", file]);
      expect(r.status, JSON.stringify(content)).toBe(2);
      expect(r.stderr, JSON.stringify(content)).toMatch(why);
      expect(r.stderr).not.toContain("hunter2");
    }
    const broken = join(dir, "broken.json");
    await writeFile(broken, "{ not json");
    expect(virtkit(["conformance", "run", "--driver", "fake", "--config", broken]).stderr).toMatch(/not valid JSON/);
    // Node's parser quotes the text around an error: an unquoted secret must not reach the message.
    const leaky = join(dir, "leaky.json");
    await writeFile(leaky, '{\n  "options": { "password": hunter2-unquoted }\n}');
    const parsed = virtkit(["conformance", "run", "--driver", "fake", "--config", leaky, "--json"]);
    expect(parsed.status).toBe(2);
    expect(parsed.stdout + parsed.stderr).toMatch(/not valid JSON/);
    expect(parsed.stdout + parsed.stderr).not.toContain("hunter2");
    const trailing = join(dir, "trailing.json");
    await writeFile(trailing, '{ "level": "MUST" }\nhunter2');
    const at = virtkit(["conformance", "run", "--driver", "fake", "--config", trailing]);
    expect(at.stderr).toMatch(/not valid JSON at line 2, column 1 \(the text is not shown\)/);
    expect(at.stderr).not.toContain("hunter2");
    expect(virtkit(["conformance", "run", "--driver", "fake", "--config", join(dir, "none.json")]).stderr).toMatch(/cannot read it \(ENOENT\)/);
    // UTF-8 with a byte-order mark (Windows editors) is still the JSON it holds.
    const bom = join(dir, "bom.json");
    await writeFile(bom, '\ufeff{ "level": "SHOULD", "focus": ["^lifecycle\\\\.spawn$"] }');
    const withBom = virtkit(["conformance", "run", "--driver", "fake", "--config", bom, "--dry-run", "--json"]);
    expect(withBom.status, withBom.stderr).toBe(0);
    expect((JSON.parse(withBom.stdout) as { level: string }).level).toBe("SHOULD");
  }, SLOW);
});

describe("conformance run: --dry-run, --config, --shuffle --seed", () => {
  it("--dry-run says what would run, refused, unsupported or skipped and why, and runs nothing", () => {
    const r = virtkit([
      "conformance",
      "run",
      "--driver",
      "fake",
      "--option",
      "capabilities=disable=pause",
      "--focus",
      "^lifecycle\\.(spawn|pause-unpause)$",
      "--dry-run",
      "--json",
    ]);
    expect(r.status, r.stderr).toBe(0);
    const plan = JSON.parse(r.stdout) as { scenarios: { id: string; action: string; reason?: string }[]; capabilities: Record<string, boolean> };
    expect(plan.capabilities.pause).toBe(false);
    expect(plan.scenarios.map((s) => [s.id, s.action])).toEqual([
      ["lifecycle.spawn", "run"],
      ["lifecycle.pause-unpause", "refuse"],
    ]);
    const human = virtkit(["conformance", "run", "--driver", "fake", "--focus", "^lifecycle\\.spawn$", "--dry-run"]);
    expect(human.stdout).toMatch(/dry run\): fake .*nothing was run/);
    expect(human.stdout).toMatch(/1\. lifecycle\.spawn\s+\[MUST\]\s+run/);
  }, SLOW);

  it("a config file sets focus, level, timeouts and the seed; flags on the command line win", async () => {
    const file = join(dir, "virtkit.conformance.json");
    await writeFile(
      file,
      JSON.stringify({
        focus: ["^lifecycle\\.(spawn|destroy|reboot-hard)$"],
        level: "SHOULD",
        timeouts: { "lifecycle.spawn": 4321 },
        seed: 5,
        options: { latencyMs: 0 },
      }),
    );
    const r = virtkit(["conformance", "run", "--driver", "fake", "--config", file, "--dry-run", "--json"]);
    expect(r.status, r.stderr).toBe(0);
    const plan = JSON.parse(r.stdout) as { level: string; notes: string[]; scenarios: { id: string; timeoutMs: number }[] };
    expect(plan.level).toBe("SHOULD");
    expect(plan.scenarios.map((s) => s.id).sort()).toEqual(["lifecycle.destroy", "lifecycle.reboot-hard", "lifecycle.spawn"]);
    expect(plan.scenarios.find((s) => s.id === "lifecycle.spawn")?.timeoutMs).toBe(4321);
    expect(plan.notes).toContain("scenario order shuffled with seed 5 (repeat it with --shuffle --seed 5)");
    const override = virtkit(["conformance", "run", "--driver", "fake", "--config", file, "--level", "MUST", "--dry-run", "--json"]);
    expect((JSON.parse(override.stdout) as { level: string }).level).toBe("MUST");
  }, SLOW);

  it("--shuffle --seed N gives the same order every time, and the run notes the seed", () => {
    const order = (seed: string) =>
      (JSON.parse(virtkit(["conformance", "run", "--driver", "fake", "--shuffle", "--seed", seed, "--dry-run", "--json"]).stdout) as {
        scenarios: { id: string }[];
      }).scenarios.map((s) => s.id);
    expect(order("11")).toEqual(order("11"));
    expect(order("11")).not.toEqual(order("12"));
    const run = virtkit(["conformance", "run", "--driver", "fake", "--runner", "direct", "--focus", "^lifecycle\\.", "--seed", "3", "--json"]);
    expect(run.status, run.stderr).toBe(0);
    expect((JSON.parse(run.stdout) as { notes: string[] }).notes).toContain("scenario order shuffled with seed 3 (repeat it with --shuffle --seed 3)");
  }, SLOW);
});

describe("conformance run: the exit code and the reports agree", () => {
  it("a SHOULD failure under --level MUST: exit 0 and no JUnit <failure>; under --level SHOULD: exit 1 and a <failure>", async () => {
    const file = await brokenPlugin("fake-silent-console", `(d) => { d.getConsoleOutput = async () => ""; }`);
    await mkdir(join(dir, "out"), { recursive: true });
    const junit = join(dir, "out", "should.xml");
    const base = ["conformance", "run", "--driver", file, "--focus", "^lifecycle\\.(console-output|spawn)$"];
    for (const runner of ["direct", "vitest"]) {
      const must = virtkit([...base, "--runner", runner, "--junit", junit]);
      expect(must.status, must.stdout + must.stderr).toBe(0);
      const xml = await readFile(junit, "utf8");
      expect(xml, runner).toMatch(/tests="2" failures="0"/);
      expect(xml, runner).not.toContain("<failure");
      expect(xml, runner).toContain('<skipped message="SHOULD failure below level MUST (does not fail the run): ');
    }
    const should = virtkit([...base, "--runner", "direct", "--level", "SHOULD", "--junit", junit]);
    expect(should.status).toBe(1);
    expect(await readFile(junit, "utf8")).toMatch(/tests="2" failures="1"/);
  }, SLOW);

  it("--fail-fast starts nothing after the first failure, in both runners", async () => {
    const file = await brokenPlugin("fake-pause-noop", `(d) => { d.pause = async () => {}; }`);
    for (const runner of ["direct", "vitest"]) {
      const r = virtkit([
        "conformance",
        "run",
        "--driver",
        file,
        "--runner",
        runner,
        "--focus",
        "^lifecycle\\.(spawn|pause-unpause|destroy|reboot-hard)$",
        // One at a time: with scenarios started together, none is left for --fail-fast to hold back.
        "--parallel",
        "1",
        "--fail-fast",
        "--json",
      ]);
      expect(r.status, runner).toBe(1);
      const report = JSON.parse(r.stdout) as { results: { id: string; status: string; reason?: string }[] };
      const byId = Object.fromEntries(report.results.map((x) => [x.id, x]));
      expect(byId["lifecycle.pause-unpause"]?.status, runner).toBe("fail");
      // Table order: spawn, reboot-hard, pause-unpause, destroy.
      expect(byId["lifecycle.destroy"], runner).toMatchObject({
        status: "skipped",
        reason: "not run: --fail-fast stopped the run after lifecycle.pause-unpause failed",
      });
      expect(byId["lifecycle.spawn"]?.status, runner).toBe("pass");
    }
  }, SLOW);

  it("a failing driver call names the driver's file and line next to the step", async () => {
    const file = await brokenPlugin(
      "fake-pause-throws",
      `(d) => {\n  d.pause = async () => {\n    throw new Error("pause exploded");\n  };\n}`,
    );
    const r = virtkit(["conformance", "run", "--driver", file, "--runner", "direct", "--focus", "^lifecycle\\.pause-unpause$"]);
    expect(r.status).toBe(1);
    expect(r.stdout).toContain(`[step: pause]\n      at ${file}:4:11`);
    expect(existsSync(file)).toBe(true);
  }, SLOW);
});
