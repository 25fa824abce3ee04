// Benchmark: LibvirtDriver (virtkit) vs libvirt-python (python3-libvirt, libvirt's C client) doing the
// same work on the same private daemon, with libvirt's test hypervisor through the daemon's UNIX
// socket (test+unix:///default?socket=...; virtType "test", storage pool "default-pool").
//
// Per instance: spawn (disk volume in the pool, define from the driver's generated XML, start),
// getInfo, destroy (destroy, undefine, delete the volume). A batch takes N instances through that
// lifecycle one at a time or 32 at a time (at most 32 alive: the test pool holds only 100 GiB and
// every driver disk takes at least 1 GiB, so N=1000 alive at once cannot be done):
//   - virtkit: one LibvirtDriver (one connection) for the whole run, initHost outside the timing;
//   - libvirt-python: one connection (32 threads on it for the concurrent case), the minimal calls
//     pool.createXML / defineXML / createWithFlags / info / destroy / undefineFlags / vol.delete,
//     with the SAME domain and volume XML the driver generated (captured, uuid substituted). Two
//     of them: "as Nova" also watches lifecycle events the way Nova's libvirt driver does (the
//     default event loop in a thread, domainEventRegisterAny on the connection), the duty the
//     driver has too: each event costs the daemon and the watching client. That one is the goal's
//     anchor; "minimal" (no events) is printed beside it. Watching costs the daemon for every
//     watcher in every round, so the three sides pay alike for each other's subscriptions.
// N = 100 and 1000 (BENCH_SIZES="100" to shorten), each round runs the three sides back to back,
// the order rotating so each goes first as often; 5 rounds for N <= 100, 3 above (BENCH_ROUNDS
// overrides).
// RPCs: every method call on the driver's connection is counted (a Proxy around the connector's
// result), per operation; libvirt-python's are read from libvirt's client log (RPC_CLIENT_MSG_TX_QUEUE).
// Goal: virtkit median / libvirt-python-as-Nova median <= 1.3. Last line: `BENCH_JSON {...}`.
//
// Run: `pnpm --filter @virtkit/driver-libvirt... build && pnpm --filter @virtkit/driver-libvirt bench`
// (`pnpm bench` at the root builds first). Uses VIRTKIT_LIBVIRT_SOCKET, else starts the private
// daemon with scripts/libvirtd.sh. BENCH_PYTHON (default /usr/bin/python3) runs the python side.
/* global process, console, performance */

import { spawn as spawnChild } from "node:child_process";
import { randomUUID } from "node:crypto";
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { privateDaemonSocket } from "../../../scripts/private-libvirtd.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const pkg = join(here, "..");
const distEntry = join(pkg, "dist/index.js");
const distDriver = join(pkg, "dist/libvirt-driver.js");
if (!existsSync(distEntry)) {
  console.error("driver.bench: dist/ is missing; run `pnpm --filter @virtkit/driver-libvirt... build` first");
  process.exit(1);
}
const driverModule = await import("../dist/index.js");
const { LibvirtDriver } = driverModule;
// The driver's own connector when exported, else the rpc client it wraps.
const openRpcConnection =
  driverModule.openRpcConnection ??
  (await import("@virtkit/libvirt-rpc")).LibvirtConnection.open.bind(
    (await import("@virtkit/libvirt-rpc")).LibvirtConnection,
  );
const { PowerState } = await import("@virtkit/core");

const worker = join(here, "libvirt-python-worker.py");
const PYTHON = process.env.BENCH_PYTHON ?? "/usr/bin/python3";
const SIZES = (process.env.BENCH_SIZES ?? "100,1000")
  .split(/[\s,]+/)
  .filter(Boolean)
  .map(Number);
const CONCURRENCY = [1, 32];
const roundsFor = (n) => (process.env.BENCH_ROUNDS ? Number(process.env.BENCH_ROUNDS) : n <= 100 ? 5 : 3);
const GOAL = 1.3;
const POOL = "default-pool";
const PHASES = ["spawn", "getInfo", "destroy"];

