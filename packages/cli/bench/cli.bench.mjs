// Figures of the CLI, measured as real process spawns: `virtkit --help` (median of N) and a whole
// `virtkit conformance run --driver fake` through each runner. Run after `pnpm build`.
/* global process, console, performance */
import { spawnSync } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const bin = join(dirname(fileURLToPath(import.meta.url)), "..", "bin", "run.js");
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

function time(args, runs) {
  const ms = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    const r = spawnSync(process.execPath, [bin, ...args], { encoding: "utf8" });
    ms.push(performance.now() - t0);
    if (r.status !== 0) throw new Error(`virtkit ${args.join(" ")} exited ${r.status}: ${r.stderr}`);
  }
  return ms;
}

const N = Number(process.env.BENCH_RUNS ?? 11);
time(["--help"], 2); // warm the file cache
const help = time(["--help"], N);
console.log(`virtkit --help: median ${median(help).toFixed(0)} ms over ${N} spawns (min ${Math.min(...help).toFixed(0)}, max ${Math.max(...help).toFixed(0)})`);
const list = time(["conformance", "list", "--json"], 5);
console.log(`virtkit conformance list --json: median ${median(list).toFixed(0)} ms over 5 spawns`);
const vitest = time(["conformance", "run", "--driver", "fake", "--parallel", "4", "--json"], 3);
console.log(`virtkit conformance run --driver fake (vitest runner): median ${median(vitest).toFixed(0)} ms wall over 3 spawns`);
const direct = time(["conformance", "run", "--driver", "fake", "--parallel", "4", "--runner", "direct", "--json"], 3);
console.log(`virtkit conformance run --driver fake --runner direct: median ${median(direct).toFixed(0)} ms wall over 3 spawns`);
const ok = median(help) < 400 && median(vitest) < 3000 && median(direct) < 3000;
console.log(ok ? "targets met (--help < 400 ms, suite < 3 s)" : "TARGET MISSED");
