// Figures of the nested-QEMU environment (issue 9), printed, with a `BENCH_JSON {...}` last line:
//   1. image build from nothing (every layer rebuilt, `ensureImage({ force: true })`): goal < 4 min;
//      skipped with BENCH_NESTED_SKIP_BUILD=1 (it replaces the cached image: the same inputs, new ids);
//   2. image with the cache (every layer found by its input-derived tag), BENCH_ROUNDS rounds: goal < 5 s;
//   3. guest start to the agent's first answer through the driver vs a bare `qemu-system-x86_64`
//      boot of the same kernel and initramfs in the same container, alternating rounds (bare first
//      in odd rounds) after one untimed warm-up of each, BENCH_ROUNDS (default 5) rounds: goal ratio of
//      medians <= 1.5;
//   4. the whole conformance suite in the nested-qemu environment (parallel 2): goal < 4 min.
// Needs a Docker engine (bash scripts/docker.sh start; DOCKER_HOST). Run:
//   pnpm --filter @virtkit/driver-libvirt... build && node packages/driver-libvirt/bench/nested-qemu.bench.mjs
/* global process, console, performance */

import { randomUUID } from "node:crypto";
import { loadavg } from "node:os";
import { computeServiceFactory, runConformance } from "@virtkit/conformance";
import { validatePluginOptions } from "@virtkit/core";
import * as nested from "@virtkit/nested-qemu";
import {
  bareQemuBoot,
  configureTestcontainers,
  engineAnswers,
  ensureImage,
  startNestedHosts,
  waitForAgent,
} from "@virtkit/nested-qemu";
import { LibvirtDriver, plugin } from "../dist/index.js";
import {
  NESTED_DRIVER_DEFAULTS,
  NESTED_GUEST_CPU,
  nestedGuestImage,
  nestedQemuEnvironment,
} from "../dist/nested-qemu-environment.js";

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const GOALS = { buildFromNothingMs: 240_000, cachedMs: 5_000, bootRatio: 1.5, suiteMs: 240_000 };
const secs = (ms) => `${(ms / 1000).toFixed(2)} s`;
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length / 2;
  return Number.isInteger(m) ? (s[m - 1] + s[m]) / 2 : s[Math.floor(m)];
};
const spread = (xs) => ({ min: Math.min(...xs), max: Math.max(...xs) });
const loadStart = loadavg()[0];

const at = configureTestcontainers();
if (!(await engineAnswers())) {
  console.error(`nested-qemu bench: no Docker engine answers at ${at} (bash scripts/docker.sh start)`);
  process.exit(2);
}
const results = {};

// 1. From nothing.
if (process.env.BENCH_NESTED_SKIP_BUILD !== "1") {
  const t = performance.now();
  const image = await ensureImage({
    force: true,
    onProgress: (p) => {
      if (p.phase === "done") console.log(`  built ${p.layer}: ${p.message}`);
    },
  });
  const ms = performance.now() - t;
  results.buildFromNothingMs = Math.round(ms);
  console.log(`image from nothing: ${secs(ms)} (${image.image}; goal < ${secs(GOALS.buildFromNothingMs)})`);
}

// 2. With the cache.
const cached = [];
let image;
for (let i = 0; i < Math.max(ROUNDS, 3); i++) {
  const t = performance.now();
  image = await ensureImage({});
  cached.push(performance.now() - t);
  if (image.layers.some((l) => l.built)) console.log("  (a layer was built: not a cache hit)");
}
results.cachedMs = { median: Math.round(median(cached)), ...spread(cached.map(Math.round)), rounds: cached.length };
console.log(
  `image with the cache: median ${secs(median(cached))} (${cached.map(secs).join(", ")}; goal < ${secs(GOALS.cachedMs)})`,
);

