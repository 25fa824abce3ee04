// What `conformance run` does before its run starts, as a user meets it: real spawns of bin/run.js.
// A file named as a report is left alone until the run really starts (a typo must not destroy it);
// a report path that cannot be written is exit 2 with one line; a driver module that never finishes
// loading is a typed error at a deadline, and Ctrl-C while it loads exits at once; `pnpm virtkit`
// resolves relative paths against the directory it was called from.
import { spawnSync } from "node:child_process";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EXIT_INTERRUPTED } from "./interrupt.js";
import { CLEAN_ENV, CLI_BIN, startCli, until, wrappedFakePlugin } from "./testing/cli-process.js";

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
// Each test spawns the CLI several times; on a loaded 2-core machine one spawn can take 10 s.
const SLOW = 240_000;

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "virtkit-run-start-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function virtkit(args: string[], timeout = 120_000) {
  const t0 = Date.now();
  const r = spawnSync(process.execPath, [CLI_BIN, ...args], { encoding: "utf8", cwd: dir, env: CLEAN_ENV, timeout });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, ms: Date.now() - t0 };
}

describe("report files before the run starts", () => {
  it("a file named by --report-json/--junit/--tap survives a run that never starts (bad driver, empty selection)", async () => {
    const files = { json: join(dir, "keep.json"), junit: join(dir, "keep.xml"), tap: join(dir, "keep.tap") };
    for (const f of Object.values(files)) await writeFile(f, "important\n");
    const reports = ["--report-json", files.json, "--junit", files.junit, "--tap", files.tap];
    for (const args of [
      ["--driver", "nope"],
      ["--driver", "fake", "--focus", "^no-such-scenario$"],
    ]) {
      const r = virtkit(["conformance", "run", ...args, ...reports]);
      expect(r.status, r.stderr).toBe(2);
      for (const f of Object.values(files)) expect(await readFile(f, "utf8").catch(() => "(removed)"), `${args.join(" ")}: ${f}`).toBe("important\n");
    }
  }, SLOW);

  it("a report path that cannot be written (/proc/version) is exit 2 with one clear line, not a raw EPERM", () => {
    const r = virtkit(["conformance", "run", "--driver", "fake", "--runner", "direct", "--report-json", "/proc/version"]);
    expect(r.status, r.stderr).toBe(2);
    expect(r.stdout).toBe("");
    expect(r.stderr.trimEnd().split("\n")).toHaveLength(1);
    expect(r.stderr).toMatch(/cannot write the --report-json report to \/proc\/version: /);
    expect(r.stderr).not.toMatch(/EPERM/);
  }, SLOW);
});

describe("a driver module that never finishes loading", () => {
  it("a top-level await nothing settles is a typed error at the deadline naming the file (exit 1), not a silent exit 13", async () => {
    const file = join(dir, "never.mjs");
    await writeFile(file, "await new Promise(() => {});\nexport const plugin = {};\n");
    const r = virtkit(["conformance", "run", "--driver", file]);
    expect(r.status, r.stderr).toBe(1);
    expect(r.stdout).toBe("");
    expect(r.stderr).toMatch(/never\.mjs.* did not finish within 10000 ms \[VIRTKIT_OPERATION_TIMEOUT\]/);
  }, SLOW);

  /** `dir/timer.mjs`: a module whose top-level await waits on a timer (it writes `marker` first). */
  async function timerPlugin(marker: string): Promise<string> {
    const file = join(dir, "timer.mjs");
    await writeFile(
      file,
      `import { writeFileSync } from "node:fs";\nwriteFileSync(${JSON.stringify(marker)}, "");\nawait new Promise((r) => setTimeout(r, 1e9));\nexport const plugin = {};\n`,
    );
    return file;
  }

  it("one whose top-level await holds a timer does not hang the CLI: the same error at the deadline", async () => {
    const file = await timerPlugin(join(dir, "timer-loaded"));
    const r = virtkit(["conformance", "run", "--driver", file], 60_000);
    expect(r.status, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/timer\.mjs.* did not finish within 10000 ms \[VIRTKIT_OPERATION_TIMEOUT\]/);
  }, SLOW);

  it("SIGTERM while it loads exits 130 at once, saying no scenario ran (nothing was running to clean up)", async () => {
    const marker = join(dir, "timer-loading");
    const file = await timerPlugin(marker);
    const run = startCli(["conformance", "run", "--driver", file], dir);
    try {
      await until(() => existsSync(marker), 60_000);
      const t0 = Date.now();
      run.group("SIGTERM");
      const { code } = await run.exited;
      expect(code, run.err()).toBe(EXIT_INTERRUPTED);
      // No 30 s grace, and no word of scenarios that did not clean up.
      expect(Date.now() - t0).toBeLessThan(5_000);
      expect(run.err()).not.toMatch(/clean up/);
      expect(run.err()).toMatch(/interrupted before any scenario ran/);
    } finally {
      run.group("SIGKILL");
    }
  }, SLOW);
});

describe("pnpm virtkit", () => {
  it("resolves a relative --driver against the directory pnpm was called from (INIT_CWD), not the repository's root", async () => {
    const sub = join(dir, "sub");
    await mkdir(sub);
    await wrappedFakePlugin(sub, "fromhere", "(d) => d");
    const script = (JSON.parse(await readFile(join(repoRoot, "package.json"), "utf8")) as { scripts: Record<string, string> }).scripts.virtkit;
    // As pnpm runs a root script: `sh -c '<script> <args>'` at the root, the caller's directory in INIT_CWD.
    const r = spawnSync("sh", ["-c", `${script} conformance run --driver ./fromhere.mjs --dry-run --json`], {
      cwd: repoRoot,
      env: { ...CLEAN_ENV, INIT_CWD: sub },
      encoding: "utf8",
      timeout: 120_000,
    });
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ driver: { name: "fromhere" } });
  }, SLOW);
});
