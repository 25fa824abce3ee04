// Spawns, inspects and destroys 10,000 fake instances and prints the wall time and per-op rates.
// Target: under 1 s in total on a 2-core machine. Run after `pnpm build`.
/* global process, console, performance */
import { randomUUID } from "node:crypto";
import { InMemoryImageService } from "@virtkit/core";
import { FakeDriver } from "../dist/index.js";

const N = Number(process.env.FAKE_BENCH_N ?? 10_000);

function instances(n) {
  const out = new Array(n);
  for (let i = 0; i < n; i++) {
    out[i] = {
      uuid: randomUUID(),
      name: `bench-${i}`,
      projectId: "bench",
      flavor: { name: "m1.tiny", memoryMb: 64, vcpus: 1, rootGb: 1 },
      imageMeta: { diskFormat: "qcow2", properties: { hw_qemu_guest_agent: true } },
    };
  }
  return out;
}

async function round(n) {
  const driver = new FakeDriver({ host: "bench", imageService: new InMemoryImageService(), memoryMb: 1 << 30 });
  const list = instances(n);
  const t0 = performance.now();
  for (const instance of list) await driver.spawn({ instance });
  const t1 = performance.now();
  for (const instance of list) await driver.getInfo(instance);
  const t2 = performance.now();
  for (const instance of list) await driver.destroy(instance);
  const t3 = performance.now();
  if ((await driver.listInstances()).length !== 0) throw new Error("instances leaked");
  return { spawn: t1 - t0, getInfo: t2 - t1, destroy: t3 - t2, total: t3 - t0 };
}

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 7);
await round(1_000); // warm-up (JIT)
const results = [];
for (let k = 0; k < ROUNDS; k++) results.push(await round(N));
const med = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const fig = (key) => {
  const xs = results.map((r) => r[key]);
  return { median: med(xs), min: Math.min(...xs), max: Math.max(...xs) };
};
const rate = (ms) => `${Math.round((N / ms) * 1000).toLocaleString("en-US")}/s`;
console.log(`fake driver: ${N} x (spawn + getInfo + destroy), ${ROUNDS} rounds (median, min-max)`);
const figures = {};
for (const key of ["spawn", "getInfo", "destroy", "total"]) {
  const f = (figures[key] = fig(key));
  console.log(
    `  ${key.padEnd(8)} ${f.median.toFixed(1).padStart(8)} ms  (${f.min.toFixed(1)}-${f.max.toFixed(1)})  ${rate(f.median)}`,
  );
}
console.log(`  target: total < 1000 ms: ${figures.total.median < 1000 ? "OK" : "MISSED"}`);
console.log(`BENCH_JSON ${JSON.stringify({ bench: "driver-fake", n: N, rounds: ROUNDS, figuresMs: figures, targetMs: 1000 })}`);
