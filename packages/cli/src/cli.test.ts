// The CLI as a user runs it: real process spawns of bin/run.js (built first: turbo's test task
// depends on build).
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { slowSpawnPlugin } from "./testing/cli-process.js";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const bin = join(root, "bin", "run.js");
// No libvirtd and no Docker engine: the libvirt environments are recorded as unavailable, not run.
const cleanEnv = {
  ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("VIRTKIT_LIBVIRT") && k !== "DOCKER_HOST")),
  DOCKER_HOST: "unix:///nonexistent/virtkit-cli-test/docker.sock",
};

function virtkit(args: string[], env: NodeJS.ProcessEnv = cleanEnv, timeout = 60_000) {
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: "utf8", env, timeout });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "virtkit-cli-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("virtkit", () => {
  it("has --help on every command", () => {
    for (const args of [
      ["--help"],
      ["conformance", "run", "--help"],
      ["conformance", "list", "--help"],
      ["drivers", "--help"],
      ["matrix", "--help"],
      ["env", "list", "--help"],
      ["env", "build", "--help"],
    ]) {
      const r = virtkit(args);
      expect(r.status, args.join(" ")).toBe(0);
      expect(r.stdout, args.join(" ")).toMatch(/USAGE/);
    }
    expect(virtkit(["conformance", "run", "--help"]).stdout).toContain("--report-json");
  });

  it("lists the scenarios (--json) with ids, capabilities and levels", () => {
    const r = virtkit(["conformance", "list", "--json"]);
    expect(r.status).toBe(0);
    const { scenarios } = JSON.parse(r.stdout) as {
      scenarios: { id: string; capability: string | null; level: string }[];
    };
    expect(scenarios.length).toBeGreaterThanOrEqual(30);
    expect(scenarios.find((s) => s.id === "lifecycle.pause-unpause")).toMatchObject({
      capability: "pause",
      level: "MUST",
    });
    expect(virtkit(["conformance", "list"]).stdout).toMatch(/lifecycle\.spawn\s+MUST/);
  });

  it("lists the installed drivers (--json)", () => {
    const r = virtkit(["drivers", "--json"]);
    expect(r.status).toBe(0);
    const { drivers } = JSON.parse(r.stdout) as {
      drivers: { name: string; status: string; version?: string; capabilities?: string[] }[];
    };
    expect(drivers.find((d) => d.name === "fake")).toMatchObject({ status: "installed", version: "0.1.0" });
    expect(drivers.find((d) => d.name === "fake")?.capabilities).toContain("liveMigration");
    // Found in the dependency tree, not from a fixed list: no phantom entry for what is not installed.
    expect(drivers.every((d) => d.status === "installed")).toBe(true);
    expect(drivers.find((d) => d.name === "libvirt")).toMatchObject({ needsOptions: ["uri"] });
  });

  it("runs the suite against the fake driver: exit 0 and every report file", () => {
    const files = { junit: join(dir, "junit.xml"), tap: join(dir, "run.tap"), json: join(dir, "report.json") };
    const r = virtkit([
      "conformance",
      "run",
      "--driver",
      "fake",
      "--parallel",
      "4",
      "--junit",
      files.junit,
      "--tap",
      files.tap,
      "--report-json",
      files.json,
    ]);
    // On failure, name the scenarios that did not pass (the exit code alone says nothing).
    const notPassed = r.stdout.split("\n").filter((l) => /^\[\s*\d+\/\d+\]\s+(?!✓)/.test(l));
    expect(r.status, `${r.stderr}\n${notPassed.join("\n")}`).toBe(0);
    // Every scenario of the kit ran and passed (the count is the kit's, not this test's).
    const total = Number(/\((\d+) scenarios\)/.exec(r.stdout)?.[1]);
    expect(total).toBeGreaterThan(100);
    expect(r.stdout).toContain(`[${total}/${total}]`);
    expect(r.stdout).toMatch(new RegExp(`PASS: ${total} passed`));
    expect(r.stdout).toContain("simulates hypervisor hosts in memory");
    for (const f of Object.values(files)) expect(existsSync(f), f).toBe(true);
  });

  it("prints the typed report with --json (direct runner)", () => {
    const r = virtkit([
      "conformance",
      "run",
      "--driver",
      "fake",
      "--runner",
      "direct",
      "--focus",
      "^lifecycle\\.",
      "--json",
    ]);
    expect(r.status).toBe(0);
    const report = JSON.parse(r.stdout) as { ok: boolean; runner: string; results: { id: string }[] };
    expect(report.ok).toBe(true);
    expect(report.runner).toBe("direct");
    expect(report.results.every((x) => x.id.startsWith("lifecycle."))).toBe(true);
  });

  it("exits 1 when the suite timeout cuts the run short, reporting the rest as skipped", () => {
    const r = virtkit(["conformance", "run", "--driver", "fake", "--suite-timeout", "1", "--json"]);
    expect(r.status).toBe(1);
    const report = JSON.parse(r.stdout) as { ok: boolean; results: { status: string; reason?: string }[] };
    expect(report.ok).toBe(false);
    expect(report.results.some((x) => x.status === "skipped" && /suite timeout/.test(x.reason ?? ""))).toBe(true);
  });

  it("a scenario the suite timeout cuts while it runs fails 'not finished: suite timeout', under both runners", async () => {
    const plugin = await slowSpawnPlugin(dir, "slow-spawn-cut", 60_000, join(dir, "slow-spawn-cut.marker"));
    for (const runner of ["vitest", "direct"]) {
      // 20 s: long enough for vitest to start its worker on a loaded machine, so the scenario is running when it passes.
      const r = virtkit(["conformance", "run", "--driver", plugin, "--focus", "^lifecycle\\.spawn$", "--suite-timeout", "20000", "--scenario-timeout", "120000", "--runner", runner, "--json"]);
      expect(r.status, `${runner}: ${r.stderr}`).toBe(1);
      const report = JSON.parse(r.stdout) as { ok: boolean; results: { id: string; status: string; reason?: string }[] };
      expect(report.results.map((x) => [x.id, x.status, x.reason]), runner).toEqual([
        ["lifecycle.spawn", "fail", "not finished: suite timeout (20000 ms) reached"],
      ]);
    }
  }, 120_000);

  it("exits 1 when a driver given by path fails a MUST scenario", async () => {
    const fakePlugin = pathToFileURL(join(root, "node_modules", "@virtkit", "driver-fake", "dist", "plugin.js")).href;
    const file = join(dir, "broken-driver.mjs");
    await writeFile(
      file,
      `import { plugin as fake } from ${JSON.stringify(fakePlugin)};
// The fake driver with one defect: pause does nothing.
const broken = (d) => new Proxy(d, { get: (t, k) => (k === "pause" ? async () => {} : typeof t[k] === "function" ? t[k].bind(t) : t[k]) });
// Through register: the kit builds every driver the way a service does.
export const plugin = {
  ...fake,
  name: "fake-pause-broken",
  register(container, reg) {
    const inner = container.createChildContainer();
    fake.register(inner, reg);
    let driver;
    container.register(reg.token, { useFactory: () => (driver ??= broken(inner.resolve(reg.token))) });
  },
};
`,
    );
    const r = virtkit([
      "conformance",
      "run",
      "--driver",
      file,
      "--runner",
      "direct",
      "--focus",
      "pause-unpause",
      "--json",
    ]);
    expect(r.status).toBe(1);
    const report = JSON.parse(r.stdout) as {
      ok: boolean;
      driver: { name: string };
      results: { id: string; status: string; reason: string }[];
    };
    expect(report.driver.name).toBe("fake-pause-broken");
    expect(report.results[0]).toMatchObject({ id: "lifecycle.pause-unpause", status: "fail" });
    expect(report.results[0]?.reason).toMatch(/after pause: getInfo says RUNNING/);
  });

  it("answers usage errors with ONE line on stderr and exit 2, no stack trace", () => {
    const cases = [
      ["conformance", "run"],
      ["conformance", "run", "--driver", "no-such-driver"],
      ["conformance", "run", "--driver", "fake", "--option", "novalue"],
      ["conformance", "run", "--driver", "fake", "--option", "unknownKey=1"],
      ["conformance", "run", "--driver", "fake", "--level", "SOMETIMES"],
      ["conformance", "run", "--driver", "fake", "--focus", "("],
      ["conformance", "run", "--driver", "fake", "--parallel", "0"],
      ["conformance", "run", "--driver", "fake", "--report-json", ""],
      ["no-such-command"],
    ];
    for (const args of cases) {
      const r = virtkit(args);
      expect(r.status, args.join(" ")).toBe(2);
      expect(r.stdout, args.join(" ")).toBe("");
      const lines = r.stderr.trimEnd().split("\n");
      expect(lines, args.join(" ")).toHaveLength(1);
      expect(lines[0], args.join(" ")).toMatch(/^virtkit: error: /);
      expect(r.stderr).not.toMatch(/\n\s+at /);
    }
    const json = virtkit(["conformance", "run", "--driver", "no-such-driver", "--json"]);
    expect(json.status).toBe(2);
    expect(JSON.parse(json.stdout)).toMatchObject({ error: { code: "VIRTKIT_DRIVER_LOAD_FAILED", exit: 2 } });
  });

  it("refuses a matrix --driver that names nothing installed with exit 2, before any column runs or a report is written", async () => {
    const out = await mkdtemp(join(tmpdir(), "virtkit-matrix-typo-"));
    try {
      const r = virtkit(["matrix", "--driver", "fake", "--driver", "no-such-driver", "--out", out]);
      expect(r.status).toBe(2);
      expect(r.stderr.trimEnd().split("\n")).toHaveLength(1);
      expect(r.stderr).toMatch(/^virtkit: error: Cannot load driver "no-such-driver": not found/);
      expect(await readdir(out)).toEqual([]);
    } finally {
      await rm(out, { recursive: true, force: true });
    }
  });

  it("never echoes an --option that may hold a credential in a usage error", () => {
    for (const option of ["qemu+tcp://admin:hunter2@host/system", "1password=hunter2", "hunter2"]) {
      for (const extra of [[], ["--json"]]) {
        const r = virtkit(["conformance", "run", "--driver", "fake", "--option", option, ...extra]);
        expect(r.status, option).toBe(2);
        expect(r.stdout + r.stderr, option).toMatch(/invalid --option/);
        expect(r.stdout + r.stderr, option).not.toContain("hunter2");
      }
    }
  });

  it("notes a slow cleanup that finishes, and fails one that misses --cleanup-timeout as state unknown", async () => {
    const fakePlugin = pathToFileURL(join(root, "node_modules", "@virtkit", "driver-fake", "dist", "plugin.js")).href;
    const file = join(dir, "slow-destroy-driver.mjs");
    await writeFile(
      file,
      `import { plugin as fake } from ${JSON.stringify(fakePlugin)};
// The fake driver whose destroy takes 5.5 s, like a TCG guest on a loaded machine.
const slow = (d) => new Proxy(d, { get: (t, k) => (k === "destroy" ? async (...a) => { await new Promise((r) => setTimeout(r, 5500)); return t.destroy(...a); } : typeof t[k] === "function" ? t[k].bind(t) : t[k]) });
// Through register: the kit builds every driver the way a service does.
export const plugin = {
  ...fake,
  name: "fake-slow-destroy",
  register(container, reg) {
    const inner = container.createChildContainer();
    fake.register(inner, reg);
    let driver;
    container.register(reg.token, { useFactory: () => (driver ??= slow(inner.resolve(reg.token))) });
  },
};
`,
    );
    const base = ["conformance", "run", "--driver", file, "--runner", "direct", "--focus", "^lifecycle\\.spawn$"];
    const human = virtkit(base);
    expect(human.status, human.stderr).toBe(0);
    expect(human.stdout).toMatch(/✓ lifecycle\.spawn \[MUST\] \d+ ms\n\s+warning: cleanup took 5\.\d s/);
    expect(human.stdout).toMatch(/Warnings:\n {2}- lifecycle\.spawn: cleanup took 5\.\d s/);
    expect(human.stdout).toMatch(/PASS: 1 passed, 0 failed .*, 1 warning in/);
    const json = virtkit([...base, "--json"]);
    expect(json.status).toBe(0);
    const report = JSON.parse(json.stdout) as {
      ok: boolean;
      warnings: string[];
      leaks: string[];
      results: { status: string; warnings?: string[] }[];
    };
    expect(report).toMatchObject({ ok: true, leaks: [] });
    expect(report.results[0]?.warnings).toEqual([expect.stringMatching(/^cleanup took 5\.\d s$/)]);
    const stuck = virtkit([...base, "--cleanup-timeout", "500", "--json"]);
    expect(stuck.status).toBe(1);
    const failed = JSON.parse(stuck.stdout) as {
      ok: boolean;
      leaks: string[];
      results: { status: string; reason?: string }[];
    };
    expect(failed).toMatchObject({ ok: false, leaks: [] });
    expect(failed.results[0]).toMatchObject({ status: "fail" });
    // The call cleanup still waited on is named: what a user looks at first.
    expect(failed.results[0]?.reason).toMatch(
      /^cleanup did not finish in 0\.5 s; state unknown \(still waiting on: destroy \S+ on \S+ \(for \d+(\.\d)? s\)\)$/,
    );
  }, 120_000);

  it("never echoes an unknown --option key (it may be a pasted secret): human, --json and report files", async () => {
    const files = { junit: join(dir, "k.xml"), tap: join(dir, "k.tap"), json: join(dir, "k.json") };
    const reportFlags = ["--junit", files.junit, "--tap", files.tap, "--report-json", files.json];
    for (const [option, extra] of [
      ["hunter2secret=1", []],
      ["Xhunter2secret.example-com=x", ["--json"]],
    ] as const) {
      const args = [
        "conformance",
        "run",
        "--driver",
        "fake",
        "--option",
        "cloud=lab",
        "--option",
        option,
        ...reportFlags,
        ...extra,
      ];
      const r = virtkit(args);
      expect(r.status, option).toBe(2);
      expect(r.stdout + r.stderr, option).not.toContain("hunter2secret");
      expect(r.stdout + r.stderr, option).toMatch(
        /unknown option key #2 \(\d+ characters\); known keys of driver fake: host, cloud, /,
      );
      for (const f of Object.values(files)) {
        expect(existsSync(f) ? await readFile(f, "utf8") : "", f).not.toContain("hunter2secret");
      }
    }
    // Malformed options (not KEY=VALUE, or a key that is not one) are refused without echo too.
    for (const [option, extra] of [
      ["hunter2secret", []],
      ["=hunter2secret", ["--json"]],
      ["9hunter2secret=1", []],
      ["hunter2 secret=1", ["--json"]],
    ] as const) {
      const r = virtkit(["conformance", "run", "--driver", "fake", "--option", option, ...extra]);
      expect(r.status, option).toBe(2);
      expect(r.stdout + r.stderr, option).not.toContain("hunter2");
    }
    // The same key twice: the second is refused without naming it.
    const twice = virtkit([
      "conformance",
      "run",
      "--driver",
      "fake",
      "--option",
      "hunter2secret=1",
      "--option",
      "hunter2secret=2",
    ]);
    expect(twice.status).toBe(2);
    expect(twice.stdout + twice.stderr).not.toContain("hunter2");
  });

  it("lists the environments a plugin offers, each with why it cannot run here", () => {
    const r = virtkit(["env", "list", "--json"]);
    expect(r.status, r.stderr).toBe(0);
    const { environments } = JSON.parse(r.stdout) as {
      environments: { driver: string; name: string; column: string; unavailable?: string; buildable: boolean }[];
    };
    const libvirt = environments.filter((e) => e.driver === "libvirt");
    expect(libvirt.map((e) => e.column)).toEqual(["libvirt-test", "libvirt-qemu", "libvirt-nested-qemu"]);
    expect(libvirt.every((e) => typeof e.unavailable === "string" && e.unavailable.length > 0)).toBe(true);
    expect(libvirt.find((e) => e.name === "nested-qemu")?.buildable).toBe(true);
    const listed = virtkit(["conformance", "list", "--driver", "libvirt", "--json"]);
    expect(listed.status, listed.stderr).toBe(0);
    const names = (JSON.parse(listed.stdout) as { environments: { name: string }[] }).environments.map((e) => e.name);
    expect(names).toEqual(["test", "qemu", "nested-qemu"]);
  });

  it("refuses an environment the driver does not offer (exit 2, naming those it offers), and one that cannot run here", () => {
    const unknown = virtkit(["conformance", "run", "--driver", "libvirt", "--env", "nope"]);
    expect(unknown.status).toBe(2);
    expect(unknown.stderr).toMatch(/offers no environment by that name \(it offers: test, qemu, nested-qemu\)/);
    const fake = virtkit(["conformance", "run", "--driver", "fake", "--env", "test"]);
    expect(fake.status).toBe(2);
    expect(fake.stderr).toMatch(/offers no named environments/);
    const down = virtkit(["conformance", "run", "--driver", "libvirt", "--env", "test"]);
    expect(down.status).toBe(1);
    expect(down.stderr).toMatch(/cannot run here: no private libvirtd configured/);
    const build = virtkit(["env", "build", "nope"]);
    expect(build.status).toBe(2);
    expect(build.stderr).toMatch(/no installed driver offers an environment "nope"/);
    const nothing = virtkit(["env", "build", "test", "--json"]);
    expect(nothing.status, nothing.stderr).toBe(0);
    expect(JSON.parse(nothing.stdout)).toMatchObject({ driver: "libvirt", environment: "test", built: false });
  });

  it("env build without a Docker engine says where it looked and how to start one, not a raw ENOENT", () => {
    const r = virtkit(["env", "build", "nested-qemu"]);
    expect(r.status).toBe(1);
    expect(r.stderr.trimEnd().split("\n")).toHaveLength(1);
    expect(r.stderr).toMatch(
      /cannot build libvirt --env nested-qemu here: no Docker engine answers at unix:\/\/\/nonexistent\/virtkit-cli-test\/docker\.sock \(from DOCKER_HOST\): start virtkit's private one with bash scripts\/docker\.sh start/,
    );
    expect(r.stderr).not.toMatch(/ENOENT/);
    const json = virtkit(["env", "build", "nested-qemu", "--json"]);
    expect(json.status).toBe(1);
    expect(JSON.parse(json.stdout)).toMatchObject({ error: { code: "VIRTKIT_HYPERVISOR_UNAVAILABLE", exit: 1 } });
  });

  it("a driver without named environments is listed with its default environment", () => {
    const human = virtkit(["env", "list", "--driver", "fake"]);
    expect(human.status, human.stderr).toBe(0);
    expect(human.stdout).not.toMatch(/no installed driver/);
    expect(human.stdout).toMatch(
      /^fake offers no named environments \(no --env\): `virtkit conformance run --driver fake` and the matrix column fake use its default environment, the one its plugin brings/m,
    );
    const json = JSON.parse(virtkit(["env", "list", "--driver", "fake", "--json"]).stdout) as unknown;
    expect(json).toMatchObject({ environments: [], defaults: [{ driver: "fake", column: "fake", source: "plugin" }] });
    // Every installed driver: libvirt's named ones, and the fake by its default one.
    const all = JSON.parse(virtkit(["env", "list", "--json"]).stdout) as { defaults: { driver: string }[] };
    expect(all.defaults.map((d) => d.driver)).toContain("fake");
    expect(all.defaults.map((d) => d.driver)).not.toContain("libvirt");
    const list = virtkit(["conformance", "list", "--driver", "fake"]);
    expect(list.stdout).toMatch(/fake offers no named environments \(no --env\): .*its default environment/);
  });

  it("writes the support matrix as JSON, Markdown and HTML, libvirt skipped with its reason", async () => {
    const out = join(dir, "reports");
    // The matrix's mechanics: the whole suite against the fake, libvirt's environments recorded as
    // unavailable. (The XenAPI driver's own score is held by its package's conformance test.)
    const r = virtkit(["matrix", "--out", out, "--json", "--driver", "fake", "--driver", "libvirt"], cleanEnv, 240_000);
    expect(r.status, r.stderr).toBe(0);
    const matrix = JSON.parse(await readFile(join(out, "support-matrix.json"), "utf8")) as {
      drivers: { name: string; availability: string; reason?: string }[];
      cells: Record<string, Record<string, { status: string }>>;
    };
    expect(matrix.drivers.find((d) => d.name === "fake")?.availability).toBe("ran");
    // One column per environment the libvirt plugin offers, each with why it cannot run here.
    const column = (name: string) => matrix.drivers.find((d) => d.name === name);
    for (const name of ["libvirt-test", "libvirt-qemu"]) {
      expect(column(name)).toMatchObject({ availability: "unavailable" });
      expect(column(name)?.reason).toMatch(/VIRTKIT_LIBVIRT_SOCKET is unset/);
    }
    expect(column("libvirt-nested-qemu")).toMatchObject({ availability: "unavailable" });
    expect(column("libvirt-nested-qemu")?.reason).toMatch(/no Docker engine answers at unix:\/\/\/nonexistent/);
    expect(Object.values(matrix.cells.fake ?? {}).every((c) => c.status === "pass")).toBe(true);
    expect(await readFile(join(out, "support-matrix.md"), "utf8")).toMatch(
      /\| scenario \| level \| fake 0\.1\.0 \| libvirt-nested-qemu 0\.1\.0 \| libvirt-qemu 0\.1\.0 \| libvirt-test 0\.1\.0 \|/,
    );
    expect(await readFile(join(out, "support-matrix.html"), "utf8")).toMatch(/<table id="matrix">/);
  }, 300_000);
});
