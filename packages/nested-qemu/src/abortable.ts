/** Deadlines and cancellation for promises that take neither (dockerode, testcontainers). */

/** Options of a call that can hang. */
export interface WaitOptions {
  readonly signal?: AbortSignal | undefined;
  readonly timeoutMs?: number | undefined;
}

/** Rejected when a deadline passes first. */
export class NestedQemuTimeoutError extends Error {
  override name = "NestedQemuTimeoutError";
  constructor(what: string, timeoutMs: number) {
    super(`${what} did not finish within ${timeoutMs} ms`);
  }
}

/**
 * `promise`, or a rejection when `signal` aborts or `timeoutMs` passes. The underlying work is not
 * cancelled by this (pass the signal to it too where it takes one); `onLate` receives its result
 * if it arrives after we gave up, so a late container can still be removed.
 */
export function abortable<T>(
  promise: Promise<T>,
  options: WaitOptions & { readonly what: string; readonly onLate?: (value: T) => void },
): Promise<T> {
  const { signal, timeoutMs, what, onLate } = options;
  return new Promise<T>((resolve, reject) => {
    let settled = false;
    const finish = (): void => {
      settled = true;
      if (timer !== undefined) clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
    };
    const onAbort = (): void => {
      if (settled) return;
      finish();
      const reason: unknown = signal?.reason;
      // AbortSignal.timeout's reason says only "The operation was aborted due to timeout": say what.
      reject(new Error(`${what}: ${reason instanceof Error ? reason.message : "aborted"}`, { cause: reason }));
    };
    const timer =
      timeoutMs !== undefined
        ? setTimeout(() => {
            if (settled) return;
            finish();
            reject(new NestedQemuTimeoutError(what, timeoutMs));
          }, timeoutMs)
        : undefined;
    if (signal?.aborted) {
      onAbort();
    } else {
      signal?.addEventListener("abort", onAbort, { once: true });
    }
    promise.then(
      (value) => {
        if (settled) {
          onLate?.(value);
          return;
        }
        finish();
        resolve(value);
      },
      (err: unknown) => {
        if (settled) return;
        finish();
        reject(err instanceof Error ? err : new Error(String(err)));
      },
    );
  });
}

/** A signal that aborts with `parent` or after `timeoutMs`, whichever comes first. */
export function deadlineSignal(parent: AbortSignal | undefined, timeoutMs: number): AbortSignal {
  const timeout = AbortSignal.timeout(timeoutMs);
  return parent ? AbortSignal.any([parent, timeout]) : timeout;
}
