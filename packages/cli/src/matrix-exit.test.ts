// `virtkit matrix` (the main job) exits 1 when a column fails a MUST scenario or cannot be set up,
// and says which; 0 when every column keeps the contract.
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SCENARIOS, type SupportMatrix } from "@virtkit/conformance";
import { CLEAN_ENV, CLI_BIN, dyingWorkerPlugin, slowSpawnPlugin, startCli, unreachablePlugin, until, wrappedFakePlugin } from "./testing/cli-process.js";

const SLOW = 300_000;
let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "virtkit-matrix-exit-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function matrix(args: string[], runner: "direct" | "vitest" = "direct") {
  const r = spawnSync(process.execPath, [CLI_BIN, "matrix", "--runner", runner, ...args], { cwd: dir, encoding: "utf8", env: CLEAN_ENV, timeout: 240_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe("virtkit matrix: the exit code", () => {
  it("1 when a column fails a MUST scenario or cannot be set up, 0 when all keep the contract", async () => {
    // The fake whose pause says yes and does nothing.
    const broken = await wrappedFakePlugin(dir, "nopause", "(d) => { d.pause = async () => undefined; }");
    const unreachable = await unreachablePlugin(dir, "unreachable");
    const bad = matrix(["--driver", broken, "--driver", unreachable, "--driver", "fake", "--out", join(dir, "bad")]);
    expect(bad.status, bad.stderr).toBe(1);
    expect(bad.stdout).toMatch(/unreachable: not run \(.*ECONNREFUSED 127\.0\.0\.1:1/);
    expect(bad.stdout).toMatch(/failed \(a MUST scenario, or the driver could not be set up\): nopause, unreachable\n/);
    const written = JSON.parse(await readFile(join(dir, "bad", "support-matrix.json"), "utf8")) as SupportMatrix;
    expect(written.drivers.map((d) => d.name).sort()).toEqual(["fake", "nopause", "unreachable"]);

    const good = matrix(["--driver", "fake", "--out", join(dir, "good")]);
    expect(good.status, good.stderr).toBe(0);
    expect(good.stdout).not.toMatch(/failed/);
  }, SLOW);

  it("1 when vitest's worker dies mid-column: the scenarios it never ran fail with why, and the next column runs whole", async () => {
    const dying = await dyingWorkerPlugin(dir, "dying", 5);
    const r = matrix(["--driver", dying, "--driver", "fake", "--out", join(dir, "dying")], "vitest");
    expect(r.status, r.stderr).toBe(1);
    expect(r.stdout).toMatch(/failed \(a MUST scenario, or the driver could not be set up\): dying\n/);
    expect(r.stdout).toMatch(new RegExp(`^fake: ${SCENARIOS.length} pass, 0 fail`, "m"));
    // The column's line names what failed and why, so a log alone says what to look at.
    expect(r.stdout).toMatch(/^dying: \d+ pass, \d+ fail, .*; failed: [a-z.-]+ and \d+ more: not run: the vitest run failed: [^;]*Worker exited unexpectedly[^;]*; errors outside any scenario: vitest: [^;]*Worker exited unexpectedly$/m);
    const written = JSON.parse(await readFile(join(dir, "dying", "support-matrix.json"), "utf8")) as SupportMatrix;
    const cells = Object.values(written.cells["dying"] ?? {});
    const lost = cells.filter((c) => c.status === "fail" && /^not run: the vitest run failed: .*Worker exited unexpectedly/.test(c.reason ?? ""));
    // Far more than the one scenario whose spawn killed the worker: every one it never got to.
    expect(lost.length).toBeGreaterThan(100);
    expect(written.drivers.find((d) => d.name === "dying")?.ok).toBe(false);
  }, SLOW);

  it("a driver's stray rejection or process.exit fails its own column; the matrix is written whole and the next column runs", async () => {
    // One un-awaited rejection on the first spawn, one process.exit(0) on the first pause: both outside the kit's reach.
    const stray = await wrappedFakePlugin(
      dir,
      "stray",
      `(d) => {
  const spawn = d.spawn.bind(d);
  d.spawn = async (...args) => { if (!globalThis.strayOnce) { globalThis.strayOnce = true; Promise.reject(new Error("stray from spawn")); } return spawn(...args); };
}`,
    );
    const exiting = await wrappedFakePlugin(
      dir,
      "exiting",
      `(d) => {
  const pause = d.pause.bind(d);
  d.pause = async (...args) => { if (!globalThis.exitOnce) { globalThis.exitOnce = true; setTimeout(() => process.exit(0), 0); } return pause(...args); };
}`,
    );
    const r = matrix(["--driver", stray, "--driver", exiting, "--driver", "fake", "--out", join(dir, "stray")]);
    expect(r.status, r.stderr).toBe(1);
    expect(r.stdout).toMatch(/^stray: .*errors outside any scenario: unhandled rejection: Error: stray from spawn/m);
    expect(r.stdout).toMatch(new RegExp(`^fake: ${SCENARIOS.length} pass, 0 fail`, "m"));
    expect(r.stdout).toMatch(/failed \(a MUST scenario, or the driver could not be set up\): stray, exiting\n/);
    const written = JSON.parse(await readFile(join(dir, "stray", "support-matrix.json"), "utf8")) as SupportMatrix;
    const byName = new Map(written.drivers.map((d) => [d.name, d]));
    expect(byName.get("stray")).toMatchObject({ availability: "ran", ok: false, errors: [expect.stringMatching(/stray from spawn/)] });
    expect(byName.get("exiting")).toMatchObject({ availability: "ran", ok: false });
    expect(byName.get("exiting")?.errors?.join("\n")).toMatch(/process\.exit\(0\) was called during the conformance run/);
    expect(byName.get("fake")).toMatchObject({ availability: "ran", ok: true });
    const md = await readFile(join(dir, "stray", "support-matrix.md"), "utf8");
    expect(md).toMatch(/\*\*stray\*\*: error outside any scenario \(fails the column\): unhandled rejection: Error: stray from spawn/);
    // Written whole: no temporary file left beside the matrix.
    expect((await readdir(join(dir, "stray"))).sort()).toEqual(["support-matrix.html", "support-matrix.json", "support-matrix.md"]);
  }, SLOW);

  it("a driver whose import never settles fails its column after the load deadline; the next column runs", async () => {
    const hanging = join(dir, "hanging.mjs");
    await writeFile(hanging, "await new Promise(() => { setInterval(() => {}, 1000); });\nexport const plugin = {};\n");
    const r = matrix(["--driver", hanging, "--driver", "fake", "--scenario-timeout", "10000", "--out", join(dir, "hanging")]);
    expect(r.status, r.stderr).toBe(1);
    expect(r.stdout).toMatch(/hanging\.mjs: not run \(loading the driver plugin \S*hanging\.mjs did not finish within 10000 ms\)/);
    expect(r.stdout).toMatch(new RegExp(`^fake: ${SCENARIOS.length} pass, 0 fail`, "m"));
  }, SLOW);

  it("an --env that names no column is a usage error (exit 2), not an empty matrix", () => {
    const r = matrix(["--driver", "fake", "--env", "qemuu", "--out", join(dir, "typo")]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/--env qemuu names no column of the selected drivers/);
  }, SLOW);

  it("a run killed mid-way leaves the matrix of the columns that finished, and names the one it was running", async () => {
    const marker = join(dir, "second-column-started");
    const slow = await slowSpawnPlugin(dir, "slow", 60_000, marker);
    const out = join(dir, "killed");
    const cli = startCli(["matrix", "--runner", "direct", "--driver", "fake", "--driver", slow, "--out", out], dir);
    try {
      await until(() => existsSync(marker), 120_000);
      cli.group("SIGKILL");
      await cli.exited;
    } finally {
      cli.group("SIGKILL");
    }
    const written = JSON.parse(await readFile(join(out, "support-matrix.json"), "utf8")) as SupportMatrix;
    // The column that was running says it did not finish (a reader must not take it for absent).
    expect(written.drivers.map((d) => [d.name, d.availability])).toEqual([["fake", "ran"], ["slow", "failed"]]);
    expect(written.drivers[0]?.summary).toMatchObject({ pass: SCENARIOS.length, fail: 0 });
    expect(written.drivers[1]?.reason).toBe("the matrix was stopped while it ran this column");
    expect(written.cells.slow?.["lifecycle.spawn"]?.reason).toBe("the run did not finish: the matrix was stopped while it ran this column");
  }, SLOW);
});
