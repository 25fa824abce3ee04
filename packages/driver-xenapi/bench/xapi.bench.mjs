// Figures of the XenAPI driver against the XAPI simulator (@virtkit/xapi-simulator: a simulator,
// not a XenServer host). Run after `pnpm build`: `pnpm --filter @virtkit/driver-xenapi bench`.
//
// 1. 1,000 sequential VM.get_record through the driver's XapiClient over loopback, against the
//    simulator running in its own process. Anchor: the same 1,000 JSON-RPC POSTs from a bare
//    node:http keep-alive loop, rounds alternating which goes first; the figure is the client's
//    time (goal < 1 s) and its ratio to the bare loop.
// 2. The same 1,000 calls with 64 in flight vs sequential: the rate ratio (goal >= 3x), rounds
//    alternating which goes first.
// 3. The whole conformance suite against the simulator (direct runner; goal < 5 s), the simulator
//    in its worker thread as the environment runs it by default, each round also run with the
//    simulator on this thread (VIRTKIT_XENAPI_SIMULATOR_THREAD=main) in alternating order: their
//    ratio is what the worker gains (after one untimed warm-up run). Anchored as well on a bare
//    `node -e 0` start in the same round.
//    With it, the CPU each side spends per call (this process: the client; the simulator's process,
//    read from /proc), sequential and in flight, and the ceiling they put on the ratio: in flight,
//    a call costs at least the busier side's CPU on two idle cores (the sum of both on one), where
//    a sequential call pays both sides and the wake-ups between them.
//    And a zero-cost client as the anchor of that ratio: raw sockets (one per lane), the request's
//    bytes built once, the reply framed by its Content-Length and not decoded. Its in-flight /
//    sequential ratio is what the simulator alone lets any client reach on this machine.
// BENCH_ROUNDS (default 7) and BENCH_SUITE_ROUNDS (default 3) set the rounds; the last line is
// `BENCH_JSON {...}` with every figure.
/* global process, console, performance, URL, Buffer */
import { spawn, spawnSync } from "node:child_process";
import http from "node:http";
import net from "node:net";
import { readFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { Secret } from "@virtkit/core";
import { XapiClient } from "../dist/index.js";

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 7);
const SUITE_ROUNDS = Number(process.env.BENCH_SUITE_ROUNDS ?? 3);
const CALLS = 1000;
const IN_FLIGHT = 64;
const SUITE_PARALLEL = Number(process.env.BENCH_SUITE_PARALLEL ?? 8);
for (const [k, v] of Object.entries({ ROUNDS, SUITE_ROUNDS, SUITE_PARALLEL })) {
  if (!Number.isInteger(v) || v < 1) throw new Error(`${k} must be a positive integer`);
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const r2 = (x) => Math.round(x * 100) / 100;
const stats = (xs) => ({ median: r2(median(xs)), min: r2(Math.min(...xs)), max: r2(Math.max(...xs)) });

/** The simulator in a child process, so its work is not on this process's event loop. */
async function startSimulatorProcess() {
  const simEntry = import.meta.resolve("@virtkit/xapi-simulator");
  const code = `
    const { startXapiSimulator } = await import(${JSON.stringify(simEntry)});
    const sim = await startXapiSimulator({});
    process.stdout.write(JSON.stringify({ url: sim.url, username: sim.username, password: sim.password }) + "\\n");
    process.stdin.on("end", async () => { await sim.close(); process.exit(0); });
    process.stdin.resume();
  `;
  const child = spawn(process.execPath, ["--input-type=module", "-e", code], { stdio: ["pipe", "pipe", "inherit"] });
  const line = await new Promise((resolve, reject) => {
    let buf = "";
    child.stdout.on("data", (c) => {
      buf += c;
      const i = buf.indexOf("\n");
      if (i >= 0) resolve(buf.slice(0, i));
    });
    child.on("exit", (code) => reject(new Error(`simulator exited ${code}`)));
  });
  const info = JSON.parse(line);
  return { ...info, pid: child.pid, stop: () => new Promise((r) => (child.on("exit", r), child.stdin.end())) };
}

/** The anchor: the same POSTs from a bare keep-alive node:http loop (no codec, no session logic). */
function bareClient(url, session) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: IN_FLIGHT });
  let id = 1;
  const call = (vm) =>
    new Promise((resolve, reject) => {
      const body = JSON.stringify({ jsonrpc: "2.0", method: "VM.get_record", params: [session, vm], id: id++ });
      const req = http.request(
        new URL("/jsonrpc", url),
        { method: "POST", agent, headers: { "content-type": "application/json", "content-length": Buffer.byteLength(body) } },
        (res) => {
          const chunks = [];
          res.on("data", (c) => chunks.push(c));
          res.on("end", () => {
            const msg = JSON.parse(Buffer.concat(chunks).toString("utf8"));
            if (msg.error) reject(new Error(String(msg.error.message)));
            else resolve(msg.result);
          });
        },
      );
      req.on("error", reject);
      req.end(body);
    });
  return { call, close: () => agent.destroy() };
}

