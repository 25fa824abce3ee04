// Reads turbo's test output on stdin, echoes it, and closes with one line that adds up every
// package's vitest counts: "tests: N passed, N failed, N skipped".
import { createInterface } from "node:readline";

const totals = { passed: 0, failed: 0, skipped: 0 };
const strip = (s) => s.replace(/\x1b\[[0-9;]*m/g, "");
for await (const line of createInterface({ input: process.stdin })) {
  process.stdout.write(line + "\n");
  const m = /^\S*\s*Tests\s+(.*)\(\d+\)\s*$/.exec(strip(line).replace(/^@[^:]+:test:\s*/, ""));
  if (!m) continue;
  for (const [, n, kind] of m[1].matchAll(/(\d+) (passed|failed|skipped)/g)) totals[kind] += Number(n);
}
console.log(`tests: ${totals.passed} passed, ${totals.failed} failed, ${totals.skipped} skipped`);
