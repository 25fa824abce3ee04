// How fast the simulator answers: VM.get_record over loopback JSON-RPC, sequential and 64 in
// flight. The simulator runs out of process (its bin), as a driver's benchmark would use it, next
// to an anchor measured in the same run: a bare node:http server in its own process answering a
// fixed JSON body. Alternating rounds; prints median and spread. Run after `pnpm build`.
/* global process, console, Buffer, URL */
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import http from "node:http";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 7);
const CALLS = 1000;
const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });

function post(port, host, path, body) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host, port, path, method: "POST", agent, headers: { "content-type": "application/json", "content-length": Buffer.byteLength(body) } }, (res) => {
      const chunks = [];
      res.on("data", (c) => chunks.push(c));
      res.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    });
    req.on("error", reject);
    req.end(body);
  });
}

async function timed(fn, inFlight) {
  const t0 = process.hrtime.bigint();
  let next = 0;
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (next < CALLS) {
        next++;
        await fn();
      }
    }),
  );
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

const stats = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return { median: s[Math.floor(s.length / 2)], min: s[0], max: s[s.length - 1] };
};

/** Start a child process and read its first stdout line. */
function child(args, env) {
  const p = spawn(process.execPath, args, { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "inherit"] });
  return new Promise((resolve, reject) => {
    p.on("error", reject);
    createInterface({ input: p.stdout }).once("line", (line) => resolve({ p, line }));
  });
}

const ANCHOR = `
const http = require("node:http");
const body = JSON.stringify({ jsonrpc: "2.0", result: { name_label: "x".repeat(2000) }, id: 1 });
const srv = http.createServer({ keepAlive: true }, (req, res) => { req.resume(); req.on("end", () => res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(body) }).end(body)); });
srv.listen(0, "127.0.0.1", () => console.log(srv.address().port));
`;

const anchor = await child(["-e", ANCHOR], {});
const anchorPort = Number(anchor.line);
const password = randomBytes(18).toString("base64url");
const sim = await child([fileURLToPath(new URL("../bin/xapi-simulator.js", import.meta.url))], {
  VIRTKIT_XAPI_SIM_JSON: "1",
  VIRTKIT_XAPI_SIM_QUIET: "1",
  VIRTKIT_XAPI_SIM_PASSWORD: password,
});
const info = JSON.parse(sim.line);
const u = new URL(info.url);
const call = async (method, params) => JSON.parse(await post(u.port, u.hostname, "/jsonrpc", JSON.stringify({ jsonrpc: "2.0", method, params, id: 1 }))).result;
const session = await call("session.login_with_password", [info.username, password, "2.21", "bench"]);
const [vm] = await call("VM.get_all", [session]);
const getRecord = JSON.stringify({ jsonrpc: "2.0", method: "VM.get_record", params: [session, vm], id: 1 });

const results = { anchorSeq: [], simSeq: [], anchor64: [], sim64: [] };
// Warm both up (the JIT and 64 open sockets each), then alternate so machine load hits both alike.
for (let w = 0; w < 3; w++) {
  for (const inFlight of [1, 64]) {
    await timed(() => post(anchorPort, "127.0.0.1", "/", "{}"), inFlight);
    await timed(() => post(u.port, u.hostname, "/jsonrpc", getRecord), inFlight);
  }
}
for (let r = 0; r < ROUNDS; r++) {
  results.anchorSeq.push(await timed(() => post(anchorPort, "127.0.0.1", "/", "{}"), 1));
  results.simSeq.push(await timed(() => post(u.port, u.hostname, "/jsonrpc", getRecord), 1));
  results.anchor64.push(await timed(() => post(anchorPort, "127.0.0.1", "/", "{}"), 64));
  results.sim64.push(await timed(() => post(u.port, u.hostname, "/jsonrpc", getRecord), 64));
}
const fmt = (name, xs, anchorXs) => {
  const s = stats(xs);
  const a = stats(anchorXs);
  console.log(`${name.padEnd(40)} median ${s.median.toFixed(0).padStart(5)} ms  (min ${s.min.toFixed(0)}, max ${s.max.toFixed(0)})  ${(s.median / a.median).toFixed(2)}x anchor`);
};
console.log(`xapi-simulator (a simulator, not XAPI): ${CALLS} calls per round, ${ROUNDS} rounds, server out of process`);
fmt("anchor: bare node:http, sequential", results.anchorSeq, results.anchorSeq);
fmt("VM.get_record, sequential", results.simSeq, results.anchorSeq);
fmt("anchor: bare node:http, 64 in flight", results.anchor64, results.anchor64);
fmt("VM.get_record, 64 in flight", results.sim64, results.anchor64);
const seq = stats(results.simSeq).median;
const par = stats(results.sim64).median;
console.log(`VM.get_record: 64 in flight is ${(seq / par).toFixed(2)}x the sequential rate`);
await call("session.logout", [session]);
agent.destroy();
anchor.p.kill();
sim.p.kill();
