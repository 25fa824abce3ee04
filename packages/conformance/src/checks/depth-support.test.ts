import { describe, expect, it } from "vitest";
import { stallMeter } from "./depth-support.js";

describe("stallMeter", () => {
  it("counts the time the process stood still (a busy loop), at most the time that passed", async () => {
    const t0 = performance.now();
    const meter = stallMeter();
    await new Promise((r) => setTimeout(r, 15));
    const until = performance.now() + 150;
    while (performance.now() < until);
    await new Promise((r) => setTimeout(r, 15));
    const stalled = meter.stop();
    // A loaded machine may add stalls of its own: the busy loop is the least of it.
    expect(stalled).toBeGreaterThanOrEqual(120);
    expect(stalled).toBeLessThanOrEqual(performance.now() - t0);
  });
});
