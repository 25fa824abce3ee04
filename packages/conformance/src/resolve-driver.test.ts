import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { JsonReporter } from "./reporters/json.js";
import { resolveDriver } from "./resolve-driver.js";
import { summarize } from "./types.js";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "virtkit-resolve-"));
  // A plugin taking credentials, with a minimal schema (no zod needed): it accepts what it is given.
  await writeFile(
    join(dir, "creds-driver.mjs"),
    `export const plugin = {
  kind: "virtkit-driver", name: "creds", version: "1.0.0", contractVersion: "^1.0.0", description: "takes credentials",
  optionsSchema: { shape: { uri: 1, username: 1, password: 1 }, safeParse: (data) => ({ success: true, data }) },
  register(container, { token }) {
    const call = async () => undefined;
    container.register(token, { useValue: { name: "creds", capabilities: {}, initHost: call, cleanupHost: call, getHostInfo: call,
      listInstances: call, listInstanceUuids: call, instanceExists: call, getInfo: call, spawn: call, destroy: call,
      reboot: call, powerOff: call, powerOn: call } });
  },
};
`,
  );
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("resolveDriver", () => {
  it("keeps credentials out of the descriptor every report shows", async () => {
    const resolved = await resolveDriver(
      "./creds-driver.mjs",
      ["uri=xen+https://root:hunter2@xen-1/api", "username=root", "password=s3cr3t-pass"],
      { cwd: dir },
    );
    // The plugin still gets the real values.
    expect(resolved.options).toMatchObject({ password: "s3cr3t-pass", uri: "xen+https://root:hunter2@xen-1/api" });
    expect(resolved.descriptor.options).toEqual({
      uri: "xen+https://root:***@xen-1/api",
      username: "root",
      password: "***",
    });
    const json = new JsonReporter().render({
      driver: resolved.descriptor,
      notes: [],
      level: "MUST",
      startedAt: new Date(0).toISOString(),
      durationMs: 0,
      runner: "direct",
      results: [],
      ...summarize([], "MUST"),
    });
    expect(json).not.toMatch(/hunter2|s3cr3t-pass/);
  });
});
