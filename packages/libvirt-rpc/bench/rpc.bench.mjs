// Benchmark: @virtkit/libvirt-rpc vs libvirt's C library (python3-libvirt) on the same private
// daemon and the same connection type (test:///default through the daemon's UNIX socket).
// One unit of work is domainLookupByName("test") + domainGetInfo: 2 RPCs ("calls/s" counts RPCs).
//   (a) N (10,000) units sequentially: virtkit time / libvirt-python time (goal <= 1.0)
//   (b) N units with 64 in flight on one virtkit connection vs libvirt-python with 64 threads
//       sharing ONE connection (libvirt-python releases the GIL during an RPC): rate ratio
//       virtkit / python (goal >= 1.0); virtkit's rate / python's sequential rate for reference
//   (c) client heap (and RSS) after GC at 10k, 50k and 100k units: must stay flat
// Beside (a) and (b): the CPU each client and the daemon spent per RPC in those batches (the client
// from its own process, the daemon from /proc when its process can be found from the socket), so a
// ratio that misses its goal says which side the time went to.
// Reproducibility: R rounds (BENCH_ROUNDS, default 7); each round runs the virtkit batch and the
// python batch of a figure back to back, alternating which goes first, and yields one ratio per
// figure. Reported: median ratio, spread (min-max of the per-round ratios), absolute medians.
// Python startup, connection and warm-up happen before its own clock starts (it times itself and
// prints seconds); virtkit warms up once on its long-lived connection and is GC'd before each batch.
// Last line: `BENCH_JSON {...}` with every figure. Env: BENCH_ROUNDS, BENCH_CALLS (N),
// BENCH_IN_FLIGHT (64), BENCH_PYTHON (/usr/bin/python3), VIRTKIT_LIBVIRT_SOCKET (else the
// private daemon is started with scripts/libvirtd.sh).
// Run with `pnpm --filter @virtkit/libvirt-rpc bench` (node --expose-gc) after building.
/* global process, console, performance */

