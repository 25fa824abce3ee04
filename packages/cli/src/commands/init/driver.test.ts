// `virtkit init driver` as a user runs it: the real binary writes a package into a temp directory,
// which gets workspace links in place of `npm install` (the same packages `pnpm pack` ships);
// then the new package typechecks, builds, is listed by `virtkit drivers`, and passes the kit
// from the CLI, through its TypeScript source (tsx) and through its build.
import { spawnSync } from "node:child_process";
import { mkdirSync, symlinkSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const cliRoot = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
const workspace = join(cliRoot, "..", "..");
const bin = join(cliRoot, "bin", "run.js");
const coreRequire = createRequire(join(workspace, "packages", "core", "package.json"));

function virtkit(args: string[], cwd: string, timeout = 120_000) {
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: "utf8", cwd, timeout });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** The directory of `name` as the workspace installed it (a real directory, not a link). */
function installed(name: string, from = coreRequire): string {
  return dirname(from.resolve(`${name}/package.json`));
}

let dir: string;
let pkg: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "virtkit-init-"));
  pkg = join(dir, "demo");
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("virtkit init driver", () => {
  it("writes the package, and refuses a bad name or a directory in use (exit 2)", async () => {
    const r = virtkit(["init", "driver", "demo-hv", "--dir", pkg, "--json"], dir);
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    const result = JSON.parse(r.stdout) as { dir: string; package: string; files: string[] };
    expect(result.package).toBe("virtkit-driver-demo-hv");
    expect(result.files).toEqual(
      expect.arrayContaining([
        "package.json",
        "README.md",
        "src/demo-hv-driver.ts",
        "src/plugin.ts",
        "src/conformance-environment.ts",
        "src/conformance.test.ts",
      ]),
    );
    const manifest = JSON.parse(await readFile(join(pkg, "package.json"), "utf8")) as Record<string, unknown>;
    expect(manifest).toMatchObject({ keywords: ["virtkit-driver"], virtkit: { kind: "virtkit-driver" }, type: "module" });
    expect(await readFile(join(pkg, "src", "conformance.test.ts"), "utf8")).toContain("defineConformanceSuite");
    expect(await readFile(join(pkg, "src", "demo-hv-driver.ts"), "utf8")).toContain("extends BaseComputeDriver");
    // @virtkit/* is not on the npm registry: the README says so and installs from pnpm pack tarballs.
    const readme = await readFile(join(pkg, "README.md"), "utf8");
    expect(readme).toMatch(/not published on the npm registry yet/);
    expect(readme).toContain("pnpm pack --pack-destination /tmp/virtkit-tarballs");
    expect(readme).toContain("npm install /tmp/virtkit-tarballs/virtkit-{core,driver-fake,conformance,cli}-*.tgz");
    // No bare `npm install` step that cannot work.
    expect(readme).not.toMatch(/^npm install\s*(#.*)?$/m);
    const human = virtkit(["init", "driver", "demo-hv", "--dir", join(dir, "human")], dir);
    expect(human.status, human.stderr).toBe(0);
    expect(human.stdout).not.toMatch(/npm install &&/);
    expect(human.stdout).toMatch(/install @virtkit\/\* from tarballs as its README\.md says \(not on the npm registry yet\), then npm test/);

    const again = virtkit(["init", "driver", "demo-hv", "--dir", pkg], dir);
    expect(again.status).toBe(2);
    expect(again.stderr).toContain("is not empty");
    const bad = virtkit(["init", "driver", "Demo_HV", "--json"], dir);
    expect(bad.status).toBe(2);
    expect(JSON.parse(bad.stdout)).toMatchObject({ error: { code: "VIRTKIT_USAGE" } });
  });

  it("typechecks, builds, is listed as installed and passes the kit's MUST scenarios (source and build)", async () => {
    // What `npm install` would bring, linked from the workspace.
    const links: Record<string, string> = {
      "@virtkit/core": join(workspace, "packages", "core"),
      "@virtkit/conformance": join(workspace, "packages", "conformance"),
      "@virtkit/cli": cliRoot,
      zod: installed("zod"),
      tsx: installed("tsx"),
      vitest: installed("vitest", createRequire(join(workspace, "package.json"))),
      "@types/node": join(workspace, "node_modules", "@types", "node"),
    };
    for (const [name, target] of Object.entries(links)) {
      const at = join(pkg, "node_modules", name);
      mkdirSync(dirname(at), { recursive: true });
      symlinkSync(target, at, "dir");
    }
    const tsc = join(workspace, "node_modules", "typescript", "bin", "tsc");
    const check = spawnSync(process.execPath, [tsc, "-p", "tsconfig.json", "--noEmit"], { cwd: pkg, encoding: "utf8" });
    expect(check.stdout + check.stderr).toBe("");
    const build = spawnSync(process.execPath, [tsc, "-p", "tsconfig.build.json"], { cwd: pkg, encoding: "utf8" });
    expect(build.status).toBe(0);

    const drivers = virtkit(["drivers", "--json"], pkg);
    expect(drivers.status).toBe(0);
    const listed = (JSON.parse(drivers.stdout) as { drivers: { name: string; package: string; status: string; capabilities?: string[] }[] }).drivers;
    expect(listed.find((d) => d.package === "virtkit-driver-demo-hv")).toMatchObject({
      name: "demo-hv",
      status: "installed",
      capabilities: ["pause"],
    });

    for (const spec of ["./src/index.ts", "virtkit-driver-demo-hv"]) {
      const reportFile = join(dir, `report-${spec.length}.json`);
      const run = virtkit(["conformance", "run", "--driver", spec, "--runner", "direct", "--report-json", reportFile], pkg, 300_000);
      expect(run.status, `${spec}: ${run.stdout.slice(-2000)}${run.stderr}`).toBe(0);
      const report = JSON.parse(await readFile(reportFile, "utf8")) as {
        results: { id: string; status: string; level: string; reason?: string }[];
      };
      const failed = report.results.filter((r) => r.status === "fail");
      expect(failed, JSON.stringify(failed)).toEqual([]);
      const passed = report.results.filter((r) => r.status === "pass").map((r) => r.id);
      expect(passed).toEqual(expect.arrayContaining(["lifecycle.spawn", "lifecycle.pause-unpause", "lifecycle.deadlines"]));
      // What it does not declare is refused as the contract asks, not skipped unchecked.
      expect(report.results.find((r) => r.id === "lifecycle.suspend-resume")?.status).toBe("unsupported");
    }
  }, 600_000);

  it("refuses an invalid package name", async () => {
    await writeFile(join(dir, "placeholder"), "");
    const r = virtkit(["init", "driver", "ok", "--package", "Not A Name", "--dir", join(dir, "x")], dir);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain("invalid package name");
  });
});
