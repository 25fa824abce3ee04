#!/usr/bin/env node
// Regenerates the README's figures from the benchmarks' own output, so no figure is typed by hand.
//
//   pnpm bench:readme                      run every benchmark (pnpm bench), then rewrite the table
//   node scripts/bench-report.mjs --from F  rewrite the table from a saved `pnpm bench` output
//
// Every benchmark prints one `BENCH_JSON {...}` line; this reads those lines, writes them all to
// reports/bench.json and replaces the README between `<!-- bench:start -->` and `<!-- bench:end -->`.
/* global process, console */
import { spawn } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const README = join(root, "README.md");
const START = "<!-- bench:start -->";
const END = "<!-- bench:end -->";

async function runBenchmarks() {
  return new Promise((resolve, reject) => {
    const child = spawn("pnpm", ["-s", "bench"], { cwd: root, stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    child.stdout.on("data", (b) => {
      out += b;
      process.stdout.write(b);
    });
    child.on("error", reject);
    child.on("close", (code) => (code === 0 ? resolve(out) : reject(new Error(`pnpm bench exited ${code}`))));
  });
}

function parse(text) {
  const byBench = {};
  for (const line of text.split("\n")) {
    const i = line.indexOf("BENCH_JSON ");
    if (i < 0) continue;
    const data = JSON.parse(line.slice(i + "BENCH_JSON ".length));
    byBench[data.bench] = data;
  }
  return byBench;
}

const x = (n) => `${Number(n).toFixed(2)}`;
const spread = (r) => `${x(r.min)}–${x(r.max)}`;

function rows(b) {
  const out = [];
  const drv = b["driver-libvirt"];
  if (drv) {
    for (const r of drv.results) {
      out.push([
        `libvirt driver: spawn + getInfo + destroy of ${r.n.toLocaleString("en-US")}, ${r.concurrency === 1 ? "sequential" : `${r.concurrency} at a time`}`,
        `${x(r.ratio)} (${x(r.ratioMin)}–${x(r.ratioMax)})`,
        (r.minimal
          ? `virtkit / libvirt-python doing the same and watching lifecycle events as Nova's driver does (same XML, same daemon), ${r.rounds} rotating rounds; against libvirt-python without events ${x(r.minimal.ratio)} (${x(r.minimal.ratioMin)}–${x(r.minimal.ratioMax)})`
          : `virtkit / libvirt-python doing the same (same XML, same daemon), ${r.rounds} alternating rounds`) +
          `; ${r.virtkitRpcPerInstance} vs ${r.pythonRpcPerInstance} RPCs per instance`,
        `<= ${drv.goalRatio}`,
      ]);
    }
  }
  const rpc = b["libvirt-rpc"];
  // Where the time of a call went, from the bench's CPU medians (older reports carry none).
  const cpuNote = (c) =>
    c && c.virtkit !== null && c.python !== null
      ? `; CPU per RPC: client ${c.virtkit} vs ${c.python} µs` +
        (c.daemonForVirtkit !== null && c.daemonForPython !== null ? `, daemon ${c.daemonForVirtkit} vs ${c.daemonForPython} µs` : "")
      : "";
  if (rpc) {
    out.push([
      `libvirt-rpc: ${rpc.units.toLocaleString("en-US")} sequential lookup + get-info`,
      `${x(rpc.sequential.ratio.median)} (${spread(rpc.sequential.ratio)})`,
      `time, virtkit / libvirt-python, ${rpc.rounds} alternating rounds`,
      "<= 1.0",
    ]);
    out.push([
      `libvirt-rpc: the same with ${rpc.inFlight} calls in flight`,
      `${x(rpc.concurrent.ratio.median)}x (${spread(rpc.concurrent.ratio)})`,
      `rate, virtkit / libvirt-python with ${rpc.concurrent.pythonThreads} threads on one connection, ${rpc.rounds} alternating rounds${cpuNote(rpc.concurrent.cpuPerRpcUs)}`,
      ">= 1.0x",
    ]);
    const heap = rpc.memory.samples.map((m) => `${m.heapMiB}`).join(" / ");
    out.push([`libvirt-rpc: client heap after GC at 10k / 50k / 100k calls`, `${heap} MiB`, "flat = grows < 2 MiB", "flat"]);
  }
  for (const bench of ["cli", "conformance"]) {
    const c = b[bench];
    if (!c) continue;
    for (const s of c.subjects) {
      out.push([
        s.name,
        `${x(s.ratio.median)}x (${x(s.ratio.min)}–${x(s.ratio.max)}x)`,
        `× a bare \`node -e 0\` start in the same run (${c.anchor.medianMs} ms median), ${s.rounds} alternating rounds; ${s.medianMs} ms median`,
        s.targetMs !== undefined ? `< ${s.targetMs} ms` : "",
      ]);
    }
    if (c.catchRate) {
      out.push([
        "broken fake-driver variants the kit catches",
        `${c.catchRate.caught} / ${c.catchRate.total}`,
        "count, one run",
        "all",
      ]);
    }
  }
  const fake = b["driver-fake"];
  if (fake) {
    const t = fake.figuresMs.total;
    out.push([
      `fake driver: spawn + getInfo + destroy of ${fake.n.toLocaleString("en-US")} instances`,
      `${Math.round(t.median)} ms (${Math.round(t.min)}–${Math.round(t.max)})`,
      `absolute, in process, ${fake.rounds} rounds`,
      `< ${fake.targetMs} ms`,
    ]);
  }
  const xen = b["driver-xenapi"];
  if (xen) {
    const f = xen.figures;
    const ms = (r) => `${Math.round(r.median)} ms (${Math.round(r.min)}–${Math.round(r.max)})`;
    const sim = "against the XAPI simulator (not a XenServer host)";
    out.push(
      [
        `XenAPI: ${xen.calls.toLocaleString("en-US")} VM.get_record, sequential, through the driver's client`,
        ms(f.getRecordSequentialMs),
        `absolute ${sim}, ${xen.rounds} alternating rounds; ${x(f.clientVsBareRatio.median)}x a bare node:http keep-alive loop (${spread(f.clientVsBareRatio)})`,
        "< 1000 ms",
      ],
      [
        `XenAPI: the same with ${xen.inFlight} in flight`,
        `${x(f.inFlightSpeedup.median)}x (${spread(f.inFlightSpeedup)})`,
        `rate / the sequential rate, ${sim}`,
        ">= 3x",
      ],
      [
        `XenAPI: the whole suite (${xen.suiteSummary.total} scenarios, direct runner, parallel ${xen.suiteParallel})`,
        ms(f.suiteMs),
        `absolute ${sim}, ${xen.suiteRounds} rounds; ${x(f.suiteVsNodeStart.median)}x a bare node -e 0 start`,
        "< 5000 ms",
      ],
    );
  }
  const plug = b["plugin-load"];
  if (plug) {
    for (const r of plug.rows) {
      out.push([`plugin load + resolve: ${r.label}`, `${r.medianMs.toFixed(2)} ms (p95 ${r.p95Ms.toFixed(2)})`, `absolute, ${plug.iterations} fresh loads`, `< ${plug.targetMs} ms`]);
    }
  }
  return out;
}

function table(b) {
  const head = ["what", "measured: median (spread)", "how", "goal"];
  const lines = [`| ${head.join(" | ")} |`, `| ${head.map(() => "---").join(" | ")} |`];
  for (const r of rows(b)) lines.push(`| ${r.join(" | ")} |`);
  const when = new Date().toISOString().slice(0, 10);
  const load = loadavg().map((l) => l.toFixed(1)).join(" ");
  return [
    `Generated by \`pnpm bench:readme\` on ${when} (${cpus().length} cores, load ${load} when written); raw figures in`,
    "`reports/bench.json`. Ratios are medians of per-round ratios with their min–max spread; rounds alternate",
    "which side goes first. On a busy machine the spread widens: rerun before comparing.",
    "",
    ...lines,
  ].join("\n");
}

const fromIndex = process.argv.indexOf("--from");
const text = fromIndex > 0 ? readFileSync(process.argv[fromIndex + 1], "utf8") : await runBenchmarks();
const benches = parse(text);
if (Object.keys(benches).length === 0) {
  console.error("bench-report: no BENCH_JSON lines found");
  process.exit(1);
}
mkdirSync(join(root, "reports"), { recursive: true });
writeFileSync(join(root, "reports/bench.json"), JSON.stringify(benches, null, 2) + "\n");
const readme = readFileSync(README, "utf8");
const a = readme.indexOf(START);
const z = readme.indexOf(END);
if (a < 0 || z < a) {
  console.error(`bench-report: README.md has no ${START} ... ${END} section`);
  process.exit(1);
}
writeFileSync(README, readme.slice(0, a + START.length) + "\n" + table(benches) + "\n" + readme.slice(z));
console.log(`bench-report: ${Object.keys(benches).join(", ")} -> README.md, reports/bench.json`);
