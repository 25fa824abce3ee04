import { OperationAbortedError, OperationTimeoutError } from "./errors.js";

/** Options every contract call takes: cancel with `signal`, bound with `timeoutMs`. */
export interface OperationOptions {
  /** Aborts the call; it rejects with {@link OperationAbortedError}. */
  readonly signal?: AbortSignal;
  /** Deadline for the call in ms; it rejects with {@link OperationTimeoutError}. Drivers apply their own default. */
  readonly timeoutMs?: number;
}

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
  const outer = options?.signal;
  if (outer?.aborted) throw new OperationAbortedError(operation, { cause: outer.reason });
  const timeoutMs = options?.timeoutMs ?? defaultTimeoutMs;
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  let onAbort: (() => void) | undefined;
  const stop = new Promise<never>((_, reject) => {
    if (Number.isFinite(timeoutMs) && timeoutMs > 0) {
      timer = setTimeout(() => {
        const err = new OperationTimeoutError(operation, timeoutMs);
        controller.abort(err);
        reject(err);
      }, timeoutMs);
      timer.unref?.();
    }
    if (outer) {
      onAbort = () => {
        const err = new OperationAbortedError(operation, { cause: outer.reason });
        controller.abort(err);
        reject(err);
      };
      outer.addEventListener("abort", onAbort, { once: true });
    }
  });
  try {
    return await Promise.race([fn(controller.signal), stop]);
  } finally {
    if (timer) clearTimeout(timer);
    if (outer && onAbort) outer.removeEventListener("abort", onAbort);
  }
}

/** Throws the typed abort error if `signal` has fired. */
export function throwIfAborted(operation: string, signal: AbortSignal | undefined): void {
  if (signal?.aborted) {
    const reason: unknown = signal.reason;
    if (reason instanceof OperationTimeoutError || reason instanceof OperationAbortedError) throw reason;
    throw new OperationAbortedError(operation, { cause: reason });
  }
}

/** Resolves after `ms`, or rejects with the typed abort error when `signal` fires first. */
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
    const onAbort = () => {
      clearTimeout(t);
      try {
        throwIfAborted(operation, signal);
      } catch (e) {
        reject(e);
      }
    };
    const t = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