import { execFileSync, execFile } from "node:child_process";
import { readFileSync, readdirSync, readlinkSync, statSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { privateDaemonSocket } from "../../../scripts/private-libvirtd.mjs";
import { promisify } from "node:util";
import { LibvirtConnection } from "../dist/index.js";

const here = dirname(fileURLToPath(import.meta.url));
const pkg = join(here, "..");
const N = positive("BENCH_CALLS", 10_000);
const ROUNDS = positive("BENCH_ROUNDS", 7);
const IN_FLIGHT = positive("BENCH_IN_FLIGHT", 64);
const PYTHON = process.env.BENCH_PYTHON ?? "/usr/bin/python3";
const MEMORY_MARKS = [10_000, 50_000, 100_000];
const GOAL_SEQUENTIAL = 1.0; // virtkit time / python time, at most
const GOAL_CONCURRENT = 1.0; // virtkit rate / python rate, at least
const run = promisify(execFile);

function positive(name, fallback) {
  const v = Number(process.env[name] ?? fallback);
  if (!Number.isInteger(v) || v < 1) throw new Error(`${name} must be a positive integer, got ${process.env[name]}`);
  return v;
}

/** True when some non-test source is newer than the compiled client the bench imports. */
function distOlderThanSrc() {
  const dist = statSync(join(pkg, "dist/index.js")).mtimeMs;
  const walk = (dir) =>
    readdirSync(dir, { withFileTypes: true }).some((e) =>
      e.isDirectory()
        ? walk(join(dir, e.name))
        : e.name.endsWith(".ts") && !e.name.endsWith(".test.ts") && statSync(join(dir, e.name)).mtimeMs > dist,
    );
  return walk(join(pkg, "src"));
}

// The python side: argv = socket, units, threads, the daemon's pid (0: unknown). Prints the seconds
// its timed batch took, the CPU seconds it used, and the daemon's CPU seconds meanwhile (-1: unknown).
// threads > 1: that many threads share the one connection, each doing its share of the units;
// the clock starts when all of them are ready (a barrier), so thread start-up is not timed.
const PY = `
import libvirt, os, sys, threading, time
libvirt.registerErrorHandler(lambda *a: None, None)
sock, n, threads, daemon = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
ticks = os.sysconf("SC_CLK_TCK")

def daemon_cpu():
    # The daemon's CPU seconds so far (-1: unknown), read around the timed batch only.
    if daemon <= 0:
        return -1.0
    try:
        f = open("/proc/%d/stat" % daemon).read().split(") ")[1].split(" ")
        return (int(f[11]) + int(f[12])) / ticks
    except OSError:
        return -1.0
c = libvirt.open("test+unix:///default?socket=" + sock)

def work(k):
    for _ in range(k):
        c.lookupByName("test").info()

def batch(n, threads):
    if threads <= 1:
        t, c, d = time.perf_counter(), time.process_time(), daemon_cpu()
        work(n)
        return time.perf_counter() - t, time.process_time() - c, daemon_cpu() - d
    shares = [n // threads + (1 if i < n % threads else 0) for i in range(threads)]
    ready = threading.Barrier(threads + 1)
    def run(k):
        ready.wait()
        work(k)
    ts = [threading.Thread(target=run, args=(k,)) for k in shares]
    for th in ts:
        th.start()
    ready.wait()
    t, c, d = time.perf_counter(), time.process_time(), daemon_cpu()
    for th in ts:
        th.join()
    return time.perf_counter() - t, time.process_time() - c, daemon_cpu() - d

batch(500, 1)
if threads > 1:
    batch(max(500, 8 * threads), threads)
print("%.6f %.6f %.6f" % batch(n, threads))
c.close()
`;

/** The daemon's CPU seconds so far (user + system, all threads), or undefined when its process is unknown. */
function daemonCpuSeconds() {
  if (daemonPid === undefined) return undefined;
  try {
    const fields = readFileSync(`/proc/${daemonPid}/stat`, "utf8").split(") ")[1].split(" ");
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
  } catch {
    return undefined;
  }
}

/** The pid of the process listening on UNIX socket `path` (its inode in /proc/net/unix, then whose fd it is). */
function listenerPid(path) {
  try {
    const line = readFileSync("/proc/net/unix", "utf8").split("\n").find((l) => l.endsWith(` ${path}`));
    const inode = line?.trim().split(/\s+/)[6];
    if (!inode) return undefined;
    for (const pid of readdirSync("/proc")) {
      if (!/^\d+$/.test(pid)) continue;
      let fds;
      try {
        fds = readdirSync(`/proc/${pid}/fd`);
      } catch {
        continue;
      }
      for (const fd of fds) {
        try {
          if (readlinkSync(`/proc/${pid}/fd/${fd}`) === `socket:[${inode}]`) return Number(pid);
        } catch {
          // gone meanwhile
        }
      }
    }
  } catch {
    // no /proc: no daemon figures
  }
  return undefined;
}

/** CPU seconds a batch cost the daemon: its counter read before and after. */
async function withDaemonCpu(fn) {
  const before = daemonCpuSeconds();
  const result = await fn();
  const after = daemonCpuSeconds();
  return { ...result, daemonCpu: before === undefined || after === undefined ? undefined : after - before };
}

/** One libvirt-python batch in its own process; resolves to the seconds it measured and the CPU seconds it used. */
async function pythonSeconds(socket, units, threads) {
  // Asynchronous, so the virtkit connection keeps answering the daemon's keepalive meanwhile.
  // The python side reads the daemon's counter itself, around its timed batch (not its start-up).
  const { stdout } = await run(PYTHON, ["-c", PY, socket, String(units), String(threads), String(daemonPid ?? 0)], { encoding: "utf8" });
  const [s, cpu, daemon] = (stdout.trim().split("\n").at(-1) ?? "").split(" ").map(Number);
  if (!Number.isFinite(s) || s <= 0 || !Number.isFinite(cpu) || !Number.isFinite(daemon)) {
    throw new Error(`libvirt-python printed ${JSON.stringify(stdout)}`);
  }
  return { seconds: s, cpu, daemonCpu: daemon < 0 || daemonPid === undefined ? undefined : daemon };
}

async function unitsSequential(conn, n) {
  for (let i = 0; i < n; i++) {
    const d = await conn.domainLookupByName("test");
    await conn.domainGetInfo(d);
  }
}

async function unitsConcurrent(conn, n, inFlight) {
  let next = 0;
  const worker = async () => {
    while (next < n) {
      next++;
      const d = await conn.domainLookupByName("test");
      await conn.domainGetInfo(d);
    }
  };
  await Promise.all(Array.from({ length: Math.min(inFlight, n) }, worker));
}

/** Seconds one virtkit batch takes and the CPU seconds it used, starting from a collected heap (no earlier batch's garbage). */
async function virtkitSeconds(fn) {
  globalThis.gc?.();
  return withDaemonCpu(async () => {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    await fn();
    const seconds = (performance.now() - t0) / 1000;
    const c = process.cpuUsage(c0);
    return { seconds, cpu: (c.user + c.system) / 1e6 };
  });
}

function mem() {
  globalThis.gc?.();
  globalThis.gc?.();
  const m = process.memoryUsage();
  return { rssMiB: r2(m.rss / 1048576), heapMiB: r2(m.heapUsed / 1048576) };
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const r2 = (x) => Math.round(x * 100) / 100;
const r3 = (x) => Math.round(x * 1000) / 1000;
const spread = (xs) => ({ median: r3(median(xs)), min: r3(Math.min(...xs)), max: r3(Math.max(...xs)) });
const rate = (seconds) => (2 * N) / seconds;
/** Microseconds of CPU per RPC in one pair of batches: each client's own, and the daemon's while serving each. */
const cpuPerRpc = ({ virtkit, python }) => {
  const us = (s) => (s === undefined ? null : r2((s * 1e6) / (2 * N)));
  return { virtkit: us(virtkit.cpu), python: us(python.cpu), daemonForVirtkit: us(virtkit.daemonCpu), daemonForPython: us(python.daemonCpu) };
};
const ms = (s) => `${(s * 1000).toFixed(0)} ms`;
const perSec = (r) => `${Math.round(r).toLocaleString("en-US")}/s`;
const pad = (s, w) => String(s).padStart(w);
const padEnd = (s, w) => String(s).padEnd(w);
const version = (v) => `${Math.floor(v / 1e6)}.${Math.floor(v / 1e3) % 1000}.${v % 1000}`;

// ---------------------------------------------------------------------------------------------

const socket = privateDaemonSocket();
const daemonPid = listenerPid(socket);
const CLOCK_TICKS = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
const staleDist = distOlderThanSrc();
const loadBefore = loadavg().map(r2);
const conn = await LibvirtConnection.open("test:///default", { socketPath: socket });
const daemonVersion = await conn.connectGetLibVersion();
const pythonLibvirt = Number(
  execFileSync(PYTHON, ["-c", "import libvirt; print(libvirt.getVersion())"], { encoding: "utf8" }).trim(),
);

console.log(`libvirt-rpc benchmark: lookupByName + getInfo (2 RPCs) on test:///default via ${socket}`);
console.log(
  `  ${N.toLocaleString("en-US")} units per batch, ${ROUNDS} rounds, ${IN_FLIGHT} in flight / python threads; ` +
    `libvirtd ${daemonVersion.major}.${daemonVersion.minor}.${daemonVersion.release}, ` +
    `python3-libvirt ${version(pythonLibvirt)}, node ${process.version}, ${cpus().length} CPUs, load ${loadBefore.join(" ")}`,
);
if (staleDist) console.log("  NOTE: src/ is newer than dist/: the figures are for the last build, not the current source");

// Warm up the JIT and the connection on both paths.
await unitsSequential(conn, 2000);
await unitsConcurrent(conn, 4000, IN_FLIGHT);

const rounds = [];
for (let round = 0; round < ROUNDS; round++) {
  const virtkitFirst = round % 2 === 0;
  const pair = async (vk, py) => {
    if (virtkitFirst) {
      const v = await vk();
      return { virtkit: v, python: await py() };
    }
    const p = await py();
    return { virtkit: await vk(), python: p };
  };
  const seq = await pair(
    () => virtkitSeconds(() => unitsSequential(conn, N)),
    () => pythonSeconds(socket, N, 1),
  );
  const par = await pair(
    () => virtkitSeconds(() => unitsConcurrent(conn, N, IN_FLIGHT)),
    () => pythonSeconds(socket, N, IN_FLIGHT),
  );
  const r = {
    round: round + 1,
    first: virtkitFirst ? "virtkit" : "python",
    sequential: {
      virtkitMs: r2(seq.virtkit.seconds * 1000),
      pythonMs: r2(seq.python.seconds * 1000),
      ratio: r3(seq.virtkit.seconds / seq.python.seconds),
      cpuPerRpcUs: cpuPerRpc(seq),
    },
    concurrent: {
      virtkitMs: r2(par.virtkit.seconds * 1000),
      pythonMs: r2(par.python.seconds * 1000),
      ratio: r3(rate(par.virtkit.seconds) / rate(par.python.seconds)),
      vsPythonSequential: r3(rate(par.virtkit.seconds) / rate(seq.python.seconds)),
      cpuPerRpcUs: cpuPerRpc(par),
    },
  };
  rounds.push(r);
  console.log(
    `  round ${r.round}/${ROUNDS} (${r.first} first): (a) ${ms(seq.virtkit.seconds)} vs ${ms(seq.python.seconds)} = ${r.sequential.ratio.toFixed(2)}` +
      `  (b) ${ms(par.virtkit.seconds)} vs ${ms(par.python.seconds)} = ${r.concurrent.ratio.toFixed(2)}x`,
  );
}

// (c) memory: cumulative units with IN_FLIGHT in flight, sampled after GC.
const memBase = mem();
const memory = [];
let done = 0;
for (const mark of MEMORY_MARKS) {
  await unitsConcurrent(conn, mark - done, IN_FLIGHT);
  done = mark;
  memory.push({ units: mark, ...mem() });
}
await conn.close();
const loadAfter = loadavg().map(r2);

// ---------------------------------------------------------------------------------------------

const seqRatio = spread(rounds.map((r) => r.sequential.ratio));
const parRatio = spread(rounds.map((r) => r.concurrent.ratio));
const parVsSeq = spread(rounds.map((r) => r.concurrent.vsPythonSequential));
const med = (pick) => median(rounds.map(pick)) / 1000;
const seqVk = med((r) => r.sequential.virtkitMs);
const seqPy = med((r) => r.sequential.pythonMs);
const parVk = med((r) => r.concurrent.virtkitMs);
const parPy = med((r) => r.concurrent.pythonMs);
const heapGrowth = r2(memory.at(-1).heapMiB - memory[0].heapMiB);
/** Median over rounds of each CPU-per-RPC figure of `which` ("sequential" or "concurrent"); null where unknown. */
const cpuMedians = (which) => {
  const out = {};
  for (const k of ["virtkit", "python", "daemonForVirtkit", "daemonForPython"]) {
    const xs = rounds.map((r) => r[which].cpuPerRpcUs[k]).filter((x) => x !== null);
    out[k] = xs.length === rounds.length ? r2(median(xs)) : null;
  }
  return out;
};
const seqCpu = cpuMedians("sequential");
const parCpu = cpuMedians("concurrent");
const passSeq = seqRatio.median <= GOAL_SEQUENTIAL;
const passPar = parRatio.median >= GOAL_CONCURRENT;
const flat = Math.abs(heapGrowth) < 2;

const row = (what, vk, py, ratio, range, goal, pass) =>
  console.log(
    `${padEnd(what, 40)}${pad(vk, 24)}${pad(py, 24)}${pad(ratio, 8)}${pad(range, 13)}  ${padEnd(goal, 8)}${pass}`,
  );
console.log("");
row("figure", "virtkit median", "libvirt-python median", "ratio", "spread", "goal", "");
row(
  `(a) ${N.toLocaleString("en-US")} sequential, time`,
  `${ms(seqVk)} ${perSec(rate(seqVk))}`,
  `${ms(seqPy)} ${perSec(rate(seqPy))}`,
  seqRatio.median.toFixed(2),
  `${seqRatio.min.toFixed(2)}-${seqRatio.max.toFixed(2)}`,
  `<= ${GOAL_SEQUENTIAL.toFixed(1)}`,
  passSeq ? "PASS" : "MISS",
);
row(
  `(b) ${IN_FLIGHT} in flight vs ${IN_FLIGHT} threads, rate`,
  `${ms(parVk)} ${perSec(rate(parVk))}`,
  `${ms(parPy)} ${perSec(rate(parPy))}`,
  `${parRatio.median.toFixed(2)}x`,
  `${parRatio.min.toFixed(2)}-${parRatio.max.toFixed(2)}`,
  `>= ${GOAL_CONCURRENT.toFixed(1)}x`,
  passPar ? "PASS" : "MISS",
);
row(
  "    (ref) vs python sequential, rate",
  `${perSec(rate(parVk))}`,
  `${perSec(rate(seqPy))}`,
  `${parVsSeq.median.toFixed(2)}x`,
  `${parVsSeq.min.toFixed(2)}-${parVsSeq.max.toFixed(2)}`,
  "",
  "",
);
const us = (x) => (x === null ? "?" : `${x.toFixed(1)} us`);
const cpuLine = (what, c) =>
  `    ${what}: client virtkit ${us(c.virtkit)} vs libvirt-python ${us(c.python)}; ` +
  `daemon while serving virtkit ${us(c.daemonForVirtkit)} vs libvirt-python ${us(c.daemonForPython)}`;
console.log("CPU per RPC (medians over rounds; the daemon's from /proc" + (daemonPid === undefined ? ", not found from the socket: ?" : ` pid ${daemonPid}`) + "):");
console.log(cpuLine("(a) sequential", seqCpu));
console.log(cpuLine(`(b) ${IN_FLIGHT} in flight / threads`, parCpu));
console.log(
  `(c) heap after GC, baseline ${memBase.heapMiB} MiB: ` +
    memory.map((m) => `${m.units / 1000}k ${m.heapMiB} MiB (rss ${m.rssMiB})`).join(", ") +
    `; growth 10k->100k ${heapGrowth} MiB, goal flat (< 2 MiB) ${flat ? "PASS" : "MISS"}`,
);
console.log(
  "(medians over rounds; ratio = median of per-round ratios; spread = min-max of per-round ratios; " +
    "a unit = lookup + getInfo, rates in RPCs/s)",
);
console.log(`load average before ${loadBefore.join(" ")}, after ${loadAfter.join(" ")}`);
// Other work on the machine skews single rounds; the spread shows how much, this says why.
const busy = Math.max(loadBefore[0], loadAfter[0]) > cpus().length;
if (busy) console.log(`WARNING: load average above ${cpus().length} (CPUs): other work competed, figures are noisy; rerun on a quiet machine`);

console.log(
  "BENCH_JSON " +
    JSON.stringify({
      bench: "libvirt-rpc",
      uri: "test+unix:///default",
      unit: "domainLookupByName + domainGetInfo (2 RPCs)",
      units: N,
      rounds: ROUNDS,
      inFlight: IN_FLIGHT,
      environment: {
        node: process.version,
        libvirtd: `${daemonVersion.major}.${daemonVersion.minor}.${daemonVersion.release}`,
        pythonLibvirt: version(pythonLibvirt),
        cpus: cpus().length,
        loadBefore,
        loadAfter,
        busy,
        distOlderThanSrc: staleDist,
      },
      sequential: {
        goal: `ratio <= ${GOAL_SEQUENTIAL}`,
        ratio: seqRatio,
        virtkitMs: r2(seqVk * 1000),
        pythonMs: r2(seqPy * 1000),
        virtkitRpcPerSec: Math.round(rate(seqVk)),
        pythonRpcPerSec: Math.round(rate(seqPy)),
        cpuPerRpcUs: seqCpu,
        pass: passSeq,
      },
      concurrent: {
        goal: `ratio >= ${GOAL_CONCURRENT}`,
        pythonThreads: IN_FLIGHT,
        ratio: parRatio,
        vsPythonSequential: parVsSeq,
        virtkitMs: r2(parVk * 1000),
        pythonMs: r2(parPy * 1000),
        virtkitRpcPerSec: Math.round(rate(parVk)),
        pythonRpcPerSec: Math.round(rate(parPy)),
        cpuPerRpcUs: parCpu,
        pass: passPar,
      },
      memory: { baseline: memBase, samples: memory, heapGrowthMiB: heapGrowth, flat },
      perRound: rounds,
      pass: passSeq && passPar && flat,
    }),
);
