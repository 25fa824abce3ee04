// Ctrl-C during `virtkit matrix` and `virtkit env build`: the matrix starts no new column, writes
// what finished and exits 130; the build is stopped, removes what it started, and exits 130. The
// signal goes to the CLI's whole process group, as a terminal's Ctrl-C does.
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { SupportMatrix } from "@virtkit/conformance";
import { EXIT_INTERRUPTED } from "./interrupt.js";
import { FAKE_PLUGIN_URL, slowSpawnPlugin, startCli, until, wrappedFakePlugin } from "./testing/cli-process.js";

const SLOW = 240_000;

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "virtkit-interrupt-commands-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("Ctrl-C during conformance run under vitest, with a worker that never lets go", () => {
  it("kills the stuck worker after the grace, reports what finished, exits 130, leaves no process behind", async () => {
    const marker = join(dir, "busy-spawned");
    // The fake whose every spawn spins forever inside vitest's worker: no timer, no signal, no
    // cancel can reach it; only killing the worker ends it.
    const busy = await wrappedFakePlugin(
      dir,
      "busyloop",
      `(d) => { d.spawn = async () => { writeFileSync(${JSON.stringify(marker)}, ""); for (;;) {} }; }`,
      `import { writeFileSync } from "node:fs";`,
    );
    const t0 = Date.now();
    const run = startCli(["conformance", "run", "--driver", busy, "--focus", "^lifecycle\\.spawn$", "--json"], dir);
    try {
      await until(() => existsSync(marker), 120_000);
      run.group("SIGINT");
      const { code } = await run.exited;
      expect(code, run.err()).toBe(EXIT_INTERRUPTED);
      // The CLI's grace is 30 s; the worker is killed inside it.
      expect(Date.now() - t0).toBeLessThan(90_000);
      // Nothing of the run is left in its process group (the spinning fork included).
      await until(() => {
        try {
          process.kill(-run.child.pid!, 0);
          return false;
        } catch {
          return true;
        }
      }, 10_000);
    } finally {
      run.group("SIGKILL");
    }
  }, SLOW);
});

describe("Ctrl-C during virtkit matrix", () => {
  it("starts no new column, writes the matrix with what finished, exits 130", async () => {
    const marker = join(dir, "matrix-spawned");
    // The fake, each spawn slowed by 200 ms, so the first column is surely still running when the signal comes.
    const slow = await slowSpawnPlugin(dir, "slowcol", 200, marker);
    const out = join(dir, "matrix");
    const run = startCli(["matrix", "--driver", slow, "--driver", "fake", "--runner", "direct", "--parallel", "1", "--out", out], dir);
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
import { plugin as fake } from ${JSON.stringify(FAKE_PLUGIN_URL)};
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
    const run = startCli(["env", "build", "slowbuild", "--driver", plugin], dir);
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