for (const n of SIZES) if (!Number.isInteger(n) || n < 1) throw new Error(`BENCH_SIZES: bad size ${n}`);

/** Newest modification time (ms) of the driver's compiled code, to notice a rebuild mid-run. */
function distStamp() {
  return statSync(distDriver).mtimeMs;
}

/** Newest modification time (ms) under src/ (non-test .ts): newer than dist means dist may be stale. */
function srcStamp() {
  let newest = 0;
  for (const f of readdirSync(join(pkg, "src"))) {
    if (f.endsWith(".ts") && !f.endsWith(".test.ts")) newest = Math.max(newest, statSync(join(pkg, "src", f)).mtimeMs);
  }
  return newest;
}

// ---------------------------------------------------------------------------------------------
// RPC counting: the driver's connection wrapped in a Proxy; each method call on it is one RPC.

let phase = "setup";
/** Lifecycle events the driver delivered, by phase. */
const events = new Map();
/** counts[phase][method] = { calls, failed } (phase is "<config>/<op>", "warmup", "setup", ...). */
const counts = new Map();
/** Domain and volume XML the driver sent, while capturing (the warm-up's first instances). */
const captured = { domainXml: [], volumeXml: [], on: true };

function bump(method, failed) {
  let byMethod = counts.get(phase);
  if (!byMethod) counts.set(phase, (byMethod = new Map()));
  let c = byMethod.get(method);
  if (!c) byMethod.set(method, (c = { calls: 0, failed: 0 }));
  if (failed) c.failed++;
  else c.calls++;
}

function countingProxy(api) {
  const wrappers = new Map();
  return new Proxy(api, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target);
      if (typeof value !== "function" || typeof prop !== "string") return value;
      let w = wrappers.get(prop);
      if (!w) {
        w = function (...args) {
          bump(prop, false);
          if (captured.on) {
            if (prop === "domainDefineXml") captured.domainXml.push(args[0]);
            if (prop === "storageVolCreateXml") captured.volumeXml.push(args[1]);
          }
          // Private fields: call on the real connection, never on the proxy.
          const result = value.apply(target, args);
          if (result && typeof result.then === "function") {
            result.then(undefined, () => bump(prop, true));
          }
          return result;
        };
        wrappers.set(prop, w);
      }
      return w;
    },
  });
}

// ---------------------------------------------------------------------------------------------
// helpers

let stopping = false;
process.on("SIGINT", () => {
  if (stopping) process.exit(130);
  stopping = true;
  console.error("driver.bench: interrupted, cleaning up (Ctrl-C again to quit at once)");
});

