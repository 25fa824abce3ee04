// `virtkit conformance bench` as a user runs it: real spawns of bin/run.js (built first) against the fake.
import { spawn, spawnSync } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
const bin = join(root, "bin", "run.js");
const fakePlugin = pathToFileURL(join(root, "node_modules", "@virtkit", "driver-fake", "dist", "plugin.js")).href;

function virtkit(args: string[]) {
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: "utf8", timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/**
 * A driver plugin file: the fake with one method replaced (`body` is the replacement's source),
 * wrapped both where production builds it (`register`) and where an environment without
 * `driverSetup` would (`createDriver`).
 */
async function brokenPlugin(file: string, name: string, method: string, body: string): Promise<string> {
  await writeFile(
    file,
    `import { plugin as fake } from ${JSON.stringify(fakePlugin)};
const broken = (d) => new Proxy(d, { get: (t, k) => (k === ${JSON.stringify(method)} ? ${body} : typeof t[k] === "function" ? t[k].bind(t) : t[k]) });
export const plugin = {
  ...fake,
  name: ${JSON.stringify(name)},
  register(container, context) {
    const inner = container.createChildContainer();
    fake.register(inner, context);
    let driver;
    container.register(context.token, { useFactory: () => (driver ??= broken(inner.resolve(context.token))) });
  },
  conformanceEnvironment(options) {
    const factory = fake.conformanceEnvironment(options);
    return async (ctx) => {
      const env = await factory(ctx);
      return { ...env, createDriver: async (host) => broken(await env.createDriver(host)) };
    };
  },
};
`,
  );
  return file;
}

interface Report {
  schema: string;
  ok: boolean;
  interrupted: boolean;
  driver: { name: string };
  settings: { count: number; concurrency: number; operations: string[] };
  operations: { operation: string; status: string; reason?: string; capability: string | null; latency?: { samples: number; p50Ms: number; p95Ms: number; p99Ms: number; minMs: number; maxMs: number } }[];
  throughput?: { status: string; instances?: number; concurrency: number; instancesPerSecond?: number };
  leaks: string[];
  error?: { operation: string; code: string; message: string };
}

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "virtkit-bench-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("virtkit conformance bench", () => {
  it("measures every operation once per instance and writes the same versioned JSON to --output", async () => {
    const output = join(dir, "bench.json");
    const r = virtkit(["conformance", "bench", "--driver", "fake", "--count", "3", "--concurrency", "2", "--json", "--output", output]);
    expect(r.status, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout) as Report;
    expect(JSON.parse(await readFile(output, "utf8"))).toEqual(report);
    expect(report).toMatchObject({ schema: "virtkit.bench/1", ok: true, interrupted: false, leaks: [], driver: { name: "fake" } });
    expect(report.settings).toMatchObject({ count: 3, concurrency: 2 });
    expect(report.operations.map((o) => o.operation)).toEqual([
      "spawn", "getInfo", "listInstances", "pause", "unpause", "suspend", "resume",
      "snapshotCreate", "snapshotRevert", "rebootSoft", "rebootHard", "powerOff", "powerOn", "destroy",
    ]);
    for (const o of report.operations) {
      expect(o, o.operation).toMatchObject({ status: "measured", latency: { samples: 3 } });
      expect(o.latency!.p50Ms).toBeLessThanOrEqual(o.latency!.p99Ms);
    }
    expect(report.throughput).toMatchObject({ status: "measured", instances: 3, concurrency: 2 });
    expect(report.throughput!.instancesPerSecond).toBeGreaterThan(0);
    const human = virtkit(["conformance", "bench", "--driver", "fake", "--count", "2", "--operations", "spawn,destroy"]);
    expect(human.status, human.stderr).toBe(0);
    expect(human.stdout).toMatch(/^spawn\s+measured\s+2\s/m);
    expect(human.stdout).toMatch(/^OK: everything created was destroyed and checked gone/m);
  });

  it("reports what the driver does not declare as skipped with the reason", () => {
    const r = virtkit([
      "conformance", "bench", "--driver", "fake", "--count", "2", "--json",
      "--option", "capabilities=disable=pause,suspend,instanceSnapshots,softReboot",
      "--operations", "pause,resume,snapshotCreate,rebootSoft,rebootHard",
    ]);
    expect(r.status, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout) as Report;
    expect(report.operations).toEqual([
      { operation: "pause", capability: "pause", status: "skipped", reason: "capability pause not declared by the driver" },
      { operation: "resume", capability: "suspend", status: "skipped", reason: "capability suspend not declared by the driver" },
      { operation: "snapshotCreate", capability: "instanceSnapshots", status: "skipped", reason: "capability instanceSnapshots not declared by the driver" },
      { operation: "rebootSoft", capability: "softReboot", status: "skipped", reason: "capability softReboot not declared by the driver" },
      expect.objectContaining({ operation: "rebootHard", status: "measured", latency: expect.objectContaining({ samples: 2 }) }),
    ]);
    expect(report.throughput).toBeUndefined();
  });

  it("exits 1 with the failing operation named when the driver's spawn fails, and 1 on a leak", async () => {
    const failing = await brokenPlugin(
      join(dir, "spawn-fails.mjs"),
      "fake-spawn-fails",
      "spawn",
      `async () => { throw Object.assign(new Error("the hypervisor refused to define the domain"), { code: "VIRTKIT_INSTANCE_EXISTS" }); }`,
    );
    const human = virtkit(["conformance", "bench", "--driver", failing, "--count", "2"]);
    expect(human.status).toBe(1);
    expect(human.stdout).toMatch(/^spawn\s+failed\s+VIRTKIT_INSTANCE_EXISTS: the hypervisor refused to define the domain$/m);
    expect(human.stdout).toMatch(/^FAILED: spawn of vkb[0-9a-f]+-1 failed: VIRTKIT_INSTANCE_EXISTS: the hypervisor refused to define the domain$/m);
    expect(human.stderr).not.toMatch(/\n\s+at /);
    const json = virtkit(["conformance", "bench", "--driver", failing, "--count", "2", "--json"]);
    expect(json.status).toBe(1);
    const report = JSON.parse(json.stdout) as Report;
    expect(report).toMatchObject({ ok: false, leaks: [], error: { operation: "spawn", code: "VIRTKIT_INSTANCE_EXISTS" } });
    expect(report.operations.find((o) => o.operation === "getInfo")).toMatchObject({ status: "not-run" });

    // A call that waits on nothing at all: the deadline still fires (the process must not run out
    // of work and exit 13 with no report), the failure is named and the report written.
    const hanging = await brokenPlugin(join(dir, "spawn-hangs.mjs"), "fake-spawn-hangs", "spawn", "async () => new Promise(() => {})");
    const hangReport = join(dir, "hang.json");
    const hung = virtkit(["conformance", "bench", "--driver", hanging, "--count", "2", "--timeout", "500", "--output", hangReport]);
    expect(hung.status).toBe(1);
    expect(hung.stdout).toMatch(/^FAILED: spawn of vkb[0-9a-f]+-1 failed: VIRTKIT_OPERATION_TIMEOUT/m);
    expect(JSON.parse(await readFile(hangReport, "utf8"))).toMatchObject({ ok: false, error: { operation: "spawn" } });

    const leaking = await brokenPlugin(join(dir, "destroy-leaks.mjs"), "fake-destroy-leaks", "destroy", "async () => undefined");
    const leak = virtkit(["conformance", "bench", "--driver", leaking, "--count", "1", "--operations", "spawn,destroy", "--json"]);
    expect(leak.status).toBe(1);
    const leaked = JSON.parse(leak.stdout) as Report;
    expect(leaked.ok).toBe(false);
    expect(leaked.error).toBeUndefined();
    expect(leaked.leaks.join("\n")).toMatch(/still listed/);
  });

  it("answers bad flags with one line on stderr and exit 2, before creating anything", () => {
    for (const args of [
      ["conformance", "bench"],
      ["conformance", "bench", "--driver", "fake", "--count", "0"],
      ["conformance", "bench", "--driver", "fake", "--concurrency", "many"],
      ["conformance", "bench", "--driver", "fake", "--operations", "spawn,teleport"],
      ["conformance", "bench", "--driver", "fake", "--option", "unknownKey=1"],
      ["conformance", "bench", "--driver", "fake", "--output", join(dir, "no", "such", "dir.json")],
    ]) {
      const r = virtkit(args);
      expect(r.status, args.join(" ")).toBe(2);
      expect(r.stdout, args.join(" ")).toBe("");
      expect(r.stderr.trimEnd().split("\n"), args.join(" ")).toHaveLength(1);
      expect(r.stderr, args.join(" ")).toMatch(/^virtkit: error: /);
    }
    expect(virtkit(["conformance", "bench", "--driver", "fake", "--operations", "spawn,teleport"]).stderr).toMatch(
      /unknown operation "teleport"; known: spawn, getInfo/,
    );
    const help = virtkit(["conformance", "bench", "--help"]);
    expect(help.status).toBe(0);
    expect(help.stdout).toMatch(/USAGE[\s\S]*--concurrency[\s\S]*--operations/);
  });

  it("stops on Ctrl-C, cleans up what was in flight, and exits 130", async () => {
    const output = join(dir, "interrupted.json");
    const child = spawn(process.execPath, [
      bin, "conformance", "bench", "--driver", "fake", "--option", "latencyMs=20",
      "--count", "1000", "--concurrency", "4", "--output", output,
    ]);
    let stderr = "";
    child.stderr.setEncoding("utf8");
    child.stderr.on("data", (chunk: string) => {
      // Interrupt once it has started the lifecycles.
      if (!stderr.includes("lifecycles") && (stderr += chunk).includes("lifecycles")) setTimeout(() => child.kill("SIGINT"), 300);
      else stderr += chunk;
    });
    const status = await new Promise<number | null>((resolve) => child.on("close", (code) => resolve(code)));
    expect(status, stderr).toBe(130);
    const report = JSON.parse(await readFile(output, "utf8")) as Report;
    expect(report).toMatchObject({ interrupted: true, ok: false, leaks: [] });
    expect(report.error).toBeUndefined();
    expect(report.operations.find((o) => o.operation === "spawn")!.latency!.samples).toBeLessThan(1000);
  });

  it("gives the matrix a latency line per column from --bench-report files, and refuses a bad one (exit 2)", async () => {
    const output = join(dir, "fake-bench.json");
    expect(virtkit(["conformance", "bench", "--driver", "fake", "--count", "2", "--output", output, "--json"]).status).toBe(0);
    const bad = join(dir, "bad-bench.json");
    await writeFile(bad, JSON.stringify({ schema: "virtkit.bench/0" }));
    const refused = virtkit(["matrix", "--out", join(dir, "m"), "--driver", "fake", "--bench-report", bad]);
    expect(refused.status).toBe(2);
    expect(refused.stderr).toMatch(/cannot read --bench-report .*bad-bench\.json: .*expected "virtkit\.bench\/1"/);
    const out = join(dir, "matrix");
    const r = virtkit(["matrix", "--out", out, "--driver", "fake", "--runner", "direct", "--bench-report", output]);
    expect(r.status, r.stderr).toBe(0);
    expect(await readFile(join(out, "support-matrix.md"), "utf8")).toMatch(/^\| _latency \(virtkit conformance bench\)_ \| \| bench: spawn p50 [\d.]+ \/ p95 [\d.]+ ms · destroy p50 .* inst\/s at 1 \|$/m);
    expect(await readFile(join(out, "support-matrix.html"), "utf8")).toMatch(/data-bench="ok">bench: spawn p50/);
    expect(await readFile(join(out, "support-matrix.json"), "utf8")).not.toMatch(/p50|bench/);
  });
});
