// Top self-time functions of a V8 .cpuprofile (from `node --cpu-prof`), as a share of samples.
// Usage: node bench/profile-summary.mjs <file.cpuprofile> [top=25]
// Shares are of the busy samples ((idle) is reported apart): where the client's CPU goes.
/* global process, console */

import { readFileSync } from "node:fs";

const [file, topArg] = process.argv.slice(2);
if (!file) throw new Error("usage: profile-summary.mjs <file.cpuprofile> [top]");
const prof = JSON.parse(readFileSync(file, "utf8"));
const byId = new Map(prof.nodes.map((n) => [n.id, n]));
const self = new Map();
let total = 0;
let idle = 0;
for (const id of prof.samples) {
  const n = byId.get(id);
  const f = n.callFrame;
  if (f.functionName === "(idle)") {
    idle++;
    continue;
  }
  const where = f.url ? `${f.url.split("/").slice(-2).join("/")}:${f.lineNumber + 1}` : "";
  const key = `${f.functionName || "(anonymous)"} ${where}`;
  self.set(key, (self.get(key) ?? 0) + 1);
  total++;
}
const top = [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, Number(topArg ?? 25));
for (const [k, v] of top) console.log(`${((100 * v) / total).toFixed(1).padStart(5)}%  ${k}`);
console.log(`${total} busy samples, ${idle} idle (${((100 * idle) / (total + idle)).toFixed(1)}% of all)`);
