/* global process, console */
// Measures what a service pays to get a driver: load a plugin (resolve, import, validate the
// manifest), build a fresh DriverRegistry (child container), validate options, register and
// resolve the driver. Cold loads bust Node's module cache with a query on the file URL; warm
// loads reuse the cached module. Prints median / p95 / mean in ms. Target: median under 5 ms.
//
//   pnpm --filter @virtkit/core bench            (BENCH_ITERATIONS=200 by default)
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { performance } from "node:perf_hooks";
import { DriverRegistry, loadDriverPlugin } from "../dist/index.js";

const ITERATIONS = Number(process.env.BENCH_ITERATIONS ?? 200);
const TARGET_MS = 5;
const here = dirname(fileURLToPath(import.meta.url));
const repoRoot = resolve(here, "../../..");

/** A self-contained file plugin, as a driver author outside this repo would write one. */
function fixtureSource() {
  const zodUrl = import.meta.resolve("zod");
  return `import { z } from ${JSON.stringify(zodUrl)};
class BenchDriver {
  name = "bench";
  capabilities = {};
  constructor(options) { this.options = options; }
  async initHost() {}
  async cleanupHost() {}
  async getHostInfo() { return { hostname: "bench", hypervisorType: "bench", hypervisorVersion: "1.0.0", cpuArch: "x86_64", vcpus: 1, memoryMb: 1024 }; }
  async getInfo() { throw new Error("no instances"); }
  async spawn() {}
  async destroy() {}
}
export const plugin = {
  kind: "virtkit-driver",
  name: "bench",
  version: "1.0.0",
  contractVersion: "^1.0.0",
  description: "benchmark fixture",
  optionsSchema: z.strictObject({ uri: z.string().default("bench:///"), timeout: z.coerce.number().int().positive().optional() }),
  register(container, { token, options }) {
    container.register(token, { useFactory: () => new BenchDriver(options) });
  },
};
export default plugin;
`;
}

function stats(samples) {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (q) => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)];
  const mean = sorted.reduce((s, x) => s + x, 0) / sorted.length;
  return { median: at(0.5), p95: at(0.95), mean, n: sorted.length };
}

/** One fresh load + fresh registry + add + get; returns [total, load, registry] in ms. */
async function once(spec, loadOptions, rawOptions) {
  const t0 = performance.now();
  const plugin = await loadDriverPlugin(spec, loadOptions);
  const t1 = performance.now();
  const registry = new DriverRegistry();
  registry.add("d", plugin, rawOptions);
  const driver = registry.get("d");
  const t2 = performance.now();
  if (typeof driver.spawn !== "function") throw new Error("not a driver");
  return [t2 - t0, t1 - t0, t2 - t1];
}

async function measure(label, makeSpec, loadOptions, rawOptions, { warmup }) {
  for (let i = 0; i < warmup; i++) await once(makeSpec(-1 - i), loadOptions, rawOptions);
  const total = [];
  const load = [];
  const reg = [];
  for (let i = 0; i < ITERATIONS; i++) {
    const [t, l, r] = await once(makeSpec(i), loadOptions, rawOptions);
    total.push(t);
    load.push(l);
    reg.push(r);
  }
  const s = stats(total);
  const row = {
    label,
    median: s.median,
    p95: s.p95,
    mean: s.mean,
    loadMedian: stats(load).median,
    registryMedian: stats(reg).median,
    n: s.n,
  };
  rows.push(row);
  return row;
}

const rows = [];
const fmt = (x) => x.toFixed(3).padStart(8);

const dir = mkdtempSync(join(tmpdir(), "virtkit-bench-"));
try {
  const file = join(dir, "bench-driver.mjs");
  writeFileSync(file, fixtureSource());
  const url = pathToFileURL(file).href;
  const raw = ["uri=bench:///x", "timeout=5"];

  // Cold: a new module instance per load (query busts the cache); zod itself stays cached, as in a real process.
  await measure("file plugin, cold import", (i) => `${url}?cold=${i}`, {}, raw, { warmup: 5 });
  // Warm: the module is cached; the cost is resolution, validation, container and driver construction.
  await measure("file plugin, warm", () => file, {}, raw, { warmup: 20 });

  // @virtkit/driver-fake by short name, if it resolves from here, the repo root or its own package.
  const fakeOptions = { cwd: process.cwd(), paths: [repoRoot, join(repoRoot, "packages/driver-fake")] };
  let fakeFirst;
  try {
    const t0 = performance.now();
    await loadDriverPlugin("fake", fakeOptions);
    fakeFirst = performance.now() - t0;
  } catch (e) {
    console.log(`skip  @virtkit/driver-fake: ${e instanceof Error ? e.message : String(e)}`);
  }
  if (fakeFirst !== undefined) {
    await measure("fake by short name, warm", () => "fake", fakeOptions, {}, { warmup: 20 });
  }

  console.log(`plugin load + registry + resolve, ${ITERATIONS} fresh loads each (fresh container each time), ms`);
  console.log(`${"case".padEnd(30)}  median       p95      mean   load(med) registry(med)  target<${TARGET_MS}`);
  for (const r of rows) {
    console.log(
      `${r.label.padEnd(30)} ${fmt(r.median)} ${fmt(r.p95)} ${fmt(r.mean)}   ${fmt(r.loadMedian)}  ${fmt(r.registryMedian)}      ${r.median < TARGET_MS ? "ok" : "SLOW"}`,
    );
  }
  if (fakeFirst !== undefined) console.log(`${"fake, first import (one-off)".padEnd(30)} ${fmt(fakeFirst)}`);
  console.log(
    `BENCH_JSON ${JSON.stringify({
      bench: "plugin-load",
      iterations: ITERATIONS,
      targetMs: TARGET_MS,
      rows: rows.map((r) => ({ label: r.label, medianMs: r.median, p95Ms: r.p95, meanMs: r.mean })),
      ...(fakeFirst !== undefined ? { fakeFirstImportMs: fakeFirst } : {}),
    })}`,
  );
  if (rows.some((r) => r.median >= TARGET_MS)) process.exitCode = 1;
} finally {
  rmSync(dir, { recursive: true, force: true });
}
