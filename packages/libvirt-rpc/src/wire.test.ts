import { describe, expect, it } from "vitest";
import { uuidToBytes, uuidToString } from "./wire.js";

describe("uuid wire form", () => {
  const uuid = "6f9619ff-8b86-d011-b42d-00c04fc964ff";

  it("round-trips through its 16 bytes, dashes optional, any case", () => {
    const bytes = uuidToBytes(uuid);
    expect(bytes).toHaveLength(16);
    expect(bytes[0]).toBe(0x6f);
    expect(bytes[15]).toBe(0xff);
    expect(uuidToString(bytes)).toBe(uuid);
    expect(uuidToString(uuidToBytes(uuid.replace(/-/g, "")))).toBe(uuid);
    expect(uuidToString(uuidToBytes(uuid.toUpperCase()))).toBe(uuid);
  });

  it.each([
    ["empty", ""],
    ["one digit short", uuid.slice(0, -1)],
    ["one digit long", `${uuid}0`],
    ["a byte long", `${uuid}00`],
    ["not hex", uuid.replace("6f", "6g")],
    ["a space", uuid.replace("-", " ")],
    ["nil bytes of the wrong size", "0".repeat(30)],
  ])("rejects a malformed uuid (%s) with a RangeError naming it", (_why, bad) => {
    expect(() => uuidToBytes(bad)).toThrow(RangeError);
    expect(() => uuidToBytes(bad)).toThrow(JSON.stringify(bad));
  });
});
