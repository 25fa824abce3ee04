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

await round(1_000); // warm-up (JIT)
const r = await round(N);
const rate = (ms) => `${Math.round((N / ms) * 1000).toLocaleString("en-US")}/s`;
console.log(`fake driver: ${N} x (spawn + getInfo + destroy)`);
console.log(`  spawn    ${r.spawn.toFixed(1).padStart(8)} ms  ${rate(r.spawn)}`);
console.log(`  getInfo  ${r.getInfo.toFixed(1).padStart(8)} ms  ${rate(r.getInfo)}`);
console.log(`  destroy  ${r.destroy.toFixed(1).padStart(8)} ms  ${rate(r.destroy)}`);
console.log(`  total    ${r.total.toFixed(1).padStart(8)} ms  (target < 1000 ms) ${r.total < 1000 ? "OK" : "MISSED"}`);
