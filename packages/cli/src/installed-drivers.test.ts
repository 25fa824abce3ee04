// `drivers`, `env list` and `matrix` see the same drivers: one discovery by the manifest's kind in
// the dependency tree, not a fixed list of names. Real spawns of bin/run.js in a temp project
// whose only dependency is a driver package virtkit has never heard of.
import { spawnSync } from "node:child_process";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const bin = join(root, "bin", "run.js");
const fakePlugin = pathToFileURL(join(root, "node_modules", "@virtkit", "driver-fake", "dist", "plugin.js")).href;
const cleanEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("VIRTKIT_LIBVIRT")));

function virtkit(args: string[], cwd: string) {
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: "utf8", cwd, env: cleanEnv, timeout: 120_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

let project: string;
beforeAll(async () => {
  project = await mkdtemp(join(tmpdir(), "virtkit-discovery-"));
  // Named like no driver and absent from core's KNOWN_DRIVERS: only its `virtkit.kind` marks it.
  const pkg = join(project, "node_modules", "acme-hypervisor-plugin");
  await mkdir(pkg, { recursive: true });
  await writeFile(
    join(project, "package.json"),
    JSON.stringify({ name: "acme-project", version: "0.0.0", private: true, dependencies: { "acme-hypervisor-plugin": "1.2.3" } }),
  );
  await writeFile(
    join(pkg, "package.json"),
    JSON.stringify({ name: "acme-hypervisor-plugin", version: "1.2.3", type: "module", main: "index.js", virtkit: { kind: "virtkit-driver" } }),
  );
  await writeFile(
    join(pkg, "index.js"),
    `import { plugin as fake } from ${JSON.stringify(fakePlugin)};
export const plugin = {
  ...fake,
  name: "acme",
  version: "1.2.3",
  environments: [
    {
      name: "nowhere",
      description: "a lab that is never reachable from a test",
      unavailable: async () => "the acme lab is not reachable from here",
      conformanceEnvironment: () => { throw new Error("never built: unavailable"); },
    },
  ],
};
`,
  );
});
afterAll(async () => {
  await rm(project, { recursive: true, force: true });
});

describe("installed drivers: one discovery for drivers, env list and matrix", () => {
  it("a package whose import never settles is listed broken (timed out), not a silent exit 13", async () => {
    const hung = await mkdtemp(join(tmpdir(), "virtkit-discovery-hang-"));
    try {
      await writeFile(join(hung, "package.json"), JSON.stringify({ name: "p", version: "0.0.0", private: true, dependencies: { "virtkit-driver-hang": "0.0.1" } }));
      const pkg = join(hung, "node_modules", "virtkit-driver-hang");
      await mkdir(pkg, { recursive: true });
      await writeFile(join(pkg, "package.json"), JSON.stringify({ name: "virtkit-driver-hang", version: "0.0.1", type: "module", main: "index.js", keywords: ["virtkit-driver"] }));
      await writeFile(join(pkg, "index.js"), "await new Promise(() => {});\n");
      const r = virtkit(["drivers", "--json"], hung);
      expect(r.status, r.stderr).toBe(0);
      const listed = (JSON.parse(r.stdout) as { drivers: { package: string; status?: string; error?: string }[] }).drivers;
      const entry = listed.find((d) => d.package === "virtkit-driver-hang");
      expect(JSON.stringify(entry)).toMatch(/did not finish within 10000 ms/);
    } finally {
      await rm(hung, { recursive: true, force: true });
    }
  }, 60_000);

  it("env list shows the environments of a driver found by its kind, as drivers lists it", () => {
    const drivers = virtkit(["drivers", "--json"], project);
    expect(drivers.status, drivers.stderr).toBe(0);
    const listed = (JSON.parse(drivers.stdout) as { drivers: { name: string; package: string }[] }).drivers;
    expect(listed).toContainEqual(expect.objectContaining({ name: "acme", package: "acme-hypervisor-plugin" }));
    const env = virtkit(["env", "list", "--json"], project);
    expect(env.status, env.stderr).toBe(0);
    const { environments, defaults } = JSON.parse(env.stdout) as {
      environments: { driver: string; name: string; unavailable?: string }[];
      defaults: { driver: string }[];
    };
    expect(environments).toContainEqual(
      expect.objectContaining({ driver: "acme", name: "nowhere", unavailable: "the acme lab is not reachable from here" }),
    );
    // Every driver env list shows is one `drivers` lists, and the other way round.
    const shown = new Set([...environments.map((e) => e.driver), ...defaults.map((d) => d.driver)]);
    expect([...shown].sort()).toEqual([...new Set(listed.map((d) => d.name))].sort());
  });

  it("matrix gives the discovered driver its column (here: its one environment, recorded unavailable with why)", async () => {
    const out = join(project, "reports");
    const r = virtkit(["matrix", "--json", "--out", out, "--env", "nowhere"], project);
    expect(r.status, r.stderr).toBe(0);
    const matrix = JSON.parse(await readFile(join(out, "support-matrix.json"), "utf8")) as {
      drivers: { name: string; availability: string; reason?: string; spec?: string }[];
    };
    expect(matrix.drivers).toEqual([
      expect.objectContaining({ name: "acme-nowhere", availability: "unavailable", reason: "the acme lab is not reachable from here" }),
    ]);
  });
});
