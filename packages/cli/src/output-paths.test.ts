// Output and input paths checked before any work, as a user meets them: real spawns of bin/run.js.
// Unwritable report targets (`/dev/full`, a dangling or colliding link), output directories that
// cannot be made (`/proc`, a file), bench reports that are no bench reports (/dev/zero, negative
// latencies) and a driver named like a bundled one: each exits 2 at once with one clear line.
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const bin = join(root, "bin", "run.js");
const cleanEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("VIRTKIT_LIBVIRT")));

// Each test spawns the CLI several times; on a loaded 2-core machine one spawn can take 10 s.
const SLOW = 240_000;

function virtkit(args: string[], timeout = 60_000) {
  const t0 = Date.now();
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: "utf8", cwd: dir, env: cleanEnv, timeout });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, ms: Date.now() - t0, timedOut: r.error !== undefined };
}

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "virtkit-paths-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("report targets are checked before the run", () => {
  it("/dev/full (or any non-regular file) as --output / --junit exits 2 before anything runs", () => {
    for (const args of [
      ["conformance", "bench", "--driver", "fake", "--output", "/dev/full"],
      ["conformance", "run", "--driver", "fake", "--junit", "/dev/full"],
    ]) {
      const r = virtkit(args);
      expect(r.status, args.join(" ")).toBe(2);
      expect(r.stderr).toMatch(/cannot write the --(output|junit) report to \/dev\/full: not a regular file/);
      expect(r.stdout).toBe("");
    }
  }, SLOW);

  it("a symbolic link to a file in a missing directory, or to another report's file, exits 2 naming the target", async () => {
    await symlink(join(dir, "no-such-dir", "junit.xml"), join(dir, "dangling.xml"));
    const dangling = virtkit(["conformance", "run", "--driver", "fake", "--junit", "dangling.xml"]);
    expect(dangling.status).toBe(2);
    expect(dangling.stderr).toMatch(/the directory .*no-such-dir does not exist \(a symbolic link to .*no-such-dir\/junit\.xml\)/);
    // The link's target does not exist yet: both would write report.tap.
    await symlink("report.tap", join(dir, "alias.xml"));
    const collide = virtkit(["conformance", "run", "--driver", "fake", "--junit", "alias.xml", "--tap", "report.tap"]);
    expect(collide.status).toBe(2);
    expect(collide.stderr).toMatch(/--junit and --tap name the same file \(.*report\.tap\): each report needs its own/);
    expect(existsSync(join(dir, "report.tap"))).toBe(false);
    // A loop of links.
    await symlink("loop-b", join(dir, "loop-a"));
    await symlink("loop-a", join(dir, "loop-b"));
    const loop = virtkit(["conformance", "run", "--driver", "fake", "--report-json", "loop-a"]);
    expect(loop.status).toBe(2);
    expect(loop.stderr).toMatch(/too many levels of symbolic links/);
  }, SLOW);

  it("matrix --out that cannot be a directory exits 2 before any column runs, in bounded time", () => {
    for (const [out, why] of [
      ["/dev/full", /--out \/dev\/full: exists and is not a directory/],
      ["/proc/virtkit-matrix", /--out \/proc\/virtkit-matrix: cannot create \/proc\/virtkit-matrix/],
      ["/etc/passwd/reports", /--out \/etc\/passwd\/reports: \/etc\/passwd is not a directory/],
    ] as const) {
      const r = virtkit(["matrix", "--driver", "fake", "--out", out], 30_000);
      expect(r.timedOut, out).toBe(false);
      expect(r.status, out).toBe(2);
      expect(r.stderr, out).toMatch(why);
      expect(r.stdout, out).toBe("");
    }
  }, SLOW);
});

