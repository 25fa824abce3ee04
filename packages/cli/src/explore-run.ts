/** `conformance run --explore`: model-based random sequences against one driver, shrunk on divergence. */
import type { ExploreResult } from "@virtkit/conformance";
import { CLI_DIR } from "./run-suite.js";

/** What to explore. */
export interface ExploreRunOptions {
  readonly spec: string;
  /** The plugin's named environment (`--env`). */
  readonly environment?: string;
  readonly options: readonly string[];
  /** Sequences to try (`--runs`, default 100). */
  readonly runs?: number;
  /** fast-check seed (`--seed`); random when absent, and printed either way. */
  readonly seed?: number;
  /** Stops starting sequences after this many ms (`--suite-timeout`). */
  readonly timeLimitMs?: number;
}

/** Resolves the driver, explores it in fresh environments, and returns what was found. */
export async function exploreDriver(o: ExploreRunOptions): Promise<ExploreResult> {
  const { resolveDriver, exploreEnvironment } = await import("@virtkit/conformance");
  const resolved = await resolveDriver(o.spec, o.options, {
    paths: [CLI_DIR],
    ...(o.environment !== undefined ? { environment: o.environment } : {}),
  });
  try {
    return await exploreEnvironment(resolved.environment, {
      runs: o.runs ?? 100,
      ...(o.seed !== undefined ? { seed: o.seed } : {}),
      ...(o.timeLimitMs !== undefined ? { timeLimitMs: o.timeLimitMs } : {}),
    });
  } finally {
    await resolved.environment.dispose?.();
  }
}
