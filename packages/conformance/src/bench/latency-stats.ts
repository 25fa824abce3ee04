/** Latency figures from raw samples: min, max, mean and nearest-rank percentiles. */
import type { LatencyStats } from "./bench-report.js";

/** Milliseconds to 3 decimals (microseconds): finer than any driver call can be told apart. */
const round = (ms: number): number => Math.round(ms * 1000) / 1000;

/**
 * The nearest-rank `p`-th percentile of ascending `sorted` (non-empty): the smallest sample such
 * that at least `p`% of the samples are at or below it. With few samples p95 and p99 are the max,
 * which is the honest answer.
 */
export function percentile(sorted: readonly number[], p: number): number {
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[Math.min(rank, sorted.length) - 1]!;
}

/** The figures of `samples` (ms); undefined for no samples. */
export function latencyStats(samples: readonly number[]): LatencyStats | undefined {
  if (samples.length === 0) return undefined;
  const sorted = [...samples].sort((a, b) => a - b);
  const sum = sorted.reduce((a, b) => a + b, 0);
  return {
    samples: sorted.length,
    minMs: round(sorted[0]!),
    maxMs: round(sorted[sorted.length - 1]!),
    meanMs: round(sum / sorted.length),
    p50Ms: round(percentile(sorted, 50)),
    p95Ms: round(percentile(sorted, 95)),
    p99Ms: round(percentile(sorted, 99)),
  };
}
