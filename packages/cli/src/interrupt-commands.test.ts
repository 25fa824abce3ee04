// Ctrl-C during `virtkit matrix` and `virtkit env build`: the matrix starts no new column, writes
// what finished and exits 130; the build is stopped, removes what it started, and exits 130. The
// signal goes to the CLI's whole process group, as a terminal's Ctrl-C does.
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { SupportMatrix } from "@virtkit/conformance";
import { EXIT_INTERRUPTED } from "./interrupt.js";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const bin = join(root, "bin", "run.js");
const fakePlugin = pathToFileURL(join(root, "node_modules", "@virtkit", "driver-fake", "dist", "plugin.js")).href;
const cleanEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("VIRTKIT_LIBVIRT")));
const SLOW = 240_000;

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "virtkit-interrupt-commands-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Starts `virtkit args` in its own process group; resolves with its output when it exits. */
function start(args: string[]) {
  const child = spawn(process.execPath, [bin, ...args], { cwd: dir, env: cleanEnv, detached: true, stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on("exit", (code, signal) => resolve({ code, signal })),
  );
  const group = (signal: NodeJS.Signals) => {
    try {
      process.kill(-child.pid!, signal);
    } catch {
      // Already gone.
    }
  };
  return { exited, group, out: () => stdout, err: () => stderr };
}

async function until(check: () => boolean, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe("Ctrl-C during virtkit matrix", () => {
  it("starts no new column, writes the matrix with what finished, exits 130", async () => {
    const marker = join(dir, "matrix-spawned");
    const slow = join(dir, "slowcol.mjs");
    // The fake, each spawn slowed by 200 ms, so the first column is surely still running when the signal comes.
    await writeFile(
      slow,
      `import { writeFileSync } from "node:fs";
import { plugin as fake } from ${JSON.stringify(fakePlugin)};
export const plugin = {
  ...fake,
  name: "slowcol",
  register(container, reg) {
    const inner = container.createChildContainer();
    fake.register(inner, reg);
    let driver;
    container.register(reg.token, { useFactory: () => (driver ??= (() => {
      const d = inner.resolve(reg.token);
      const spawn = d.spawn.bind(d);
      d.spawn = async (...args) => { writeFileSync(${JSON.stringify(marker)}, ""); await new Promise((r) => setTimeout(r, 200)); return spawn(...args); };
      return d;
    })()) });
  },
};
`,
    );
    const out = join(dir, "matrix");
    const run = start(["matrix", "--driver", slow, "--driver", "fake", "--runner", "direct", "--parallel", "1", "--out", out]);
    try {
      await until(() => existsSync(marker), 120_000);
      // A few scenarios finish first.
      await new Promise((r) => setTimeout(r, 1_500));
      run.group("SIGINT");
      const { code } = await run.exited;
      expect(code, run.err()).toBe(EXIT_INTERRUPTED);
      expect(run.err()).toMatch(/SIGINT: no new column starts/);
      const matrix = JSON.parse(await readFile(join(out, "support-matrix.json"), "utf8")) as SupportMatrix;
      const slowcol = matrix.drivers.find((d) => d.name === "slowcol");
      expect(slowcol).toMatchObject({ availability: "ran", ok: false });
      expect(slowcol?.notes.some((n) => /^interrupted by SIGINT: \d+ of \d+ scenarios finished/.test(n))).toBe(true);
      expect(slowcol?.summary?.pass).toBeGreaterThan(0);
      expect(slowcol?.summary?.fail).toBe(0);
      // The column after it never started, and the matrix says so.
      expect(matrix.drivers.find((d) => d.name === "fake")).toMatchObject({
        availability: "unavailable",
        reason: "not run: the matrix was interrupted by SIGINT",
      });
      expect(existsSync(join(out, "support-matrix.html"))).toBe(true);
    } finally {
      run.group("SIGKILL");
    }
  }, SLOW);
});

describe("Ctrl-C during virtkit env build", () => {
  it("stops the build, lets it remove what it started, exits 130", async () => {
    const partial = join(dir, "partial-build-container");
    const plugin = join(dir, "slowbuild.mjs");
    // An environment whose build runs until stopped; stopping it takes 300 ms to remove its partial work.
    await writeFile(
      plugin,
      `import { rmSync, writeFileSync } from "node:fs";
import { plugin as fake } from ${JSON.stringify(fakePlugin)};
export const plugin = {
  ...fake,
  name: "slowbuild",
  environments: [{
    name: "slowbuild",
    description: "builds until stopped",
    async unavailable() { return undefined; },
    async conformanceEnvironment() { return fake.conformanceEnvironment(fake.optionsSchema.parse({})); },
    async prepare(progress, options) {
      writeFileSync(${JSON.stringify(partial)}, "");
      progress("building the image");
      // The build's own work (a socket to the engine, in a real one) keeps the process alive.
      const working = setInterval(() => undefined, 1_000);
      await new Promise((_resolve, reject) => {
        options.signal.addEventListener("abort", () => setTimeout(() => { clearInterval(working); rmSync(${JSON.stringify(partial)}, { force: true }); reject(options.signal.reason); }, 300), { once: true });
      });
    },
  }],
};
`,
    );
    const run = start(["env", "build", "slowbuild", "--driver", plugin]);
    try {
      await until(() => run.out().includes("building the image"), 60_000);
      expect(existsSync(partial)).toBe(true);
      run.group("SIGINT");
      const { code } = await run.exited;
      expect(code, run.err()).toBe(EXIT_INTERRUPTED);
      expect(run.err()).toMatch(/SIGINT: stopping the build; waiting up to 30 s for it to remove what it started/);
      expect(run.err()).toMatch(/interrupted by SIGINT: the build of slowbuild --env slowbuild stopped \(the build returned after its own cleanup\)/);
      // The build's partial work is gone: the command waited for it.
      expect(existsSync(partial)).toBe(false);
    } finally {
      run.group("SIGKILL");
    }
  }, SLOW);
});
