import { describe, expect, it } from "vitest";
import { transitionFor } from "./vm-events.js";

const seen = (power: string, mine = true) => ({ power, mine, instanceUuid: "u" });

describe("transitionFor", () => {
  it.each([
    ["Halted", "Running", "STARTED"],
    ["Paused", "Running", "RESUMED"],
    ["Suspended", "Running", "STARTED"],
    ["Running", "Halted", "STOPPED"],
    ["Running", "Paused", "PAUSED"],
    ["Running", "Suspended", "SUSPENDED"],
    ["Suspended", "Halted", "STOPPED"],
    ["Running", "Crashed", "CRASHED"],
  ])("%s -> %s is %s", (a, b, t) => {
    expect(transitionFor(seen(a), seen(b))).toBe(t);
  });

  it("announces nothing without a power change, nor for VMs of other hosts", () => {
    expect(transitionFor(seen("Running"), seen("Running"))).toBeUndefined();
    expect(transitionFor(seen("Halted", false), seen("Running", false))).toBeUndefined();
    expect(transitionFor(undefined, seen("Halted"))).toBeUndefined();
  });

  it("announces a VM arriving running (migration, first sight) as STARTED and one leaving as MIGRATION_COMPLETED", () => {
    expect(transitionFor(undefined, seen("Running"))).toBe("STARTED");
    expect(transitionFor(seen("Running", false), seen("Running", true))).toBe("STARTED");
    expect(transitionFor(seen("Running", true), seen("Running", false))).toBe("MIGRATION_COMPLETED");
  });
});
