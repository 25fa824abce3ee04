// discoverDriverPlugins walks a real node_modules tree built in a temp directory, and
// loadDriverPlugin runs a TypeScript driver file through tsx (Node 20 strips no types).
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DriverLoadError, OperationAbortedError } from "./errors.js";
import { discoverDriverPlugins, findTsx, loadDriverPlugin } from "./plugin-loader.js";

const ZOD_URL = pathToFileURL(join(dirname(createRequire(import.meta.url).resolve("zod")), "index.js")).href;

function manifestSource(name: string, extra = ""): string {
  return `import { z } from ${JSON.stringify(ZOD_URL)};
export const plugin = {
  kind: "virtkit-driver", name: ${JSON.stringify(name)}, version: "2.0.0", contractVersion: "^1.0.0",
  description: "fixture ${name}", optionsSchema: z.strictObject({}),
  register(container, reg) { container.register(reg.token, { useValue: {} }); },
};
${extra}`;
}

let root: string;
const write = (rel: string, content: string): void => {
  const file = join(root, rel);
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, content);
};
const pkg = (dir: string, manifest: Record<string, unknown>, index?: string): void => {
  write(`${dir}/package.json`, JSON.stringify({ type: "module", main: "index.js", ...manifest }));
  if (index !== undefined) write(`${dir}/index.js`, index);
};

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), "virtkit-discovery-"));
  const nm = "project/node_modules";
  // The project is itself a driver package (an author running virtkit in their own package).
  pkg(
    "project",
    {
      name: "acme-hypervisor",
      version: "0.3.0",
      keywords: ["virtkit-driver"],
      dependencies: { "virtkit-driver-alpha": "*", "@acme/thing": "*", "not-a-driver": "*", "virtkit-driver-absent": "*" },
      devDependencies: { "@acme/virtkit-driver-beta": "*", "virtkit-driver-lookalike": "*" },
    },
    manifestSource("self"),
  );
  pkg(`${nm}/virtkit-driver-alpha`, { name: "virtkit-driver-alpha", version: "1.0.0" }, manifestSource("alpha"));
  // Marked by keyword, not by name; brings a driver of its own (nested, as npm installs a conflict).
  pkg(
    `${nm}/@acme/thing`,
    {
      name: "@acme/thing",
      version: "1.0.0",
      virtkit: { kind: "virtkit-driver" },
      dependencies: { "virtkit-driver-gamma": "*" },
      devDependencies: { "virtkit-driver-devonly": "*" },
    },
    manifestSource("thing"),
  );
  pkg(`${nm}/@acme/thing/node_modules/virtkit-driver-gamma`, { name: "virtkit-driver-gamma", version: "1.0.0" }, manifestSource("gamma"));
  // Installed, but only a devDependency of a dependency: not in the tree.
  pkg(`${nm}/virtkit-driver-devonly`, { name: "virtkit-driver-devonly", version: "1.0.0" }, manifestSource("devonly"));
  // Never imported: not marked (it would throw if it were).
  pkg(`${nm}/not-a-driver`, { name: "not-a-driver", version: "1.0.0" }, 'throw new Error("imported!");');
  pkg(`${nm}/@acme/virtkit-driver-beta`, { name: "@acme/virtkit-driver-beta", version: "1.0.0" }, 'throw new Error("beta is broken");');
  // Named like a driver, but exports no manifest: not a driver, not listed.
  pkg(`${nm}/virtkit-driver-lookalike`, { name: "virtkit-driver-lookalike", version: "1.0.0" }, "export const x = 1;");
  write("drivers/package.json", JSON.stringify({ type: "module" }));
  write("drivers/typed.ts", manifestSource("typed").replace('"2.0.0"', '"2.0.0" as string') + "\nconst n: number = 1;\nexport default n;\n");
  write("empty/package.json", JSON.stringify({ name: "empty" }));
});

afterAll(() => rmSync(root, { recursive: true, force: true }));

describe("discoverDriverPlugins", () => {
  it("lists the drivers of the dependency tree, and only those", async () => {
    const found = await discoverDriverPlugins([join(root, "project")]);
    const rows = found.map((d) => [d.package, d.plugin?.name ?? null, d.error ? "error" : "ok"]);
    expect(rows).toEqual([
      ["acme-hypervisor", "self", "ok"],
      ["virtkit-driver-alpha", "alpha", "ok"],
      ["@acme/thing", "thing", "ok"],
      ["@acme/virtkit-driver-beta", null, "error"],
      ["virtkit-driver-gamma", "gamma", "ok"],
    ]);
    const beta = found.find((d) => d.package === "@acme/virtkit-driver-beta");
    expect(beta?.error).toBeInstanceOf(DriverLoadError);
    expect(beta?.error?.message).toContain("beta is broken");
    expect(found[1]).toMatchObject({ packageVersion: "1.0.0" });
  });

  it("starts from a subdirectory, merges several paths and lists each package once", async () => {
    mkdirSync(join(root, "project", "src", "deep"), { recursive: true });
    const found = await discoverDriverPlugins([join(root, "project", "src", "deep"), join(root, "project"), join(root, "empty")]);
    expect(found.filter((d) => d.package === "virtkit-driver-alpha")).toHaveLength(1);
    expect(await discoverDriverPlugins([join(root, "empty")])).toEqual([]);
  });

  it("stops on an aborted signal", async () => {
    const ac = new AbortController();
    ac.abort();
    await expect(discoverDriverPlugins([join(root, "project")], { signal: ac.signal })).rejects.toBeInstanceOf(
      OperationAbortedError,
    );
  });

  it("finds the workspace's own drivers from this package", async () => {
    const here = dirname(fileURLToPath(import.meta.url));
    // core depends on no driver: nothing is invented.
    expect((await discoverDriverPlugins([here])).map((d) => d.package)).toEqual([]);
  });
});

describe("TypeScript driver files", () => {
  it("loads a .ts plugin through tsx on a Node without type stripping (a real node process, built core)", () => {
    // Under vitest every import is transformed by vite, so the real path is checked in a child process.
    const dist = join(dirname(fileURLToPath(import.meta.url)), "..", "dist", "index.js");
    const script = `const { loadDriverPlugin } = await import(${JSON.stringify(pathToFileURL(dist).href)});
const p = await loadDriverPlugin(${JSON.stringify(join(root, "drivers", "typed.ts"))});
console.log(JSON.stringify({ name: p.name, typescript: process.features.typescript ?? null }));`;
    const r = spawnSync(process.execPath, ["--input-type=module", "-e", script], { encoding: "utf8", timeout: 60_000 });
    expect(r.stderr).toBe("");
    expect(JSON.parse(r.stdout)).toEqual({ name: "typed", typescript: null });
  }, 60_000);

  it("knows where tsx is and is not installed", () => {
    expect(findTsx([join(root, "empty")])).toBeUndefined();
    expect(findTsx([dirname(fileURLToPath(import.meta.url))])).toMatch(/tsx/);
  });

  it("refuses other extensions with a message naming the supported ones", async () => {
    write("drivers/plugin.coffee", "");
    await expect(loadDriverPlugin(join(root, "drivers", "plugin.coffee"))).rejects.toThrow(/\.ts \/ \.mts/);
  });
});
