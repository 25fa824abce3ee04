/** `conformance bench`: resolves the driver as a conformance run does (plugin, environment, production path), then measures it. */
import type { BenchReport, BenchSelectable } from "@virtkit/conformance";
import { CLI_DIR } from "./run-suite.js";

/** What to measure. */
export interface BenchRunOptions {
  readonly spec: string;
  /** The plugin's named environment (`--env`). */
  readonly environment?: string;
  readonly options: readonly string[];
  readonly count: number;
  readonly concurrency: number;
  readonly operations?: readonly BenchSelectable[];
  readonly timeoutMs: number;
  readonly cleanupTimeoutMs: number;
  /** Ctrl-C: stops the bench; it still cleans up. */
  readonly signal: AbortSignal;
  readonly onProgress?: (message: string) => void;
}

/** Resolves, benches, and releases what the environment factory shares; driver load errors surface typed. */
export async function benchDriver(o: BenchRunOptions): Promise<BenchReport> {
  const { resolveDriver, runBench } = await import("@virtkit/conformance");
  const resolved = await resolveDriver(o.spec, o.options, {
    paths: [CLI_DIR],
    ...(o.environment !== undefined ? { environment: o.environment } : {}),
  });
  try {
    return await runBench({
      driver: resolved.descriptor,
      environment: resolved.environment,
      count: o.count,
      concurrency: o.concurrency,
      ...(o.operations !== undefined ? { operations: o.operations } : {}),
      timeoutMs: o.timeoutMs,
      cleanupTimeoutMs: o.cleanupTimeoutMs,
      signal: o.signal,
      ...(o.onProgress ? { onProgress: o.onProgress } : {}),
    });
  } finally {
    await resolved.environment.dispose?.();
  }
}
