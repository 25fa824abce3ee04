/**
 * What failed spawns left behind and could not remove at once (the daemon died or the link broke
 * mid-spawn). The driver finishes these before its next call, once the daemon answers again, so a
 * failed spawn leaves nothing behind however it failed.
 */

/** One instance whose partial spawn still has to be removed. */
export interface PendingCleanup {
  readonly uuid: string;
  /** The domain's name (a label for the handle; libvirtd finds it by uuid). */
  readonly name: string;
  /** The failed spawn's id: a domain with another id is someone else's and is left alone. */
  readonly spawnId: string;
  /** The spawn booted a disk an earlier destroy kept: the disk is not the spawn's to remove. */
  readonly keepDisk: boolean;
  /** Attempts made so far. */
  attempts: number;
}

/** The set of pending cleanups, finished single flight. */
export class PendingCleanups {
  readonly #records = new Map<string, PendingCleanup>();
  #running: Promise<void> | undefined;

  /** Remembers that `uuid`'s partial spawn must be removed. */
  add(uuid: string, name: string, spawnId: string, keepDisk = false): void {
    this.#records.set(uuid, { uuid, name, spawnId, keepDisk, attempts: 0 });
  }

  /** Forgets `uuid` (removed, or the instance was spawned again successfully). */
  delete(uuid: string): void {
    this.#records.delete(uuid);
  }

  /** How many are pending. */
  get size(): number {
    return this.#records.size;
  }

  /** Uuids still pending (for diagnostics). */
  uuids(): string[] {
    return [...this.#records.keys()];
  }

  /**
   * Runs `remove` for every pending record; one that succeeds is forgotten, one that fails stays
   * for the next time. Concurrent callers share one pass.
   */
  finish(remove: (record: PendingCleanup) => Promise<void>): Promise<void> {
    if (this.#records.size === 0) return Promise.resolve();
    this.#running ??= (async () => {
      for (const record of [...this.#records.values()]) {
        record.attempts++;
        try {
          await remove(record);
          this.#records.delete(record.uuid);
        } catch {
          // Still unreachable: kept for the next call.
        }
      }
    })().finally(() => {
      this.#running = undefined;
    });
    return this.#running;
  }
}
