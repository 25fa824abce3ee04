/**
 * One environment and its primary host's driver, made through the path every scenario takes and
 * released after use. A run's pre-flight (a driver that cannot be set up is one error naming why,
 * not the same "driver setup failed" in every scenario) and `--dry-run`'s plan share it.
 */
import { withDeadline, type ComputeDriver, type ConformanceEnvironment, type ConformanceEnvironmentFactory, type OperationOptions } from "@virtkit/core";

/** Which part of the setup failed. */
export type DriverSetupStage = "the environment's setup" | "the driver's setup";

/** The environment or the driver could not be set up, so no scenario can run. */
export class DriverSetupError extends Error {
  readonly code = "VIRTKIT_DRIVER_SETUP_FAILED";
  constructor(
    readonly stage: DriverSetupStage,
    cause: unknown,
  ) {
    const why = (cause instanceof Error ? cause.message : String(cause)).split("\n")[0] ?? "";
    super(`${stage} failed, so no scenario ran: ${why}`, { cause });
    this.name = "DriverSetupError";
  }
}

/** Options of {@link withProbeDriver}. */
export interface ProbeOptions {
  /** Deadline of the environment's setup, and then of the driver's. */
  readonly timeoutMs: number;
  readonly signal?: AbortSignal;
  /** Deadline of each release (a driver whose cleanup never settles); default 30 s. */
  readonly releaseTimeoutMs?: number;
  /** Prefix of what the environment names (instances, volumes). */
  readonly prefix: string;
}

/**
 * Makes one environment from `factory` and its primary host's driver (each bounded), hands them to
 * `use`, then releases both (bounded; a release failure is not the caller's result). Setup failures
 * are a {@link DriverSetupError}; `use`'s own errors pass through.
 */
export async function withProbeDriver<T>(
  factory: ConformanceEnvironmentFactory,
  options: ProbeOptions,
  use: (driver: ComputeDriver, env: ConformanceEnvironment) => Promise<T> | T,
): Promise<T> {
  const bounded = { timeoutMs: options.timeoutMs, ...(options.signal ? { signal: options.signal } : {}) };
  const releaseMs = options.releaseTimeoutMs ?? 30_000;
  const release = { timeoutMs: releaseMs };
  // The deadlines' timers do not hold the process open (they are unref'd): a setup that waits on a
  // promise nothing will settle would let Node exit silently mid-probe (code 13). This one does.
  const alive = setInterval(() => undefined, 60_000);
  try {
    return await probe(factory, options, use, bounded, release, releaseMs);
  } finally {
    clearInterval(alive);
  }
}

async function probe<T>(
  factory: ConformanceEnvironmentFactory,
  options: ProbeOptions,
  use: (driver: ComputeDriver, env: ConformanceEnvironment) => Promise<T> | T,
  bounded: OperationOptions,
  release: OperationOptions,
  releaseMs: number,
): Promise<T> {
  let env: ConformanceEnvironment;
  try {
    env = await withDeadline("environment setup", bounded, options.timeoutMs, () => factory({ prefix: options.prefix }));
  } catch (err) {
    throw new DriverSetupError("the environment's setup", err);
  }
  try {
    const host = env.hosts[0] ?? "localhost";
    let driver: ComputeDriver;
    try {
      driver = await withDeadline("driver setup", bounded, options.timeoutMs, () => env.createDriver(host));
    } catch (err) {
      throw new DriverSetupError("the driver's setup", err);
    }
    try {
      return await use(driver, env);
    } finally {
      await withDeadline("driver cleanup", release, releaseMs, () => driver.cleanupHost(host)).catch(() => undefined);
    }
  } finally {
    await withDeadline("environment cleanup", release, releaseMs, () => env.cleanup()).catch(() => undefined);
  }
}
