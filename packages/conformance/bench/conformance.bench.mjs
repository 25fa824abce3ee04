// Figures of the conformance kit: the whole suite against the fake driver in this process (direct
// runner, and through vitest's Node API), and the catch rate over the deliberately broken variants.
// Milliseconds depend on the machine and its load, so every timing is anchored: each round spawns
// a bare `node -e 0` and then runs the subject, alternating (anchor, subject, anchor, subject,
// ...), and the figure is the median of the per-round ratios subject / anchor with their spread
// (min–max), next to the absolute medians. Run after `pnpm build`:
// `pnpm --filter @virtkit/conformance bench`. BENCH_ROUNDS (default 11) sets the rounds; the last
// line is `BENCH_JSON {...}` with every figure. The package script turns off two Node warnings
// that only the deliberately broken variants cause (a leaked abort listener, an Infinity timer),
// a screenful of them otherwise.
/* global process, console, performance */
import { spawnSync } from "node:child_process";
import { cpus } from "node:os";
import { resolveDriver, runConformance, runWithVitest } from "../dist/index.js";
import { BROKEN_VARIANTS, DEPTH_VARIANTS, GAP_VARIANTS, measureCatchRate } from "../dist/testing/index.js";

// Every broken variant the kit ships: the first set and the deeper one.
const VARIANTS = [...BROKEN_VARIANTS, ...DEPTH_VARIANTS, ...GAP_VARIANTS];

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 11);
if (!Number.isInteger(ROUNDS) || ROUNDS < 1) throw new Error(`BENCH_ROUNDS must be a positive integer, got ${process.env.BENCH_ROUNDS}`);
const ANCHOR = "node -e 0";

function anchorMs() {
  const t0 = performance.now();
  const r = spawnSync(process.execPath, ["-e", "0"]);
  const ms = performance.now() - t0;
  if (r.status !== 0) throw new Error(`${ANCHOR} exited ${r.status}`);
  return ms;
}

const fake = await resolveDriver("fake", []);
const SUBJECTS = [
  {
    name: "suite vs fake, direct runner, in-process (parallel 4)",
    run: () => runConformance({ driver: fake.descriptor, environment: fake.environment, service: fake.service, parallel: 4 }),
    targetMs: 3000,
  },
  {
    name: "suite vs fake, vitest Node API, in-process (createVitest + one forked worker, parallel 4)",
    run: () =>
      runWithVitest({
        settings: { spec: "fake", options: [], level: "MUST", focus: [], skip: [], scenarioTimeoutMs: 10_000, parallel: 4 },
        driver: fake.descriptor,
      }),
    targetMs: 3000,
  },
];

/** Wall time of one run in ms; a run that does not pass every scenario is no figure. */
async function subjectMs(s) {
  const t0 = performance.now();
  const report = await s.run();
  const ms = performance.now() - t0;
  const bad = report.results.filter((r) => r.status !== "pass");
  if (bad.length > 0) throw new Error(`${s.name}: ${report.summary.pass}/${report.summary.total} pass; ${bad.map((r) => r.id).join(", ")}`);
  return ms;
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const round1 = (x) => Math.round(x * 10) / 10;
const round2 = (x) => Math.round(x * 100) / 100;

// One unmeasured round: module loading and vite's first start are not what is measured.
anchorMs();
for (const s of SUBJECTS) await subjectMs(s);

const anchors = new Map(SUBJECTS.map((s) => [s.name, []]));
const times = new Map(SUBJECTS.map((s) => [s.name, []]));
for (let round = 0; round < ROUNDS; round++) {
  for (const s of SUBJECTS) {
    anchors.get(s.name).push(anchorMs());
    times.get(s.name).push(await subjectMs(s));
  }
}

const figures = SUBJECTS.map((s) => {
  const a = anchors.get(s.name);
  const t = times.get(s.name);
  const ratios = t.map((ms, i) => ms / a[i]);
  const med = median(t);
  return {
    name: s.name,
    rounds: t.length,
    ratio: { median: round2(median(ratios)), min: round2(Math.min(...ratios)), max: round2(Math.max(...ratios)) },
    medianMs: Math.round(med),
    minMs: Math.round(Math.min(...t)),
    maxMs: Math.round(Math.max(...t)),
    anchorMedianMs: Math.round(median(a)),
    targetMs: s.targetMs,
    targetMet: med < s.targetMs,
  };
});
const allAnchors = [...anchors.values()].flat();
const anchor = { name: ANCHOR, samples: allAnchors.length, medianMs: round1(median(allAnchors)), minMs: round1(Math.min(...allAnchors)), maxMs: round1(Math.max(...allAnchors)) };

// The catch rate is a count, not a timing: one run; its duration is shown but not a figure.
const rate = await measureCatchRate(VARIANTS);

const rows = [
  ["subject", "x node -e 0 (median)", "spread (min-max)", "median ms", "anchor median ms"],
  ...figures.map((f) => [f.name, `${f.ratio.median.toFixed(2)}x`, `${f.ratio.min.toFixed(2)}-${f.ratio.max.toFixed(2)}x`, String(f.medianMs), String(f.anchorMedianMs)]),
];
const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
const fmt = (r) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join("  ");
console.log(`virtkit conformance kit, ${ROUNDS} alternating rounds (anchor: ${ANCHOR}, median ${anchor.medianMs} ms), node ${process.version}, ${cpus().length} cpus`);
console.log(fmt(rows[0]));
console.log(widths.map((w) => "-".repeat(w)).join("  "));
for (const r of rows.slice(1)) console.log(fmt(r));
console.log(`catch rate: ${rate.caught}/${rate.total} broken variants caught (${VARIANTS.length} shipped), one run of ${rate.durationMs} ms`);
for (const [cls, n] of Object.entries(rate.byClass)) console.log(`  ${cls}: ${n.caught}/${n.total}`);
for (const v of rate.verdicts) if (!v.caught) console.log(`  MISSED ${v.name}: ${v.defect}`);
const ok = figures.every((f) => f.targetMet) && rate.caught === rate.total;
console.log(ok ? "targets met (< 3 s absolute median, every variant caught)" : "TARGET MISSED");
console.log(
  `BENCH_JSON ${JSON.stringify({
    bench: "conformance",
    rounds: ROUNDS,
    node: process.version,
    cpus: cpus().length,
    anchor,
    subjects: figures,
    catchRate: { caught: rate.caught, total: rate.total, shipped: VARIANTS.length, durationMs: rate.durationMs, byClass: rate.byClass, missed: rate.verdicts.filter((v) => !v.caught).map((v) => v.name) },
  })}`,
);
// Done: the broken variants leave what they leak by design (a deadline timer armed for an hour), which
// must not hold the bench, and the next one, for that long.
process.exit(0);
