import { setMaxListeners } from "node:events";
import { InvalidInputError, OperationAbortedError, OperationTimeoutError } from "./errors.js";

/** Per caller signal, what to call when it aborts: one listener on it however many calls wait. */
const relays = new WeakMap<AbortSignal, Set<(reason: unknown) => void>>();

/**
 * Calls `onAbort` once `signal` aborts; returns the unregistration. A caller's signal is often
 * shared by many concurrent calls (a request's, a scenario's): each would add its own listener, and
 * an EventTarget warns of a leak past ten. Here the signal carries one listener, removed with the
 * last registration.
 */
export function onAbort(signal: AbortSignal, callback: (reason: unknown) => void): () => void {
  let targets = relays.get(signal);
  if (!targets) {
    const set = new Set<(reason: unknown) => void>();
    const fire = (): void => {
      relays.delete(signal);
      for (const t of [...set]) t(signal.reason);
      set.clear();
    };
    targets = set;
    relays.set(signal, set);
    signal.addEventListener("abort", fire, { once: true });
    listenerOf.set(set, fire);
  }
  const set = targets;
  set.add(callback);
  return () => {
    if (!set.delete(callback) || set.size > 0) return;
    relays.delete(signal);
    const fire = listenerOf.get(set);
    if (fire) signal.removeEventListener("abort", fire);
  };
}
const listenerOf = new WeakMap<Set<(reason: unknown) => void>, () => void>();

/**
 * The longest delay a Node timer holds (2^31 - 1 ms, about 24.8 days). A longer one fires at once
 * (Node sets it to 1 ms with a warning), so a caller's generous deadline would become an instant
 * timeout: delays are capped here instead, which for any real call is the same as no deadline.
 */
export const MAX_TIMER_MS = 2_147_483_647;

/** `ms` as a timer can hold it: capped at {@link MAX_TIMER_MS}, never negative. */
export function timerDelay(ms: number): number {
  return ms > MAX_TIMER_MS ? MAX_TIMER_MS : ms > 0 ? ms : 0;
}

/**
 * Options every contract call takes: cancel with `signal`, bound with `timeoutMs`. Both are lent
 * for the call only: once it has settled, the driver holds no listener on `signal` and no timer of
 * the deadline keeps the process alive (a timer left armed for a long `timeoutMs` would hold a
 * service's shutdown, and the call's state, until it fires).
 */
export interface OperationOptions {
  /** Aborts the call; it rejects with {@link OperationAbortedError}. */
  readonly signal?: AbortSignal;
  /** Deadline for the call in ms; it rejects with {@link OperationTimeoutError}. Drivers apply their own default. */
  readonly timeoutMs?: number;
}

/** An AbortSignal, by its shape (one from another realm or a polyfill counts too). */
function isAbortSignal(v: unknown): v is AbortSignal {
  return (
    typeof v === "object" &&
    v !== null &&
    typeof (v as AbortSignal).aborted === "boolean" &&
    typeof (v as AbortSignal).addEventListener === "function" &&
    typeof (v as AbortSignal).removeEventListener === "function"
  );
}

/**
 * Refuses, with `InvalidInputError` naming the field, options a JavaScript caller got wrong: not
 * an object, a `signal` that is not an AbortSignal, a `timeoutMs` that is not a positive number of
 * milliseconds (NaN, 0, -1 or "5" would otherwise mean no deadline at all). Left out is fine;
 * `Infinity` is no deadline, said outright.
 */
export function validateOperationOptions(options: unknown): void {
  if (options === undefined) return;
  if (typeof options !== "object" || options === null)
    throw new InvalidInputError("options", "must be an object or left out");
  const { signal, timeoutMs } = options as { signal?: unknown; timeoutMs?: unknown };
  if (signal !== undefined && !isAbortSignal(signal)) throw new InvalidInputError("signal", "must be an AbortSignal");
  if (timeoutMs !== undefined && !(typeof timeoutMs === "number" && timeoutMs > 0)) {
    throw new InvalidInputError("timeoutMs", "must be a positive number of milliseconds");
  }
}

/**
 * When the deadline behind each signal {@link withDeadline} hands out runs out (`performance.now()`
 * ms), and how to fire it. After a stall of the process a deadline's timer and the timer of the work
 * it bounds are due at once, and Node may run the work's first (timers of different durations run by
 * list, not by due time): {@link throwIfAborted} and {@link sleep} read the clock, so a deadline is
 * past when its time is, not when its timer ran.
 */
const DEADLINES = new WeakMap<AbortSignal, { readonly at: number; readonly expire: () => void }>();

