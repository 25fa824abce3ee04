/**
 * Hands a lifecycle event to each listener a driver holds. A listener is the caller's code: one
 * that throws, or an `async` one whose promise rejects (the `=> void` type allows it), must neither
 * stop the others nor end the process with an unhandled rejection; `onError` hears of it.
 */
import type { LifecycleEvent, LifecycleListener } from "./driver.js";

export function deliverLifecycleEvent(
  listeners: Iterable<LifecycleListener>,
  event: LifecycleEvent,
  onError: (err: unknown) => void,
): void {
  // A copy: a listener may unregister itself (or another) while being told.
  for (const listener of [...listeners]) {
    try {
      const result: unknown = listener(event);
      if (result instanceof Promise) result.catch(onError);
    } catch (err) {
      onError(err);
    }
  }
}
