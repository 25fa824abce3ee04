import { DomainEventType } from "@virtkit/libvirt-rpc";
import { describe, expect, it } from "vitest";
import { toLifecycleTransition } from "./lifecycle-events.js";

describe("toLifecycleTransition", () => {
  it.each([
    [DomainEventType.STARTED, 0, "STARTED"],
    [DomainEventType.STOPPED, 0, "STOPPED"],
    [DomainEventType.STOPPED, 1, "STOPPED"],
    [DomainEventType.STOPPED, 2, "CRASHED"],
    [DomainEventType.STOPPED, 3, "MIGRATION_COMPLETED"],
    [DomainEventType.STOPPED, 4, "SUSPENDED"],
    [DomainEventType.SUSPENDED, 0, "PAUSED"],
    [DomainEventType.SUSPENDED, 1, "PAUSED"],
    [DomainEventType.SUSPENDED, 7, "POSTCOPY_STARTED"],
    [DomainEventType.RESUMED, 0, "RESUMED"],
    [DomainEventType.PMSUSPENDED, 0, "SUSPENDED"],
    [DomainEventType.CRASHED, 0, "CRASHED"],
  ])("event %i detail %i -> %s", (event, detail, transition) => {
    expect(toLifecycleTransition(event, detail)).toBe(transition);
  });
  it("ignores events without a power-state meaning", () => {
    expect(toLifecycleTransition(DomainEventType.DEFINED, 0)).toBeUndefined();
    expect(toLifecycleTransition(DomainEventType.UNDEFINED, 0)).toBeUndefined();
    expect(toLifecycleTransition(DomainEventType.SHUTDOWN, 0)).toBeUndefined();
  });
});
