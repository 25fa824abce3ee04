// `virtkit matrix` (the main job) exits 1 when a column fails a MUST scenario or cannot be set up,
// and says which; 0 when every column keeps the contract.
import { spawnSync } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { SupportMatrix } from "@virtkit/conformance";
import { CLEAN_ENV, CLI_BIN, FAKE_PLUGIN_URL, unreachablePlugin } from "./testing/cli-process.js";

const SLOW = 300_000;
let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "virtkit-matrix-exit-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function matrix(args: string[]) {
  const r = spawnSync(process.execPath, [CLI_BIN, "matrix", "--runner", "direct", ...args], { cwd: dir, encoding: "utf8", env: CLEAN_ENV, timeout: 240_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe("virtkit matrix: the exit code", () => {
  it("1 when a column fails a MUST scenario or cannot be set up, 0 when all keep the contract", async () => {
    const broken = join(dir, "nopause.mjs");
    // The fake whose pause says yes and does nothing.
    await writeFile(
      broken,
      `import { plugin as fake } from ${JSON.stringify(FAKE_PLUGIN_URL)};
export const plugin = {
  ...fake,
  name: "nopause",
  register(container, reg) {
    const inner = container.createChildContainer();
    fake.register(inner, reg);
    let driver;
    container.register(reg.token, { useFactory: () => (driver ??= (() => { const d = inner.resolve(reg.token); d.pause = async () => undefined; return d; })()) });
  },
};
`,
    );
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
});