// 3. Boot: bare QEMU vs the driver, alternating, on the same host container.
const hosts = await startNestedHosts({ image: image.image, count: 1, timeoutMs: 180_000 });
const bare = [];
const driven = [];
try {
  const host = hosts.hosts[0];
  // The options the nested environment gives its drivers (the same guest CPU as the bare boot).
  const driver = new LibvirtDriver({ ...NESTED_DRIVER_DEFAULTS, ...NESTED_GUEST_CPU, uri: host.uri, virtType: "qemu" });
  await driver.initHost(host.address);
  const viaDriver = async () => {
    const uuid = randomUUID();
    const instance = {
      uuid,
      name: `bench-${uuid.slice(0, 8)}`,
      projectId: "bench",
      userId: "bench",
      flavor: { name: "m1.nano", memoryMb: 256, vcpus: 1, rootGb: 1 },
      imageMeta: nestedGuestImage(nested),
    };
    const t0 = Date.now();
    await driver.spawn({ instance }, { timeoutMs: 120_000 });
    const answer = await waitForAgent(host, uuid, { timeoutMs: 120_000 });
    driven.push(answer.answeredAtMs - t0);
    await driver.destroy(instance, { destroyDisks: true, timeoutMs: 60_000 });
  };
  const viaBare = async () => bare.push((await bareQemuBoot(host, { memoryMb: 256, timeoutMs: 120_000 })).agentMs);
  // One untimed start of each first: the host's first domain pays libvirt's one-time probe of QEMU's
  // capabilities (about 0.7 s) and the pool's creation, the first bare boot a cold page cache; a
  // guest start is what the figure compares, not a fresh daemon's warm-up.
  await viaBare();
  await viaDriver();
  console.log(`  warm-up (not counted): bare ${secs(bare.pop())}, driver ${secs(driven.pop())}`);
  for (let round = 1; round <= ROUNDS; round++) {
    if (round % 2 === 1) {
      await viaBare();
      await viaDriver();
    } else {
      await viaDriver();
      await viaBare();
    }
    console.log(`  round ${round}: bare ${secs(bare.at(-1))}, driver ${secs(driven.at(-1))}`);
  }
  await driver.cleanupHost(host.address, { timeoutMs: 30_000 }).catch(() => undefined);
} finally {
  await hosts.stop({ timeoutMs: 60_000 });
}
const ratio = median(driven) / median(bare);
results.boot = {
  bareMs: { median: median(bare), ...spread(bare) },
  driverMs: { median: median(driven), ...spread(driven) },
  ratio: Math.round(ratio * 100) / 100,
  rounds: ROUNDS,
};
console.log(
  `guest start to agent: driver ${secs(median(driven))} vs bare QEMU ${secs(median(bare))}: ratio ${ratio.toFixed(2)} (goal <= ${GOALS.bootRatio})`,
);

// 4. The whole suite (BENCH_NESTED_SKIP_SUITE=1 leaves it out).
let suiteMs;
if (process.env.BENCH_NESTED_SKIP_SUITE !== "1") {
  const envDef = nestedQemuEnvironment((raw) => validatePluginOptions(plugin, raw));
  const factory = await envDef.conformanceEnvironment({}, process.env);
  const t = performance.now();
  let report;
  try {
    report = await runConformance({
      driver: { name: "libvirt-nested-qemu", version: plugin.version, environment: "nested-qemu" },
      environment: factory,
      service: computeServiceFactory(),
      scenarioTimeoutMs: 180_000,
      parallel: 2,
    });
  } finally {
    await factory.dispose?.();
  }
  suiteMs = performance.now() - t;
  const s = report.summary;
  results.suite = {
    ms: Math.round(suiteMs),
    pass: s.pass,
    fail: s.fail,
    unsupported: s.unsupported,
    skipped: s.skipped,
  };
  console.log(
    `whole nested suite: ${secs(suiteMs)} (${s.pass} pass, ${s.fail} fail, ${s.unsupported} unsupported, ${s.skipped} skipped; goal < ${secs(GOALS.suiteMs)})`,
  );
}

const pass = {
  buildFromNothing:
    results.buildFromNothingMs === undefined ? null : results.buildFromNothingMs < GOALS.buildFromNothingMs,
  cached: results.cachedMs.median < GOALS.cachedMs,
  boot: ratio <= GOALS.bootRatio,
  suite: results.suite === undefined ? null : results.suite.ms < GOALS.suiteMs && results.suite.fail === 0,
};
console.log(
  "BENCH_JSON " +
    JSON.stringify({
      bench: "nested-qemu",
      goals: GOALS,
      pass,
      results,
      loadAverage: { start: loadStart, end: loadavg()[0] },
    }),
);