describe("init driver checks its directory and name first", () => {
  it("--dir under /proc, on a file, or under a missing parent exits 2 in bounded time, nothing written", () => {
    for (const [target, why] of [
      ["/proc/virtkit-init", /--dir \/proc\/virtkit-init: cannot create \/proc\/virtkit-init/],
      ["/etc/passwd", /--dir \/etc\/passwd: exists and is not a directory/],
      [join(dir, "missing", "demo"), /the parent directory .*missing does not exist/],
    ] as const) {
      const r = virtkit(["init", "driver", "demo", "--dir", target], 30_000);
      expect(r.timedOut, target).toBe(false);
      expect(r.status, target).toBe(2);
      expect(r.stderr, target).toMatch(why);
      expect(r.stderr, target).not.toMatch(/ENOTDIR:|\n\s+at /);
    }
    expect(existsSync(join(dir, "missing"))).toBe(false);
  }, SLOW);

  it("an empty --out or --dir, or one that is a dangling symbolic link, exits 2 saying so (not the cwd, not EEXIST)", async () => {
    await symlink(join(dir, "nowhere"), join(dir, "dangling-dir"));
    for (const args of [
      ["matrix", "--driver", "fake", "--out", ""],
      ["init", "driver", "demo", "--dir", ""],
    ]) {
      const r = virtkit(args, 30_000);
      expect(r.status, args.join(" ")).toBe(2);
      expect(r.stderr, args.join(" ")).toMatch(/--(out|dir) is empty: give a directory/);
    }
    const r = virtkit(["init", "driver", "demo", "--dir", join(dir, "dangling-dir")], 30_000);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/dangling-dir: is a symbolic link to .*nowhere, which does not exist/);
    expect(existsSync(join(dir, "nowhere"))).toBe(false);
    expect(existsSync(join(dir, "support-matrix.json"))).toBe(false);
  }, SLOW);

  it("a path with control characters is shown escaped, never sent to the terminal raw", async () => {
    const out = join(dir, "m\u001b[31mred\u0007");
    const r = virtkit(["matrix", "--driver", "fake", "--out", out]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain("m\\u001b[31mred\\u0007");
    expect(r.stdout + r.stderr).not.toContain("\u001b");
    expect(r.stdout + r.stderr).not.toContain("\u0007");
    const made = virtkit(["init", "driver", "demo", "--dir", join(dir, "new\u001b[31mdrv")], 30_000);
    expect(made.status, made.stderr).toBe(0);
    expect(made.stdout).toContain("new\\u001b[31mdrv");
    expect(made.stdout).not.toContain("\u001b");
    const bad = virtkit(["init", "driver", "demo", "--dir", join(dir, "missing\u001b[2J", "deeper", "x")], 30_000);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain("\\u001b[2J");
    expect(bad.stderr).not.toContain("\u001b");
  }, SLOW);

  it("refuses a name a bundled driver has (its --driver would load the bundled one)", () => {
    const r = virtkit(["init", "driver", "fake", "--dir", join(dir, "fake-driver")]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/"fake" is the name of a driver bundled with virtkit \(@virtkit\/driver-fake\)/);
    expect(existsSync(join(dir, "fake-driver"))).toBe(false);
  }, SLOW);
});

describe("matrix --bench-report checks what it reads", () => {
  it("refuses a non-regular file (/dev/zero would never end) and a file over the size cap", async () => {
    const zero = virtkit(["matrix", "--driver", "fake", "--out", join(dir, "m"), "--bench-report", "/dev/zero"], 30_000);
    expect(zero.timedOut).toBe(false);
    expect(zero.status).toBe(2);
    expect(zero.stderr).toMatch(/cannot read --bench-report \/dev\/zero: not a regular file/);
    const big = join(dir, "big.json");
    await writeFile(big, Buffer.alloc(10 * 1024 * 1024 + 1, 0x20));
    const r = virtkit(["matrix", "--driver", "fake", "--out", join(dir, "m"), "--bench-report", big]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/10485761 bytes, more than a bench report can be/);
    // A FIFO: opening it would wait for a writer for ever.
    const fifo = join(dir, "fifo.json");
    expect(spawnSync("mkfifo", [fifo]).status).toBe(0);
    for (const args of [
      ["matrix", "--driver", "fake", "--out", join(dir, "m"), "--bench-report", fifo],
      ["conformance", "run", "--driver", "fake", "--config", fifo],
    ]) {
      const f = virtkit(args, 30_000);
      expect(f.timedOut, args.join(" ")).toBe(false);
      expect(f.status, args.join(" ")).toBe(2);
      expect(f.stderr, args.join(" ")).toMatch(/not a regular file/);
    }
  }, SLOW);

  it("refuses negative, huge and out-of-order latencies, before any column runs", async () => {
    const good = join(dir, "bench.json");
    const made = virtkit(["conformance", "bench", "--driver", "fake", "--count", "2", "--operations", "spawn,destroy", "--output", good]);
    expect(made.status, made.stderr).toBe(0);
    const report = JSON.parse(await readFile(good, "utf8")) as { operations: { status: string; latency?: Record<string, number> }[] };
    const cases: [string, (l: Record<string, number>) => void, RegExp][] = [
      ["negative", (l) => (l.minMs = -1), /latency\.minMs -1 is not a latency/],
      ["huge", (l) => (l.maxMs = 1e300), /latency\.maxMs 1e\+300 is not a latency/],
      ["order", (l) => { l.p50Ms = (l.maxMs ?? 0) + 1; }, /is out of order/],
      ["samples", (l) => (l.samples = 0.5), /samples 0\.5 is not an integer/],
    ];
    for (const [name, mutate, why] of cases) {
      const copy = structuredClone(report);
      const op = copy.operations.find((o) => o.status === "measured");
      mutate(op!.latency!);
      const file = join(dir, `bench-${name}.json`);
      await writeFile(file, JSON.stringify(copy));
      const r = virtkit(["matrix", "--driver", "fake", "--out", join(dir, "m"), "--bench-report", file]);
      expect(r.status, name).toBe(2);
      expect(r.stderr, name).toMatch(why);
      expect(r.stdout, name).toBe("");
    }
  }, SLOW);
});
