/**
 * Scenarios of one run whose environment shares its hosts between them (containers started once per
 * run): one that changes a whole host for everyone (fills its memory) must run alone. A
 * readers-writer lock per environment factory: exclusive scenarios are writers, the rest readers,
 * granted in arrival order (a waiting writer holds back later readers, so it is never starved).
 */
export class HostsLock {
  #readers = 0;
  #writer = false;
  readonly #queue: { readonly exclusive: boolean; readonly go: () => void }[] = [];

  /** Waits for the lock; returns its release (idempotent). */
  async acquire(exclusive: boolean): Promise<() => void> {
    await new Promise<void>((go) => {
      this.#queue.push({ exclusive, go });
      this.#pump();
    });
    let released = false;
    return () => {
      if (released) return;
      released = true;
      if (exclusive) this.#writer = false;
      else this.#readers -= 1;
      this.#pump();
    };
  }

  #pump(): void {
    for (let next = this.#queue[0]; next !== undefined && !this.#writer; next = this.#queue[0]) {
      if (next.exclusive) {
        if (this.#readers > 0) return;
        this.#writer = true;
      } else {
        this.#readers += 1;
      }
      this.#queue.shift();
      next.go();
    }
  }
}

const locks = new WeakMap<object, HostsLock>();

/**
 * Runs one scenario's `fn` under the lock of the run's environment `factory` (the one the run was
 * given, not a wrapper of it) when the factory says its hosts are shared: a scenario marked
 * `exclusive` runs alone, the rest side by side. Otherwise runs `fn` at once.
 */
export async function withHostsLock<T>(
  factory: { readonly sharedHosts?: boolean },
  scenario: { readonly exclusive?: string },
  fn: () => Promise<T>,
): Promise<T> {
  if (factory.sharedHosts !== true) return fn();
  let lock = locks.get(factory);
  if (!lock) locks.set(factory, (lock = new HostsLock()));
  const release = await lock.acquire(scenario.exclusive !== undefined);
  try {
    return await fn();
  } finally {
    release();
  }
}
