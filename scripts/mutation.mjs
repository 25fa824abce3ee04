#!/usr/bin/env node
/**
 * `pnpm mutation`: StrykerJS over the fake driver's behavioural code, killed by the conformance
 * suite (stryker.config.mjs, mutation/). Prints the mutation score and every surviving mutant as
 * `file:line  mutator  original -> replacement`.
 *
 *   pnpm mutation -- --concurrency 2 --force      # the measured scope (stryker.config.mjs), every mutant
 *   pnpm mutation -- --mutate packages/driver-fake/src/transitions.ts   # a subset
 *   pnpm mutation -- --report-only                # print the last report again, run nothing
 *   pnpm mutation -- --from-events                # a run cut short: what its mutants did so far
 *   VIRTKIT_MUTATION_SKIP='^deadlines\.' pnpm mutation   # leave scenarios out (printed)
 *
 * Extra arguments go to `stryker run` (e.g. `--concurrency 2`). Exit 0 when the score meets the
 * 85 % goal, 1 when it does not, 2 when Stryker itself failed.
 */
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = resolve(fileURLToPath(new URL("..", import.meta.url)));
const REPORT = resolve(ROOT, "reports/mutation/mutation.json");
const EVENTS = resolve(ROOT, "reports/mutation/events");
const GOAL = 85;

const args = process.argv.slice(2).filter((a) => a !== "--");
const fromEvents = args.includes("--from-events");
const reportOnly = args.includes("--report-only") || fromEvents;
const strykerArgs = args.filter((a) => a !== "--report-only" && a !== "--from-events");

if (!reportOnly) {
  if (process.env.VIRTKIT_MUTATION_SKIP) console.log(`scenarios left out: ${process.env.VIRTKIT_MUTATION_SKIP}`);
  const bin = resolve(ROOT, "node_modules/.bin/stryker");
  const run = spawnSync(bin, ["run", "stryker.config.mjs", ...strykerArgs], { cwd: ROOT, stdio: "inherit" });
  if (run.status !== 0) {
    console.error(`stryker exited with ${run.status ?? run.signal}`);
    process.exit(2);
  }
}
/** The report of a run cut short, from the event recorder's files: one file per tested mutant. */
function reportFromEvents() {
  const files = {};
  const names = existsSync(EVENTS) ? readdirSync(EVENTS).filter((f) => f.endsWith("-onMutantTested.json")) : [];
  for (const name of names) {
    const m = JSON.parse(readFileSync(resolve(EVENTS, name), "utf8"));
    const file = (files[m.fileName] ??= { source: readFileSync(m.fileName, "utf8"), mutants: [] });
    file.mutants.push(m);
  }
  console.log(`(from ${names.length} mutant results recorded so far in ${relative(ROOT, EVENTS)})`);
  return { files };
}

if (!fromEvents && !existsSync(REPORT)) {
  console.error(`no report at ${relative(ROOT, REPORT)}: run without --report-only first`);
  process.exit(2);
}

const report = fromEvents ? reportFromEvents() : JSON.parse(readFileSync(REPORT, "utf8"));
const DETECTED = new Set(["Killed", "Timeout"]);
const UNDETECTED = new Set(["Survived", "NoCoverage"]);
let detected = 0;
let undetected = 0;
const survivors = [];
// Mutants a `// Stryker disable ...: <reason>` comment excludes (Stryker's "Ignored"): printed with
// their reason, and a second score counts them as survivors, so the exclusion is never silent.
const ignored = [];
const byFile = [];
for (const [file, entry] of Object.entries(report.files)) {
  const lines = entry.source.split("\n");
  let fileDetected = 0;
  let fileUndetected = 0;
  for (const m of entry.mutants) {
    if (DETECTED.has(m.status)) fileDetected++;
    else if (UNDETECTED.has(m.status)) {
      fileUndetected++;
      const { start, end } = m.location;
      const original =
        start.line === end.line
          ? lines[start.line - 1].slice(start.column - 1, end.column - 1)
          : `${lines[start.line - 1].slice(start.column - 1)} ...`;
      survivors.push({ where: `${relative(ROOT, resolve(ROOT, file))}:${start.line}`, m, original });
    } else if (m.status === "Ignored") {
      ignored.push({ where: `${relative(ROOT, resolve(ROOT, file))}:${m.location.start.line}`, reason: m.statusReason ?? "" });
    }
  }
  detected += fileDetected;
  undetected += fileUndetected;
  byFile.push([relative(ROOT, resolve(ROOT, file)), fileDetected, fileUndetected]);
}
const score = (d, u) => (d + u === 0 ? 100 : (100 * d) / (d + u));
const short = (s) => {
  const one = String(s).replace(/\s+/g, " ").trim();
  return one.length > 70 ? `${one.slice(0, 67)}...` : one;
};

console.log("\nmutation score by file (killed+timeout / killed+timeout+survived+no coverage):");
for (const [file, d, u] of byFile.sort()) {
  console.log(`  ${score(d, u).toFixed(1).padStart(5)} %  ${String(d).padStart(4)} / ${String(d + u).padEnd(4)} ${file}`);
}
console.log(`\nsurviving mutants (${survivors.length}):`);
survivors.sort((a, b) => a.where.localeCompare(b.where, undefined, { numeric: true }));
for (const { where, m, original } of survivors) {
  const tag = m.status === "NoCoverage" ? " [no coverage]" : "";
  console.log(`  ${where}  ${m.mutatorName}  ${short(original)} -> ${short(m.replacement ?? "")}${tag}`);
}
if (ignored.length > 0) {
  const reasons = new Map();
  for (const { where, reason } of ignored) {
    const file = where.replace(/:\d+$/, "");
    const key = `${file}: ${reason}`;
    reasons.set(key, (reasons.get(key) ?? 0) + 1);
  }
  console.log(`\nignored mutants (${ignored.length}, excluded from the score by a Stryker disable comment):`);
  for (const [key, n] of reasons) console.log(`  ${String(n).padStart(3)}  ${key}`);
}
const total = score(detected, undetected);
console.log(`\nmutation score: ${total.toFixed(2)} % (${detected} detected of ${detected + undetected}; goal ${GOAL} %)`);
if (ignored.length > 0) {
  console.log(`counting the ${ignored.length} ignored as survivors: ${score(detected, undetected + ignored.length).toFixed(2)} %`);
}
process.exit(total >= GOAL ? 0 : 1);
