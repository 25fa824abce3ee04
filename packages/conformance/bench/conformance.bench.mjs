// Figures of the conformance kit: the whole suite against the fake driver (direct runner and
// through vitest's Node API), and the catch rate over the deliberately broken variants.
// Run after `pnpm build`: `pnpm --filter @virtkit/conformance bench`.
/* global process, console, performance */
import { resolveDriver, runConformance, runWithVitest } from "../dist/index.js";
import { BROKEN_VARIANTS, measureCatchRate } from "../dist/testing/index.js";

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const N = Number(process.env.BENCH_RUNS ?? 5);

const fake = await resolveDriver("fake", []);
const direct = [];
let last;
for (let i = 0; i < N; i++) {
  const t0 = performance.now();
  last = await runConformance({ driver: fake.descriptor, environment: fake.environment, service: fake.service, parallel: 4 });
  direct.push(performance.now() - t0);
}
console.log(
  `suite vs fake, direct runner (parallel 4): median ${median(direct).toFixed(0)} ms over ${N} runs ` +
    `(${last.summary.pass}/${last.summary.total} pass)`,
);

const viaVitest = [];
for (let i = 0; i < Math.min(N, 3); i++) {
  const t0 = performance.now();
  last = await runWithVitest({
    settings: { spec: "fake", options: [], level: "MUST", focus: [], skip: [], scenarioTimeoutMs: 10_000, parallel: 4 },
    driver: fake.descriptor,
  });
  viaVitest.push(performance.now() - t0);
}
console.log(
  `suite vs fake, vitest Node API (createVitest + one forked worker, parallel 4): median ${median(viaVitest).toFixed(0)} ms ` +
    `over ${viaVitest.length} runs (${last.summary.pass}/${last.summary.total} pass)`,
);

const rate = await measureCatchRate();
console.log(`catch rate: ${rate.caught}/${rate.total} broken variants caught (${BROKEN_VARIANTS.length} shipped) in ${rate.durationMs} ms`);
for (const v of rate.verdicts) if (!v.caught) console.log(`  MISSED ${v.name}: ${v.defect}`);
const ok = median(direct) < 3000 && median(viaVitest) < 3000 && rate.caught === rate.total;
console.log(ok ? "targets met (< 3 s, every variant caught)" : "TARGET MISSED");
