// Figures of the CLI as real process spawns: `virtkit --help`, `conformance list`, a whole
// `conformance run --driver fake` through each runner and a whole `--driver xenapi` run (against
// the XAPI simulator). Absolute milliseconds depend on the machine and its load, so every subject
// is anchored: each round spawns a bare `node -e 0` and then the subject, alternating (anchor,
// subject, anchor, subject, ...), and the figure is the median of the per-round ratios
// subject / anchor, with their spread (min–max). Both feel the same
// load at the same moment, so the ratio stays put where the milliseconds do not.
// Run after `pnpm build`. BENCH_ROUNDS (default 11) sets the rounds; the last line is
// `BENCH_JSON {...}` with every figure.
/* global process, console, performance */
import { spawnSync } from "node:child_process";
import { cpus } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const bin = join(dirname(fileURLToPath(import.meta.url)), "..", "bin", "run.js");
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 11);
if (!Number.isInteger(ROUNDS) || ROUNDS < 1) throw new Error(`BENCH_ROUNDS must be a positive integer, got ${process.env.BENCH_ROUNDS}`);

/** A process to time: argv after `node`, and a label for the table. */
const ANCHOR = { name: "node -e 0", argv: ["-e", "0"] };
const SUBJECTS = [
  { name: "virtkit --help", argv: [bin, "--help"], targetMs: 400 },
  { name: "virtkit conformance list --json", argv: [bin, "conformance", "list", "--json"] },
  // The defaults as a user gets them: the vitest runner, and the fake's own 12 at once.
  { name: "virtkit conformance run --driver fake (the defaults: vitest runner, 12 at once)", argv: [bin, "conformance", "run", "--driver", "fake", "--json"], targetMs: 3000 },
  { name: "virtkit conformance run --driver fake --parallel 4 (vitest runner)", argv: [bin, "conformance", "run", "--driver", "fake", "--parallel", "4", "--json"] },
  { name: "virtkit conformance run --driver fake --runner direct", argv: [bin, "conformance", "run", "--driver", "fake", "--runner", "direct", "--json"], targetMs: 3000 },
  // The XenAPI suite as a user runs it (issue 10's "under 5 s"): against the embedded XAPI
  // simulator, not a XenServer host; the simulator's own 16 at once.
  {
    name: "virtkit conformance run --driver xenapi (the defaults: vitest runner, 16 at once; the XAPI simulator, not a XenServer host)",
    argv: [bin, "conformance", "run", "--driver", "xenapi", "--json"],
    targetMs: 5000,
  },
];

/** Wall time of one spawn in ms; a failing subject stops the bench (a figure of an error is no figure). */
function spawnMs({ name, argv }) {
  const t0 = performance.now();
  const r = spawnSync(process.execPath, argv, { encoding: "utf8", maxBuffer: 64 * 1024 * 1024 });
  const ms = performance.now() - t0;
  if (r.status !== 0) throw new Error(`${name} exited ${r.status}: ${r.stderr}`);
  return ms;
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const stats = (xs) => ({ median: median(xs), min: Math.min(...xs), max: Math.max(...xs) });

// One unmeasured round warms the file cache for every process alike.
spawnMs(ANCHOR);
for (const s of SUBJECTS) spawnMs(s);

const anchorMs = new Map(SUBJECTS.map((s) => [s.name, []]));
const subjectMs = new Map(SUBJECTS.map((s) => [s.name, []]));
for (let round = 0; round < ROUNDS; round++) {
  // Subjects take turns inside a round, so slow drift in load hits each of them alike.
  for (const s of SUBJECTS) {
    anchorMs.get(s.name).push(spawnMs(ANCHOR));
    subjectMs.get(s.name).push(spawnMs(s));
  }
}

const figures = SUBJECTS.map((s) => {
  const a = anchorMs.get(s.name);
  const t = subjectMs.get(s.name);
  const ratio = stats(t.map((ms, i) => ms / a[i]));
  const ms = stats(t);
  return {
    name: s.name,
    command: ["node", ...s.argv.map((x) => (x === bin ? "packages/cli/bin/run.js" : x))].join(" "),
    rounds: t.length,
    ratio: { median: round2(ratio.median), min: round2(ratio.min), max: round2(ratio.max) },
    medianMs: Math.round(ms.median),
    minMs: Math.round(ms.min),
    maxMs: Math.round(ms.max),
    anchorMedianMs: Math.round(median(a)),
    ...(s.targetMs !== undefined ? { targetMs: s.targetMs, targetMet: ms.median < s.targetMs } : {}),
  };
});
const allAnchors = [...anchorMs.values()].flat();
const anchor = { name: ANCHOR.name, samples: allAnchors.length, medianMs: round1(median(allAnchors)), minMs: round1(Math.min(...allAnchors)), maxMs: round1(Math.max(...allAnchors)) };

function round1(x) {
  return Math.round(x * 10) / 10;
}
function round2(x) {
  return Math.round(x * 100) / 100;
}

const rows = [
  ["subject", "x node -e 0 (median)", "spread (min-max)", "median ms", "anchor median ms"],
  ...figures.map((f) => [f.name, `${f.ratio.median.toFixed(2)}x`, `${f.ratio.min.toFixed(2)}-${f.ratio.max.toFixed(2)}x`, String(f.medianMs), String(f.anchorMedianMs)]),
];
const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
const fmt = (r) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join("  ");
console.log(`virtkit CLI, ${ROUNDS} alternating rounds (anchor: ${ANCHOR.name}, median ${anchor.medianMs} ms), node ${process.version}, ${cpus().length} cpus`);
console.log(fmt(rows[0]));
console.log(widths.map((w) => "-".repeat(w)).join("  "));
for (const r of rows.slice(1)) console.log(fmt(r));
const missed = figures.filter((f) => f.targetMet === false);
console.log(missed.length === 0 ? "targets met (--help < 400 ms, suite < 3 s; absolute medians)" : `TARGET MISSED: ${missed.map((f) => `${f.name} ${f.medianMs} ms >= ${f.targetMs} ms`).join("; ")}`);
console.log(`BENCH_JSON ${JSON.stringify({ bench: "cli", rounds: ROUNDS, node: process.version, cpus: cpus().length, anchor, subjects: figures })}`);
