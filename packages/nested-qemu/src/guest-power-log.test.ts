import { describe, expect, it } from "vitest";
import { parseGuestPowerLog } from "./guest-power-log.js";

describe("the guest's power log", () => {
  it("counts presses over all boots and knows which boots ended cleanly", () => {
    const log = parseGuestPowerLog("boot 1\nacpi 1\nclean 1\nboot 2\nboot 3\nacpi 3\nacpi 3\n");
    expect(log.lastBoot).toBe(3);
    expect(log.acpiRequests).toBe(3);
    expect([...log.cleanEnds]).toEqual([1]);
  });

  it("skips a line torn by a hard stop, and reads an empty log as no boot", () => {
    expect(parseGuestPowerLog("boot 1\nacp").lastBoot).toBe(1);
    expect(parseGuestPowerLog("boot 1\nacp").acpiRequests).toBe(0);
    expect(parseGuestPowerLog("")).toEqual({ lastBoot: 0, acpiRequests: 0, cleanEnds: new Set() });
  });
});
