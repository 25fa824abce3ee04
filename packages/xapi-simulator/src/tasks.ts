// XAPI tasks: what an Async.* call returns. Status goes pending -> success | failure, or
// cancelling -> cancelled after task.cancel; the result is XML-RPC-encoded text as XAPI stores it.
import { XapiError } from "./errors.js";
import type { Database } from "./database.js";
import { xapiDate } from "./database.js";

/** The live side of a pending task: cancellation and the waits that honour it. */
export class TaskControl {
  cancelled = false;
  private readonly wakers = new Set<(e: XapiError) => void>();

  constructor(readonly ref: string) {}

  /** Ask the task to stop; waits in progress reject with TASK_CANCELLED. */
  cancel(): void {
    if (this.cancelled) return;
    this.cancelled = true;
    const e = new XapiError("TASK_CANCELLED", [this.ref]);
    for (const w of [...this.wakers]) w(e);
    this.wakers.clear();
  }

  /** Throw TASK_CANCELLED if cancelled. */
  check(): void {
    if (this.cancelled) throw new XapiError("TASK_CANCELLED", [this.ref]);
  }

  /** Resolve after ms, or reject as soon as the task is cancelled. */
  sleep(ms: number): Promise<void> {
    this.check();
    return new Promise<void>((resolve, reject) => {
      const timer = ms === Infinity ? undefined : setTimeout(done, ms).unref();
      const waker = (e: XapiError): void => {
        if (timer) clearTimeout(timer);
        reject(e);
      };
      function done(): void {
        wakers.delete(waker);
        resolve();
      }
      const wakers = this.wakers;
      wakers.add(waker);
    });
  }

  /** Wait until `release` is called or the task is cancelled. */
  hang(register: (release: () => void) => () => void): Promise<void> {
    this.check();
    return new Promise<void>((resolve, reject) => {
      const unregister = register(() => {
        this.wakers.delete(waker);
        resolve();
      });
      const waker = (e: XapiError): void => {
        unregister();
        reject(e);
      };
      this.wakers.add(waker);
    });
  }
}

/** Create a pending task record. */
export function createTask(db: Database, name: string, host: string): string {
  return db.create("task", {
    name_label: name,
    name_description: "",
    status: "pending",
    created: xapiDate(),
    progress: 0,
    resident_on: host,
    allowed_operations: ["cancel"],
    type: "<none/>",
  });
}

/** Mark a task finished with its outcome. */
export function finishTask(db: Database, ref: string, outcome: { result: string } | { error: XapiError }): void {
  if (!db.has("task", ref)) return;
  if ("result" in outcome) {
    db.update("task", ref, { status: "success", result: outcome.result, progress: 1, finished: xapiDate(), allowed_operations: [] });
  } else {
    const cancelled = outcome.error.code === "TASK_CANCELLED";
    db.update("task", ref, {
      status: cancelled ? "cancelled" : "failure",
      error_info: outcome.error.description,
      progress: 1,
      finished: xapiDate(),
      allowed_operations: [],
    });
  }
}
