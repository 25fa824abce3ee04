// Benchmark: @virtkit/libvirt-rpc vs libvirt's C library (python3-libvirt) on the same private
// daemon and the same connection type (test:///default through the daemon's UNIX socket).
//   1. 10,000 sequential domain lookups + get-info: virtkit time / libvirt-python time (target <= 1.0)
//   2. the same 10,000 with 64 calls in flight: rate vs libvirt-python's sequential rate (target >= 3x)
//   3. client RSS/heap after GC at 10k, 50k and 100k calls (must not grow with the count)
// Run with `pnpm --filter @virtkit/libvirt-rpc bench` (node --expose-gc).
/* global process, console, performance */

import { execFileSync } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { LibvirtConnection } from "../dist/index.js";

const here = dirname(fileURLToPath(import.meta.url));
const script = join(here, "../../../scripts/libvirtd.sh");
const N = Number(process.env.BENCH_CALLS ?? 10_000);
const PYTHON = process.env.BENCH_PYTHON ?? "/usr/bin/python3";

function daemonSocket() {
  if (process.env.VIRTKIT_LIBVIRT_SOCKET) return process.env.VIRTKIT_LIBVIRT_SOCKET;
  execFileSync("bash", [script, "start"], { stdio: "inherit" });
  const env = execFileSync("bash", [script, "env"], { encoding: "utf8" });
  const m = /VIRTKIT_LIBVIRT_SOCKET=(\S+)/.exec(env);
  if (!m) throw new Error("scripts/libvirtd.sh env printed no socket");
  return m[1];
}

const PY = `
import libvirt, sys, time
libvirt.registerErrorHandler(lambda *a: None, None)
c = libvirt.open("test+unix:///default?socket=" + sys.argv[1])
n = int(sys.argv[2])
for _ in range(500):
    c.lookupByName("test").info()
t = time.perf_counter()
for _ in range(n):
    d = c.lookupByName("test")
    d.info()
print(time.perf_counter() - t)
`;

function pythonSeconds(socket) {
  const out = execFileSync(PYTHON, ["-c", PY, socket, String(N)], { encoding: "utf8" });
  return Number(out.trim());
}

async function sequential(conn, n) {
  for (let i = 0; i < n; i++) {
    const d = await conn.domainLookupByName("test");
    await conn.domainGetInfo(d);
  }
}

async function concurrent(conn, n, inFlight) {
  let next = 0;
  const worker = async () => {
    while (next < n) {
      next++;
      const d = await conn.domainLookupByName("test");
      await conn.domainGetInfo(d);
    }
  };
  await Promise.all(Array.from({ length: inFlight }, worker));
}

function mem() {
  globalThis.gc?.();
  globalThis.gc?.();
  const m = process.memoryUsage();
  return { rssMiB: +(m.rss / 1048576).toFixed(1), heapMiB: +(m.heapUsed / 1048576).toFixed(2) };
}

const fmt = (s) => `${(s * 1000).toFixed(0)} ms`;

const socket = daemonSocket();
console.log(`libvirt-rpc benchmark: ${N} x (lookupByName + getInfo) on test:///default via ${socket}`);

const conn = await LibvirtConnection.open("test:///default", { socketPath: socket });
await sequential(conn, 2000); // warm up the JIT

// Alternate runs so neither side benefits from a quieter machine; keep the best of each.
let py = Infinity;
let seq = Infinity;
for (let round = 0; round < 3; round++) {
  py = Math.min(py, pythonSeconds(socket));
  const t0 = performance.now();
  await sequential(conn, N);
  seq = Math.min(seq, (performance.now() - t0) / 1000);
}
let par = Infinity;
for (let round = 0; round < 3; round++) {
  const t0 = performance.now();
  await concurrent(conn, N, 64);
  par = Math.min(par, (performance.now() - t0) / 1000);
}

const pyRate = (2 * N) / py;
const seqRate = (2 * N) / seq;
const parRate = (2 * N) / par;
console.log(`(1) sequential: libvirt-python ${fmt(py)} (${pyRate.toFixed(0)} calls/s), virtkit ${fmt(seq)} (${seqRate.toFixed(0)} calls/s)`);
console.log(`    ratio virtkit/libvirt-python = ${(seq / py).toFixed(2)} (target <= 1.0) ${seq / py <= 1 ? "PASS" : "MISS"}`);
console.log(`(2) 64 in flight: virtkit ${fmt(par)} (${parRate.toFixed(0)} calls/s)`);
console.log(`    rate vs libvirt-python sequential = ${(parRate / pyRate).toFixed(2)}x (target >= 3x) ${parRate / pyRate >= 3 ? "PASS" : "MISS"}`);

// (3) memory: 100,000 lookup+getInfo pairs with 64 in flight, sampled after GC.
const samples = [];
let done = 0;
const base = mem();
for (const mark of [10_000, 50_000, 100_000]) {
  await concurrent(conn, mark - done, 64);
  done = mark;
  samples.push({ calls: mark, ...mem() });
}
console.log(`(3) memory after GC (baseline rss ${base.rssMiB} MiB, heap ${base.heapMiB} MiB):`);
for (const s of samples) console.log(`    ${String(s.calls).padStart(6)} calls: rss ${s.rssMiB} MiB, heap ${s.heapMiB} MiB`);
const growth = samples[2].heapMiB - samples[0].heapMiB;
console.log(`    heap growth 10k -> 100k: ${growth.toFixed(2)} MiB ${Math.abs(growth) < 2 ? "PASS (flat)" : "CHECK"}`);

await conn.close();