/**
 * Runs `fn` under the caller's signal and a deadline. `fn` receives one signal that fires on
 * either, and should pass it down; the returned promise settles as soon as either fires even if
 * `fn` ignores it.
 */
export async function withDeadline<T>(
  operation: string,
  options: OperationOptions | undefined,
  defaultTimeoutMs: number,
  fn: (signal: AbortSignal) => Promise<T>,
): Promise<T> {
  validateOperationOptions(options);
  const outer = options?.signal;
  if (outer?.aborted) throw new OperationAbortedError(operation, { cause: outer.reason });
  const timeoutMs = options?.timeoutMs ?? defaultTimeoutMs;
  // A call made inside an operation under a deadline that runs out no later than this one would:
  // a controller and timer of its own could never fire first, so the caller's signal serves (a
  // driver's RPCs each went through here; this is most of a call's bookkeeping).
  if (outer && options?.timeoutMs === undefined) {
    const deadline = DEADLINES.get(outer);
    if (deadline !== undefined && deadline.at <= performance.now() + timeoutMs) return underSignal(operation, outer, fn);
  }
  const controller = new AbortController();
  // The calls of one operation that go out together each listen on it.
  setMaxListeners(256, controller.signal);
  let timer: NodeJS.Timeout | undefined;
  let unlink: (() => void) | undefined;
  const stop = new Promise<never>((_, reject) => {
    if (Number.isFinite(timeoutMs) && timeoutMs > 0) {
      const expire = () => {
        if (controller.signal.aborted) return;
        const err = new OperationTimeoutError(operation, timeoutMs);
        controller.abort(err);
        reject(err);
      };
      timer = setTimeout(expire, timerDelay(timeoutMs));
      timer.unref?.();
      DEADLINES.set(controller.signal, { at: performance.now() + timeoutMs, expire });
    }
    if (outer) {
      unlink = onAbort(outer, (reason) => {
        const err = new OperationAbortedError(operation, { cause: reason });
        controller.abort(err);
        reject(err);
      });
    }
  });
  try {
    return await Promise.race([fn(controller.signal), stop]);
  } finally {
    if (timer) clearTimeout(timer);
    unlink?.();
    // Settled: the signal has no deadline any more (work still holding it must not pass for
    // bounded by one, as withDeadline's fast path would take it).
    DEADLINES.delete(controller.signal);
  }
}

/** `fn` under `signal` alone, settling as soon as it fires (see {@link withDeadline}). */
async function underSignal<T>(operation: string, signal: AbortSignal, fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
  let unlink: (() => void) | undefined;
  const stop = new Promise<never>((_, reject) => {
    unlink = onAbort(signal, (reason) => reject(new OperationAbortedError(operation, { cause: reason })));
  });
  try {
    return await Promise.race([fn(signal), stop]);
  } finally {
    unlink?.();
  }
}

/** Throws the typed abort error if `signal` has fired, or its {@link withDeadline} deadline is past. */
export function throwIfAborted(operation: string, signal: AbortSignal | undefined): void {
  if (signal !== undefined && !signal.aborted) {
    const deadline = DEADLINES.get(signal);
    if (deadline !== undefined && performance.now() >= deadline.at) deadline.expire();
  }
  if (signal?.aborted) {
    const reason: unknown = signal.reason;
    if (reason instanceof OperationTimeoutError || reason instanceof OperationAbortedError) throw reason;
    throw new OperationAbortedError(operation, { cause: reason });
  }
}

/** Resolves after `ms`, or rejects with the typed abort error when `signal` fires first (or its `withDeadline` deadline is past by then). */
export function sleep(ms: number, signal?: AbortSignal, operation = "sleep"): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      try {
        throwIfAborted(operation, signal);
      } catch (e) {
        reject(e);
      }
      return;
    }
    const t = setTimeout(() => {
      unlink?.();
      // Its deadline may be past although its timer has not run yet (see DEADLINES).
      try {
        throwIfAborted(operation, signal);
      } catch (e) {
        reject(e);
        return;
      }
      resolve();
    }, timerDelay(ms));
    const unlink = signal
      ? onAbort(signal, () => {
          clearTimeout(t);
          try {
            throwIfAborted(operation, signal);
          } catch (e) {
            reject(e);
          }
        })
      : undefined;
  });
}

/**
 * Waits for `promise`, or rejects with the signal's reason as soon as it fires (the work goes on:
 * a shared connect or login other callers still wait for). Without a signal: `promise` itself.
 */
export function raceSignal<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return promise;
  if (signal.aborted) return Promise.reject(signal.reason as Error);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason as Error);
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(
      (v) => {
        signal.removeEventListener("abort", onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener("abort", onAbort);
        reject(e as Error);
      },
    );
  });
}
