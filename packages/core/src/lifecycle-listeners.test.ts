import { describe, expect, it } from "vitest";
import type { LifecycleEvent, LifecycleListener } from "./driver.js";
import { deliverLifecycleEvent } from "./lifecycle-listeners.js";

const EVENT: LifecycleEvent = { instanceUuid: "u", transition: "STARTED", host: "h", timestamp: 1 };

describe("deliverLifecycleEvent", () => {
  it("tells every listener, though one throws and one is async and rejects; onError hears of both", async () => {
    const told: string[] = [];
    const errors: unknown[] = [];
    const listeners: LifecycleListener[] = [
      () => {
        throw new Error("sync");
      },
      // An async listener: its promise rejects after the call returned.
      (async () => {
        await Promise.resolve();
        throw new Error("async");
      }) as LifecycleListener,
      (e) => void told.push(e.transition),
    ];
    deliverLifecycleEvent(listeners, EVENT, (err) => errors.push(err));
    expect(told).toEqual(["STARTED"]);
    await new Promise((r) => setTimeout(r, 0));
    expect(errors.map((e) => (e as Error).message)).toEqual(["sync", "async"]);
  });

  it("a listener that unregisters another while being told does not stop this delivery", () => {
    const set = new Set<LifecycleListener>();
    const told: number[] = [];
    const second: LifecycleListener = () => void told.push(2);
    set.add(() => {
      told.push(1);
      set.delete(second);
    });
    set.add(second);
    deliverLifecycleEvent(set, EVENT, () => undefined);
    expect(told).toEqual([1, 2]);
  });
});
