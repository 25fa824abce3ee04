/**
 * The fake cloud's notion of time. Guest CPU time, event timestamps, clean-shutdown waits and
 * migration transfer steps all read this clock, so tests can make them deterministic and instant
 * with a {@link ManualClock} instead of mocking globals.
 */
import { sleep, throwIfAborted } from "@virtkit/core";

/** A source of time that can also wait. */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
  /** Resolves after `ms` of this clock's time; rejects with the core's typed error when `signal` fires. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

/** Wall-clock time and real timers. */
export const systemClock: Clock = Object.freeze({
  now: () => Date.now(),
  sleep: (ms: number, signal?: AbortSignal) => sleep(ms, signal, "fake clock sleep"),
});

/**
 * A virtual clock for tests: time moves only by {@link ManualClock.advance} or by `sleep`, which
 * advances the clock by the requested time after yielding one macrotask (so concurrent work such
 * as an abort gets its turn) instead of waiting for real.
 */
export class ManualClock implements Clock {
  #now: number;

  constructor(startMs = Date.UTC(2026, 0, 1)) {
    this.#now = startMs;
  }

  now(): number {
    return this.#now;
  }

  /** Moves time forward by `ms`. */
  advance(ms: number): void {
    if (!Number.isFinite(ms) || ms < 0) throw new RangeError("ManualClock.advance needs a finite ms >= 0");
    this.#now += ms;
  }

  async sleep(ms: number, signal?: AbortSignal): Promise<void> {
    throwIfAborted("fake clock sleep", signal);
    await new Promise<void>((resolve) => setImmediate(resolve));
    throwIfAborted("fake clock sleep", signal);
    this.#now += Math.max(0, ms);
  }
}
