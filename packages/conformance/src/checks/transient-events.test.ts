// What the kit folds as a hypervisor's transient pause, and what it never folds.
import type { LifecycleTransition } from "@virtkit/core";
import { describe, expect, it } from "vitest";
import { withoutTransients } from "./event-log.js";

describe("withoutTransients", () => {
  it.each<[LifecycleTransition[], LifecycleTransition[]]>([
    [["PAUSED", "SUSPENDED"], ["SUSPENDED"]], // QEMU pauses before a managed save
    [["STARTED", "RESUMED"], ["STARTED"]], // a saved guest is restored paused, then resumed
    [["PAUSED", "RESUMED"], []], // an internal snapshot of a running guest
    [["PAUSED", "SUSPENDED", "STARTED"], ["SUSPENDED", "STARTED"]], // a cold image snapshot
    [["STOPPED", "STARTED", "RESUMED"], ["STOPPED", "STARTED"]], // a revert
    [["PAUSED"], ["PAUSED"]],
    [["RESUMED"], ["RESUMED"]],
    [["PAUSED", "PAUSED"], ["PAUSED", "PAUSED"]], // a repeat is a defect the kit must see
    [["STOPPED", "STOPPED"], ["STOPPED", "STOPPED"]],
  ])("%j -> %j", (seq, folded) => {
    expect(withoutTransients(seq)).toEqual(folded);
  });
});