/** Runs fn(0..n-1), one at a time or `conc` in flight; stops at the first failure. */
async function each(n, conc, fn) {
  if (conc <= 1) {
    for (let i = 0; i < n; i++) {
      if (stopping) throw new Error("interrupted");
      await fn(i);
    }
    return;
  }
  let next = 0;
  let failure;
  const work = async () => {
    while (failure === undefined && !stopping) {
      const i = next++;
      if (i >= n) return;
      try {
        await fn(i);
      } catch (err) {
        failure ??= err;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(conc, n) }, work));
  if (failure !== undefined) throw failure;
  if (stopping) throw new Error("interrupted");
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const r2 = (x) => Math.round(x * 100) / 100;
const r1 = (x) => Math.round(x * 10) / 10;

/** Every uuid the bench ever used, for the final sweep. */
const allUuids = [];
const newUuids = (n) => {
  const u = Array.from({ length: n }, () => randomUUID());
  allUuids.push(...u);
  return u;
};

function instance(uuid) {
  return {
    uuid,
    name: `vkbench-${uuid}`,
    projectId: "bench-project",
    userId: "bench-user",
    flavor: { name: "m1.tiny", memoryMb: 64, vcpus: 1, rootGb: 1 },
    imageMeta: { properties: {} },
  };
}

// ---------------------------------------------------------------------------------------------
// virtkit side

/**
 * Each instance: spawn, getInfo, destroy; one at a time or `conc` instances in flight. Returns the
 * batch's wall time and the mean latency of each operation (ms). RPCs are counted per operation
 * when sequential (phase `<label>/<op>`), per instance only when concurrent (phase `<label>/all`).
 */
async function virtkitBatch(driver, n, conc, label) {
  const instances = newUuids(n).map(instance);
  const live = new Set();
  const sum = { spawn: 0, getInfo: 0, destroy: 0 };
  const seq = conc <= 1;
  try {
    phase = `${label}/all`;
    const t0 = performance.now();
    await each(n, conc, async (k) => {
      const inst = instances[k];
      live.add(inst);
      if (seq) phase = `${label}/spawn`;
      const t = performance.now();
      await driver.spawn({ instance: inst });
      const t1 = performance.now();
      if (seq) phase = `${label}/getInfo`;
      const info = await driver.getInfo(inst);
      if (info.state !== PowerState.RUNNING) throw new Error(`${inst.uuid} is in state ${info.state}`);
      const t2 = performance.now();
      if (seq) phase = `${label}/destroy`;
      await driver.destroy(inst);
      live.delete(inst);
      const t3 = performance.now();
      sum.spawn += t1 - t;
      sum.getInfo += t2 - t1;
      sum.destroy += t3 - t2;
    });
    const total = performance.now() - t0;
    return { total, spawn: sum.spawn / n, getInfo: sum.getInfo / n, destroy: sum.destroy / n };
  } finally {
    phase = "cleanup";
    for (const i of live) await driver.destroy(i).catch(() => undefined);
  }
}

// ---------------------------------------------------------------------------------------------
// libvirt-python side: a long-lived worker speaking JSON lines

function startPython(env = {}) {
  const child = spawnChild(PYTHON, [worker], { stdio: ["pipe", "pipe", "inherit"], env: { ...process.env, ...env } });
  const lines = createInterface({ input: child.stdout });
  const waiting = [];
  let exited = null;
  lines.on("line", (line) => waiting.shift()?.resolve(line));
  child.on("exit", (code, signal) => {
    exited = new Error(`libvirt-python worker exited (${signal ?? code})`);
    for (const w of waiting.splice(0)) w.reject(exited);
  });
  child.on("error", (err) => {
    exited = err;
    for (const w of waiting.splice(0)) w.reject(err);
  });
  const request = (msg) =>
    new Promise((resolve, reject) => {
      if (exited) return reject(exited);
      waiting.push({
        resolve: (line) => {
          const reply = JSON.parse(line);
          if (reply.ok) resolve(reply);
          else reject(new Error(`libvirt-python: ${reply.error}`));
        },
        reject,
      });
      child.stdin.write(JSON.stringify(msg) + "\n");
    });
  const quit = async () => {
    if (exited) return;
    await request({ cmd: "quit" }).catch(() => undefined);
    child.stdin.end();
  };
  return {
    request,
    quit,
    get alive() {
      return !exited;
    },
  };
}

async function pythonBatch(py, n, conc, label = "warmup", side = "python") {
  if (stopping) throw new Error("interrupted");
  phase = `${label}/${side}`;
  const r = await py.request({ cmd: "run", uuids: newUuids(n), conc });
  phase = "idle";
  const ms = (s) => s * 1000;
  return { spawn: ms(r.spawn), getInfo: ms(r.getInfo), destroy: ms(r.destroy), total: ms(r.total), events: r.events };
}

// ---------------------------------------------------------------------------------------------
// XML templates: what the driver sent, with the instance uuid replaced by {UUID}

function template(xmls, uuids, what) {
  const forms = uuids.map((u) => {
    const xml = xmls.find((x) => x.includes(u));
    if (!xml) throw new Error(`no captured ${what} XML for ${u}`);
    // The spawn id (a fresh uuid per spawn, in virtkit's metadata) becomes the instance uuid too:
    // python's XML stays the same size and shape.
    return xml.replace(/(<virtkit:spawn>)[^<]*(<\/virtkit:spawn>)/, `$1${u}$2`).split(u).join("{UUID}");
  });
  if (forms.some((f) => f !== forms[0])) {
    throw new Error(`the driver's ${what} XML differs between instances beyond the uuid; cannot template it`);
  }
  if (/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/.test(forms[0])) {
    throw new Error(`the driver's ${what} XML holds another uuid; cannot template it`);
  }
  return forms[0];
}

// ---------------------------------------------------------------------------------------------
// main

const socket = privateDaemonSocket();
const uri = `test+unix:///default?socket=${socket}`;
const distAtStart = distStamp();
const loadStart = loadavg();
const staleDist = srcStamp() > distAtStart;
console.log(`driver-libvirt benchmark: spawn + getInfo + destroy of N instances, LibvirtDriver vs libvirt-python`);
console.log(`  ${uri} (virtType test, pool ${POOL}); sizes ${SIZES.join(", ")}; concurrency ${CONCURRENCY.join(", ")}`);
if (staleDist) console.log("  NOTE: src/ is newer than dist/ (dist may be stale: rebuild for current figures)");

const driver = new LibvirtDriver({
  uri,
  connector: async (u, opts) => countingProxy(await openRpcConnection(u, opts)),
});
let py;
let pyNova;
let pyProbe;
const results = [];
let pyRpc = null;
let sweepResult = null;
let failure;
try {
  await driver.initHost("bench-host");
  // Lifecycle events the driver receives (it subscribes in initHost), by phase: during the python
  // rounds they come from python's domains and cost the daemon and this process a little.
  driver.registerEventListener(() => events.set(phase, (events.get(phase) ?? 0) + 1));

  // Warm-up (untimed): JIT, pool lookup cache, connection buffers; captures the XML templates.
  phase = "warmup";
  await virtkitBatch(driver, 100, 1, "warmup");
  captured.on = false;
  await virtkitBatch(driver, 100, 32, "warmup");
  const firstTwo = allUuids.slice(0, 2);
  const domainXml = template(captured.domainXml, firstTwo, "domain");
  const volumeXml = template(captured.volumeXml, firstTwo, "volume");
  captured.domainXml.length = captured.volumeXml.length = 0;

  py = startPython();
  const init = { cmd: "init", socket, pool: POOL, domainXml, volumeXml, threads: 32 };
  const { libvirt: libvirtVersion } = await py.request(init);
  await pythonBatch(py, 100, 1);
  await pythonBatch(py, 100, 32);
  pyNova = startPython();
  await pyNova.request({ ...init, events: true });
  await pythonBatch(pyNova, 100, 1);
  await pythonBatch(pyNova, 100, 32);

  // libvirt-python's RPCs per instance, read from libvirt's client log (a separate short run).
  const logDir = mkdtempSync(join(tmpdir(), "virtkit-bench-"));
  const logFile = join(logDir, "libvirt-client.log");
  try {
    pyProbe = startPython({
      LIBVIRT_LOG_FILTERS: "1:rpc.netclient",
      LIBVIRT_LOG_OUTPUTS: `1:file:${logFile}`,
      BENCH_PY_RPC_LOG: logFile,
    });
    await pyProbe.request(init);
    const probe = await pyProbe.request({ cmd: "probe", uuids: newUuids(4) });
    await pyProbe.quit();
    pyRpc = { perOp: {}, total: 0 };
    for (const op of PHASES) {
      const perMethod = {};
      let sum = 0;
      for (const [m, c] of Object.entries(probe.phases[op] ?? {})) {
        perMethod[m] = c / probe.instances;
        sum += c / probe.instances;
      }
      pyRpc.perOp[op] = { total: sum, methods: perMethod };
      pyRpc.total += sum;
    }
    if (pyRpc.total === 0) pyRpc = null; // no client log here: fall back to the known count below
  } catch (err) {
    console.log(`  (could not count libvirt-python RPCs from its log: ${err.message})`);
    pyRpc = null;
  } finally {
    rmSync(logDir, { recursive: true, force: true });
  }
  pyRpc ??= {
    measured: false,
    total: 7,
    perOp: {
      spawn: { total: 3, methods: { storageVolCreateXML: 1, domainDefineXML: 1, domainCreateWithFlags: 1 } },
      getInfo: { total: 1, methods: { domainGetInfo: 1 } },
      destroy: { total: 3, methods: { domainDestroy: 1, domainUndefineFlags: 1, storageVolDelete: 1 } },
    },
  };
  pyRpc.measured ??= true;

  const v = libvirtVersion;
  console.log(
    `  libvirt ${Math.floor(v / 1e6)}.${Math.floor(v / 1e3) % 1000}.${v % 1000} (python3-libvirt), node ${process.version}, ` +
      `load average at start ${loadStart.map((x) => x.toFixed(2)).join(" ")}`,
  );
  console.log("");

  for (const n of SIZES) {
    for (const conc of CONCURRENCY) {
      const label = `N=${n},c=${conc}`;
      const rounds = roundsFor(n);
      const vk = [];
      const pt = []; // libvirt-python as Nova (watching events): the goal's anchor
      const pm = []; // libvirt-python, minimal (no events)
      const sides = [
        () => virtkitBatch(driver, n, conc, label).then((r) => vk.push(r)),
        () => pythonBatch(pyNova, n, conc, label, "python-nova").then((r) => pt.push(r)),
        () => pythonBatch(py, n, conc, label).then((r) => pm.push(r)),
      ];
      for (let round = 1; round <= rounds; round++) {
        // Rotating order: each side goes first in every third round.
        for (let k = 0; k < sides.length; k++) await sides[(round - 1 + k) % sides.length]();
        const last = vk.length - 1;
        process.stderr.write(
          `  ${label} round ${round}/${rounds}: virtkit ${vk[last].total.toFixed(0)} ms, ` +
            `python as Nova ${pt[last].total.toFixed(0)} ms, minimal ${pm[last].total.toFixed(0)} ms\n`,
        );
      }
      // RPCs per instance from the proxy's counts for this configuration: per operation when
      // sequential; for the whole lifecycle ("all") when concurrent (operations overlap there).
      const groups = conc <= 1 ? PHASES : ["all"];
      const vkRpc = { perOp: {}, total: 0, failed: 0 };
      for (const op of groups) {
        const methods = {};
        const failedMethods = {};
        let sum = 0;
        let failed = 0;
        for (const [m, c] of counts.get(`${label}/${op}`) ?? []) {
          methods[m] = r2(c.calls / (n * rounds));
          if (c.failed > 0) failedMethods[m] = r2(c.failed / (n * rounds));
          sum += c.calls / (n * rounds);
          failed += c.failed / (n * rounds);
        }
        vkRpc.perOp[op] = { total: r2(sum), failed: r2(failed), methods, failedMethods };
        vkRpc.total += sum;
        vkRpc.failed += failed;
      }
      const eventsOf = (keys) => r2(keys.reduce((a, k) => a + (events.get(`${label}/${k}`) ?? 0), 0) / (n * rounds));
      const ratios = vk.map((v, i) => v.total / pt[i].total);
      const minimalRatios = vk.map((v, i) => v.total / pm[i].total);
      const vkMed = median(vk.map((v) => v.total));
      const pyMed = median(pt.map((p) => p.total));
      const pmMed = median(pm.map((p) => p.total));
      results.push({
        n,
        concurrency: conc,
        rounds,
        virtkitMs: r1(vkMed),
        pythonMs: r1(pyMed),
        ratio: r2(vkMed / pyMed),
        ratioMin: r2(Math.min(...ratios)),
        ratioMax: r2(Math.max(...ratios)),
        pass: vkMed / pyMed <= GOAL,
        minimal: {
          pythonMs: r1(pmMed),
          ratio: r2(vkMed / pmMed),
          ratioMin: r2(Math.min(...minimalRatios)),
          ratioMax: r2(Math.max(...minimalRatios)),
          roundsMs: pm.map((p) => r1(p.total)),
        },
        virtkitRpcPerInstance: r2(vkRpc.total),
        virtkitFailedRpcPerInstance: r2(vkRpc.failed),
        pythonRpcPerInstance: r2(pyRpc.total),
        usPerRpc: {
          virtkit: r1((vkMed * 1000) / (n * vkRpc.total)),
          python: r1((pyMed * 1000) / (n * pyRpc.total)),
        },
        driverEventsPerInstance: { virtkit: eventsOf([...PHASES, "all"]), duringPython: eventsOf(["python"]) }, // the minimal side's rounds
        // Raw lifecycle events libvirt-python's callback got for its own batches (defined, started,
        // stopped, undefined): proof its subscription was live.
        pythonEventsPerInstance: r2(median(pt.map((p) => p.events)) / n),
        meanLatencyMs: Object.fromEntries(
          PHASES.map((op) => [
            op,
            { virtkit: r2(median(vk.map((v) => v[op]))), python: r2(median(pt.map((p) => p[op]))) },
          ]),
        ),
        virtkitRpcPerOp: vkRpc.perOp,
        virtkitRoundsMs: vk.map((v) => r1(v.total)),
        pythonRoundsMs: pt.map((p) => r1(p.total)),
      });
    }
  }
} catch (err) {
  failure = err;
} finally {
  phase = "cleanup";
  // Sweep: no domain or volume of any uuid this bench used may survive (the test driver's state is
  // shared by every open connection to test:///default on this daemon).
  try {
    const sweeper = py?.alive ? py : pyNova?.alive ? pyNova : undefined;
    if (sweeper) sweepResult = await sweeper.request({ cmd: "sweep", uuids: allUuids });
  } catch (err) {
    console.error(`driver.bench: sweep through libvirt-python failed: ${err.message}`);
  }
  if (!sweepResult) {
    try {
      const known = new Set(allUuids);
      const left = (await driver.listInstanceUuids()).filter((u) => known.has(u));
      for (const u of left) await driver.destroy(instance(u)).catch(() => undefined);
      sweepResult = { domains: left.length, volumes: null, via: "driver" };
    } catch (err) {
      console.error(`driver.bench: sweep through the driver failed: ${err.message}`);
    }
  }
  await py?.quit();
  await pyNova?.quit();
  await pyProbe?.quit();
  await driver.cleanupHost("bench-host").catch(() => undefined);
  if (sweepResult) {
    console.log(
      `Cleanup: leftovers swept at the end: ${sweepResult.domains} domains, ${sweepResult.volumes ?? "?"} volumes (0 expected)`,
    );
  }
}
if (failure !== undefined) {
  console.error(stopping ? "driver.bench: interrupted" : "driver.bench: failed:", stopping ? "" : failure);
  process.exit(stopping ? 130 : 1);
}

// ---------------------------------------------------------------------------------------------
// report

const distChanged = distStamp() !== distAtStart;
const loadEnd = loadavg();
const pad = (s, w) => String(s).padStart(w);
const padEnd = (s, w) => String(s).padEnd(w);
console.log("");
console.log(
  `${padEnd("N", 6)}${padEnd("conc", 6)}${pad("rounds", 6)}${pad("virtkit ms", 12)}${pad("as Nova ms", 12)}` +
    `${pad("ratio", 7)}${pad("spread", 13)}${pad("minimal ms", 12)}${pad("ratio", 7)}${pad("spread", 13)}` +
    `${pad("RPC/inst vk", 13)}${pad("py", 4)}  goal<=${GOAL}`,
);
const range = (lo, hi) => `${lo.toFixed(2)}-${hi.toFixed(2)}`;
for (const r of results) {
  console.log(
    `${padEnd(r.n, 6)}${padEnd(r.concurrency, 6)}${pad(r.rounds, 6)}${pad(r.virtkitMs.toFixed(1), 12)}` +
      `${pad(r.pythonMs.toFixed(1), 12)}${pad(r.ratio.toFixed(2), 7)}${pad(range(r.ratioMin, r.ratioMax), 13)}` +
      `${pad(r.minimal.pythonMs.toFixed(1), 12)}${pad(r.minimal.ratio.toFixed(2), 7)}` +
      `${pad(range(r.minimal.ratioMin, r.minimal.ratioMax), 13)}` +
      `${pad(r.virtkitRpcPerInstance, 13)}${pad(r.pythonRpcPerInstance, 4)}  ${r.pass ? "PASS" : "MISS"}`,
  );
}
console.log(
  "(ms = median of rounds for the whole batch; ratio = virtkit median / that python median; spread = min-max of per-round ratios;\n" +
    " as Nova = libvirt-python watching lifecycle events as Nova's driver does, the goal's anchor; minimal = no events)",
);

console.log("");
console.log("Mean latency per operation, ms (virtkit / libvirt-python as Nova; median over rounds):");
for (const r of results) {
  const parts = PHASES.map((op) => `${op} ${r.meanLatencyMs[op].virtkit} / ${r.meanLatencyMs[op].python}`);
  console.log(
    `  N=${r.n} conc=${r.concurrency}: ${parts.join(", ")}; batch time per RPC ${r.usPerRpc.virtkit} / ${r.usPerRpc.python} us`,
  );
}

console.log("");
console.log("RPCs per instance (virtkit: method calls on the driver's connection; [x failed] = error replies):");
const fmtMethods = (methods, failed = {}) =>
  Object.entries(methods)
    .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
    .map(([m, c]) => `${m} ${c}${failed[m] ? ` [${failed[m]} failed]` : ""}`)
    .join(", ");
for (const r of results) {
  const ops = Object.keys(r.virtkitRpcPerOp);
  console.log(
    `  virtkit N=${r.n} conc=${r.concurrency}${ops.includes("all") ? " (whole lifecycle; operations overlap)" : ""}:`,
  );
  for (const op of ops) {
    const o = r.virtkitRpcPerOp[op];
    console.log(`    ${padEnd(op, 8)} ${pad(o.total, 5)}: ${fmtMethods(o.methods, o.failedMethods)}`);
  }
}
console.log(`  libvirt-python (${pyRpc?.measured ? "counted from libvirt's client log" : "known minimal sequence"}):`);
for (const op of PHASES) {
  const o = pyRpc?.perOp[op];
  if (o)
    console.log(
      `    ${padEnd(op, 8)} ${pad(r2(o.total), 5)}: ${fmtMethods(Object.fromEntries(Object.entries(o.methods).map(([m, c]) => [m, r2(c)])))}`,
    );
}

console.log("");
console.log(
  "Lifecycle events per instance: delivered to the driver's listeners (virtkit rounds / minimal python rounds); " +
    "received by libvirt-python-as-Nova's callback in its rounds (all lifecycle events, undelivered ones too):",
);
for (const r of results) {
  console.log(
    `  N=${r.n} conc=${r.concurrency}: ${r.driverEventsPerInstance.virtkit} / ${r.driverEventsPerInstance.duringPython}; ` +
      `libvirt-python as Nova ${r.pythonEventsPerInstance}`,
  );
}

console.log("");
const all = results.every((r) => r.pass);
console.log(
  `Goal: virtkit / libvirt-python-as-Nova median ratio <= ${GOAL} in every configuration: ${all ? "PASS" : "MISS"}`,
);
console.log(
  `Load average at start / end: ${loadStart[0].toFixed(2)} / ${loadEnd[0].toFixed(2)} ` +
    "(the daemon and the machine are shared: high load widens the spread)",
);
if (distChanged)
  console.log("WARNING: dist/ changed during the run (someone rebuilt the driver): rerun for consistent figures");
if (staleDist)
  console.log("NOTE: src/ was newer than dist/ at start: the figures are for the last build, not the current source");

console.log(
  "BENCH_JSON " +
    JSON.stringify({
      bench: "driver-libvirt",
      uri: "test+unix:///default",
      goalRatio: GOAL,
      pass: all,
      pythonRpc: pyRpc,
      results,
      cleanup: sweepResult,
      loadAverage: { start: r2(loadStart[0]), end: r2(loadEnd[0]) },
      distChangedDuringRun: distChanged,
      distOlderThanSrc: staleDist,
    }),
);
process.exitCode = results.length === SIZES.length * CONCURRENCY.length ? 0 : 1;
