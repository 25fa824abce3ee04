// Core's own use of tsyringe needs no global Reflect metadata: checked in a fresh Node process
// against the build (vitest's own process may have the polyfill loaded by other files).
import { spawnSync } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { describe, expect, it } from "vitest";
import { cachedFactory, createContainer } from "./container.js";

const dist = join(dirname(fileURLToPath(import.meta.url)), "..", "dist");
const url = (file: string) => JSON.stringify(pathToFileURL(join(dist, file)).href);

describe("containers without reflect-metadata", () => {
  it("DriverRegistry, createContainer and cachedFactory work and leave Reflect alone", () => {
    const script = `
const { DriverRegistry } = await import(${url("driver-registry.js")});
const { createContainer, cachedFactory } = await import(${url("container.js")});
let built = 0;
const plugin = {
  kind: "virtkit-driver", name: "probe", version: "1.0.0", contractVersion: "^1.0.0", description: "probe",
  optionsSchema: { "~standard": { version: 1, vendor: "probe", validate: (value) => ({ value }) } },
  register(c, { token }) {
    c.register(token, { useFactory: cachedFactory(() => (built++, { initHost() {}, cleanupHost() {}, getHostInfo() {}, getInfo() {}, spawn() {}, destroy() {} })) });
  },
};
const registry = new DriverRegistry({ container: createContainer() });
registry.add("a", plugin, {});
const same = registry.get("a") === registry.container.resolve("virtkit:driver:a");
console.log(JSON.stringify({ same, built, getMetadata: typeof Reflect.getMetadata, metadata: typeof Reflect.metadata }));`;
    const r = spawnSync(process.execPath, ["--input-type=module", "-e", script], { encoding: "utf8", timeout: 60_000 });
    expect(r.stderr).toBe("");
    expect(JSON.parse(r.stdout)).toEqual({ same: true, built: 1, getMetadata: "undefined", metadata: "undefined" });
  }, 60_000);

  it("cachedFactory builds once per factory", () => {
    let n = 0;
    const c = createContainer();
    c.register("x", { useFactory: cachedFactory(() => ({ n: ++n })) });
    expect(c.resolve("x")).toBe(c.resolve("x"));
    expect(n).toBe(1);
  });
});
