// `conformance run --env X` under vitest (the default runner): the environment's build runs in
// the CLI before the worker starts, so its progress shows (the worker's output is not passed on).
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FAKE_PLUGIN_URL, startCli } from "./testing/cli-process.js";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "virtkit-prepare-before-run-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("conformance run --env with an environment that builds", () => {
  it("builds first with its progress on stderr, says nothing of what is cached, then runs", async () => {
    const plugin = join(dir, "builds.mjs");
    await writeFile(
      plugin,
      `import { plugin as fake } from ${JSON.stringify(FAKE_PLUGIN_URL)};
export const plugin = {
  ...fake,
  name: "builds",
  environments: [{
    name: "imaged",
    description: "a fake whose environment has an image to build",
    async unavailable() { return undefined; },
    async conformanceEnvironment() { return fake.conformanceEnvironment(fake.optionsSchema.parse({})); },
    async prepare(progress) {
      progress("base: cached base:1");
      progress("guest: start guest:2");
      progress("guest: done guest:2 in 0.1 s");
    },
  }],
};
`,
    );
    const run = startCli(["conformance", "run", "--driver", plugin, "--env", "imaged", "--focus", "^lifecycle\\.spawn$"], dir);
    const { code } = await run.exited;
    expect(code, run.err()).toBe(0);
    expect(run.err()).toContain("virtkit: imaged: guest: start guest:2\n");
    expect(run.err()).toContain("virtkit: imaged: guest: done guest:2 in 0.1 s\n");
    expect(run.err()).not.toContain("cached");
    expect(run.out()).toMatch(/PASS: 1 passed/);
  }, 120_000);
});