/** The zero-cost anchor: `lanes` raw keep-alive sockets, the request bytes built once, replies framed, not decoded. */
async function rawClient(url, session, vm, lanes) {
  const u = new URL(url);
  const body = JSON.stringify({ jsonrpc: "2.0", method: "VM.get_record", params: [session, vm], id: 1 });
  const request = Buffer.from(
    `POST /jsonrpc HTTP/1.1\r\nHost: ${u.host}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
  const lane = async () => {
    const socket = net.connect(Number(u.port), u.hostname);
    socket.setNoDelay(true);
    await new Promise((resolve, reject) => socket.once("connect", resolve).once("error", reject));
    let buf = Buffer.alloc(0);
    let want = -1;
    let done;
    socket.on("data", (chunk) => {
      buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
      if (want < 0) {
        const end = buf.indexOf("\r\n\r\n");
        if (end < 0) return;
        const length = /content-length: *(\d+)/i.exec(buf.toString("latin1", 0, end));
        if (!length) throw new Error("the simulator's reply has no Content-Length");
        want = end + 4 + Number(length[1]);
      }
      if (buf.length < want) return;
      buf = buf.subarray(want);
      want = -1;
      done();
    });
    return { call: () => new Promise((resolve) => ((done = resolve), socket.write(request))), close: () => socket.destroy() };
  };
  const all = [];
  for (let i = 0; i < lanes; i++) all.push(await lane());
  return { lanes: all, close: () => all.forEach((l) => l.close()) };
}

const CLK_TCK = Number(spawnSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).stdout.trim()) || 100;
/** CPU time (user + system, ms) of another process, from /proc; NaN where there is no /proc. */
function processCpuMs(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return ((Number(f[11]) + Number(f[12])) * 1000) / CLK_TCK;
  } catch {
    return Number.NaN;
  }
}

/** Runs fn; pushes this process's and the simulator's CPU per call (µs) into the given lists. */
async function withCpu(simPid, clientUs, simUs, fn) {
  const c0 = process.cpuUsage();
  const s0 = processCpuMs(simPid);
  const ms = await fn();
  const c = process.cpuUsage(c0);
  clientUs.push((c.user + c.system) / CALLS);
  simUs.push(((processCpuMs(simPid) - s0) * 1000) / CALLS);
  return ms;
}

async function timed(fn) {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

async function sequential(call, vm) {
  for (let i = 0; i < CALLS; i++) await call(vm);
}

async function inFlight(call, vm) {
  let next = 0;
  const worker = async (_, lane) => {
    while (next < CALLS) {
      next++;
      await call(vm, lane);
    }
  };
  await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
}

// -- 1 and 2: the client ----------------------------------------------------------------------
const sim = await startSimulatorProcess();
const client = new XapiClient({ url: sim.url, username: sim.username, password: new Secret(sim.password) });
const vms = await client.call("VM.get_all");
const vm = vms[0];
// The bare loop needs a session of its own.
const bareSession = await new Promise((resolve, reject) => {
  const body = JSON.stringify({ jsonrpc: "2.0", method: "session.login_with_password", params: [sim.username, sim.password, "2.x", "bench"], id: 0 });
  const req = http.request(new URL("/jsonrpc", sim.url), { method: "POST", headers: { "content-type": "application/json" } }, (res) => {
    const chunks = [];
    res.on("data", (c) => chunks.push(c));
    res.on("end", () => resolve(JSON.parse(Buffer.concat(chunks).toString("utf8")).result));
  });
  req.on("error", reject);
  req.end(body);
});
const bare = bareClient(sim.url, bareSession);
const viaClient = (v) => client.call("VM.get_record", [v]);
const raw = await rawClient(sim.url, bareSession, vm, IN_FLIGHT);
const viaRaw = (_v, lane = 0) => raw.lanes[lane].call();

// Warm-up: sockets, JIT.
await sequential(viaClient, vm);
await sequential(bare.call, vm);
await inFlight(viaRaw, vm);

const seqClient = [];
const seqBare = [];
const parClient = [];
const [seqClientCpu, seqSimCpu, parClientCpu, parSimCpu] = [[], [], [], []];
const [seqRaw, parRaw, seqRawSimCpu, parRawSimCpu, rawCpuScratch] = [[], [], [], [], []];
for (let round = 0; round < ROUNDS; round++) {
  const order = round % 2 === 0 ? ["client", "bare", "par", "raw", "rawPar"] : ["rawPar", "raw", "par", "bare", "client"];
  for (const which of order) {
    if (which === "client") seqClient.push(await withCpu(sim.pid, seqClientCpu, seqSimCpu, () => timed(() => sequential(viaClient, vm))));
    else if (which === "bare") seqBare.push(await timed(() => sequential(bare.call, vm)));
    else if (which === "par") parClient.push(await withCpu(sim.pid, parClientCpu, parSimCpu, () => timed(() => inFlight(viaClient, vm))));
    else if (which === "raw") seqRaw.push(await withCpu(sim.pid, rawCpuScratch, seqRawSimCpu, () => timed(() => sequential(viaRaw, vm))));
    else parRaw.push(await withCpu(sim.pid, rawCpuScratch, parRawSimCpu, () => timed(() => inFlight(viaRaw, vm))));
  }
}
raw.close();
bare.close();
await client.close();
await sim.stop();

const clientVsBare = seqClient.map((t, i) => t / seqBare[i]);
const speedup = seqClient.map((t, i) => t / parClient[i]);
// The most the in-flight rate could gain over this round's sequential one, from the CPU each side
// spent in flight: on two idle cores a call costs the busier side's CPU, on one core both sides'.
const ceiling2 = seqClient.map((t, i) => (t * 1000) / CALLS / Math.max(parClientCpu[i], parSimCpu[i]));
const ceiling1 = seqClient.map((t, i) => (t * 1000) / CALLS / (parClientCpu[i] + parSimCpu[i]));
const rawSpeedup = seqRaw.map((t, i) => t / parRaw[i]);

// -- 3: the whole suite -------------------------------------------------------------------------
const { resolveDriver, runConformance } = await import("@virtkit/conformance");
const xen = await resolveDriver("xenapi", []);
const anchorMs = () => {
  const t0 = performance.now();
  spawnSync(process.execPath, ["-e", "0"]);
  return performance.now() - t0;
};
const suiteMs = [];
const suiteMainMs = [];
const suiteAnchor = [];
let lastSummary;
const suiteRun = async (thread) => {
  process.env.VIRTKIT_XENAPI_SIMULATOR_THREAD = thread;
  const t0 = performance.now();
  const report = await runConformance({ driver: xen.descriptor, environment: xen.environment, service: xen.service, parallel: SUITE_PARALLEL });
  const ms = performance.now() - t0;
  if (report.summary.fail > 0) throw new Error(`the suite failed ${report.summary.fail} scenario(s) with the simulator on the ${thread} thread`);
  if (thread === "worker") lastSummary = report.summary;
  return ms;
};
// One untimed run first: module loading and JIT would otherwise weigh on whichever mode runs first.
await suiteRun("worker");
for (let round = 0; round < SUITE_ROUNDS; round++) {
  suiteAnchor.push(anchorMs());
  for (const thread of round % 2 === 0 ? ["worker", "main"] : ["main", "worker"]) {
    (thread === "worker" ? suiteMs : suiteMainMs).push(await suiteRun(thread));
  }
}
delete process.env.VIRTKIT_XENAPI_SIMULATOR_THREAD;
const suiteRatios = suiteMs.map((t, i) => t / suiteAnchor[i]);
const workerGain = suiteMainMs.map((t, i) => t / suiteMs[i]);

const figures = {
  getRecordSequentialMs: stats(seqClient),
  bareHttpSequentialMs: stats(seqBare),
  clientVsBareRatio: stats(clientVsBare),
  getRecordInFlightMs: stats(parClient),
  inFlightSpeedup: stats(speedup),
  clientCpuUsPerCallSequential: stats(seqClientCpu),
  simulatorCpuUsPerCallSequential: stats(seqSimCpu),
  clientCpuUsPerCallInFlight: stats(parClientCpu),
  simulatorCpuUsPerCallInFlight: stats(parSimCpu),
  inFlightCeilingTwoIdleCores: stats(ceiling2),
  inFlightCeilingOneCore: stats(ceiling1),
  zeroCostClientSequentialMs: stats(seqRaw),
  zeroCostClientInFlightMs: stats(parRaw),
  zeroCostClientInFlightSpeedup: stats(rawSpeedup),
  simulatorCpuUsPerCallZeroCostSequential: stats(seqRawSimCpu),
  simulatorCpuUsPerCallZeroCostInFlight: stats(parRawSimCpu),
  suiteMs: stats(suiteMs),
  suiteSimulatorOnMainThreadMs: stats(suiteMainMs),
  suiteMainThreadVsWorker: stats(workerGain),
  suiteVsNodeStart: stats(suiteRatios),
};
const goals = {
  sequential: figures.getRecordSequentialMs.median < 1000,
  inFlight: figures.inFlightSpeedup.median >= 3,
  suite: figures.suiteMs.median < 5000,
};

console.log("virtkit XenAPI driver against the XAPI simulator (a simulator, not a XenServer host)");
console.log(`node ${process.version}, ${cpus().length} cpus, load ${loadavg().map((l) => l.toFixed(1)).join(" ")}; ${ROUNDS} alternating rounds (suite: ${SUITE_ROUNDS})`);
const row = (what, s, unit, how, goal, met) =>
  console.log(`${what.padEnd(58)} ${`${s.median}${unit} (${s.min}-${s.max})`.padStart(26)}  ${how}  goal ${goal}${met === undefined ? "" : met ? " met" : " MISSED"}`);
row(`${CALLS} VM.get_record, sequential, through XapiClient`, figures.getRecordSequentialMs, " ms", "", "< 1000 ms", goals.sequential);
row(`  the same from a bare node:http keep-alive loop (anchor)`, figures.bareHttpSequentialMs, " ms", "", "-", undefined);
row(`  XapiClient / bare loop`, figures.clientVsBareRatio, "x", "", "-", undefined);
row(`${CALLS} VM.get_record, ${IN_FLIGHT} in flight`, figures.getRecordInFlightMs, " ms", "", "-", undefined);
row(`  rate with ${IN_FLIGHT} in flight / sequential rate`, figures.inFlightSpeedup, "x", "", ">= 3x", goals.inFlight);
row(`  CPU per call, sequential: client / simulator`, figures.clientCpuUsPerCallSequential, " us", `/ ${figures.simulatorCpuUsPerCallSequential.median} us`, "-", undefined);
row(`  CPU per call, ${IN_FLIGHT} in flight: client / simulator`, figures.clientCpuUsPerCallInFlight, " us", `/ ${figures.simulatorCpuUsPerCallInFlight.median} us`, "-", undefined);
row(`  ceiling of that ratio on two idle cores (one core)`, figures.inFlightCeilingTwoIdleCores, "x", `(${figures.inFlightCeilingOneCore.median}x)`, "-", undefined);
row(`  zero-cost client (raw sockets, bytes built once): sequential`, figures.zeroCostClientSequentialMs, " ms", `/ ${IN_FLIGHT} in flight ${figures.zeroCostClientInFlightMs.median} ms`, "-", undefined);
row(`  its rate with ${IN_FLIGHT} in flight / sequential (simulator-bound)`, figures.zeroCostClientInFlightSpeedup, "x", `sim CPU/call ${figures.simulatorCpuUsPerCallZeroCostSequential.median} / ${figures.simulatorCpuUsPerCallZeroCostInFlight.median} us`, "-", undefined);
row(`whole suite vs the simulator (its worker thread), parallel ${SUITE_PARALLEL}`, figures.suiteMs, " ms", `(${lastSummary?.pass}/${lastSummary?.total} pass)`, "< 5000 ms", goals.suite);
row(`  the same, the simulator on the kit's thread`, figures.suiteSimulatorOnMainThreadMs, " ms", "", "-", undefined);
row(`  simulator on the kit's thread / in its worker`, figures.suiteMainThreadVsWorker, "x", "", "-", undefined);
row(`  suite / a bare \`node -e 0\` start`, figures.suiteVsNodeStart, "x", "", "-", undefined);
console.log(Object.values(goals).every(Boolean) ? "targets met" : "TARGET MISSED (see above; on a busy machine rerun before comparing)");
console.log(
  `BENCH_JSON ${JSON.stringify({
    bench: "driver-xenapi",
    simulator: true,
    rounds: ROUNDS,
    suiteRounds: SUITE_ROUNDS,
    calls: CALLS,
    inFlight: IN_FLIGHT,
    suiteParallel: SUITE_PARALLEL,
    node: process.version,
    cpus: cpus().length,
    load: loadavg(),
    figures,
    goals,
    suiteSummary: lastSummary,
  })}`,
);
