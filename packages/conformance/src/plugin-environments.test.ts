// Named environments a plugin offers (`--env`): chosen by name, asked whether they can run here,
// built from the raw options, one column each; what the kit refuses, typed.
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { resolveDriver } from "./resolve-driver.js";
import { runConformance } from "./runner.js";

let dir: string;
// The temporary file cannot resolve workspace packages by name: it imports the fake by its URL.
const FAKE_URL = import.meta.resolve("@virtkit/driver-fake");
const PLUGIN = (environments: string) => `import { plugin as fake } from ${JSON.stringify(FAKE_URL)};
export const plugin = {
  ...fake,
  name: "envs",
  conformanceEnvironment: undefined,
  environments: ${environments},
};
`;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "virtkit-envs-"));
  // Two environments on top of the fake's own: one that runs (and counts its dispose), one that cannot.
  await writeFile(
    join(dir, "envs-driver.mjs"),
    PLUGIN(`[
    {
      name: "here",
      description: "runs anywhere",
      async unavailable() { return undefined; },
      async conformanceEnvironment(raw, env) {
        globalThis.__envsRaw = raw;
        const factory = fake.conformanceEnvironment(fake.optionsSchema.parse({}));
        return Object.assign((ctx) => factory(ctx), { async dispose() { globalThis.__envsDisposed = (globalThis.__envsDisposed ?? 0) + 1; } });
      },
    },
    {
      name: "elsewhere",
      description: "needs what this machine lacks",
      async unavailable(env) { return env.ENVS_TEST_ENGINE ? undefined : "no engine answers (set ENVS_TEST_ENGINE)"; },
      async conformanceEnvironment() { throw new Error("must not be built when unavailable"); },
    },
  ]`),
  );
  await writeFile(join(dir, "bad-envs-driver.mjs"), PLUGIN(`[{ name: "x y", description: 3 }, { name: "a", description: "", unavailable() {}, conformanceEnvironment() {} }, { name: "a", description: "", unavailable() {}, conformanceEnvironment() {} }]`));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const g = globalThis as { __envsRaw?: unknown; __envsDisposed?: number };

describe("named environments", () => {
  it("builds the chosen environment from the raw options; the report's column is <driver>-<env>", async () => {
    const resolved = await resolveDriver(join(dir, "envs-driver.mjs"), ["level=3"], { environment: "here", env: {} });
    expect(g.__envsRaw).toEqual({ level: "3" });
    expect(resolved.descriptor).toMatchObject({ name: "envs-here", environment: "here" });
    const before = g.__envsDisposed ?? 0;
    const report = await runConformance({
      driver: resolved.descriptor,
      environment: resolved.environment,
      focus: ["^lifecycle\\.spawn$"],
    });
    expect(report.results.map((r) => r.status)).toEqual(["pass"]);
    // What the factory shares between scenarios is released once the run is over.
    expect(g.__envsDisposed).toBe(before + 1);
  });

  it("refuses an environment that cannot run here with its reason, typed, before building it", async () => {
    await expect(resolveDriver(join(dir, "envs-driver.mjs"), [], { environment: "elsewhere", env: {} })).rejects.toMatchObject({
      code: "VIRTKIT_HYPERVISOR_UNAVAILABLE",
      message: expect.stringMatching(/"elsewhere" cannot run here: no engine answers \(set ENVS_TEST_ENGINE\)/),
    });
  });

  it("refuses an unknown environment naming those the plugin offers, and any for a plugin with none", async () => {
    await expect(resolveDriver(join(dir, "envs-driver.mjs"), [], { environment: "nope", env: {} })).rejects.toMatchObject({
      code: "VIRTKIT_INVALID_INPUT",
      message: expect.stringMatching(/offers no environment by that name \(it offers: here, elsewhere\)/),
    });
    await expect(resolveDriver("fake", [], { environment: "here" })).rejects.toMatchObject({
      code: "VIRTKIT_INVALID_INPUT",
      message: expect.stringMatching(/offers no named environments/),
    });
  });

  it("rejects a manifest whose environments are malformed, naming each problem", async () => {
    await expect(resolveDriver(join(dir, "bad-envs-driver.mjs"))).rejects.toMatchObject({
      code: "VIRTKIT_DRIVER_LOAD_FAILED",
      message: expect.stringMatching(
        /environments\[0\]\.name must be .*environments\[0\]\.description must be a string.*environments\[0\]\.unavailable must be a function.*environments\[2\]\.name "a" is given twice/,
      ),
    });
  });
});
