import { describe, expect, it } from "vitest";
import { forEachLimited, mapLimited } from "./limited.js";

const tick = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("mapLimited", () => {
  it("keeps the items' order and never runs more than `limit` at once", async () => {
    let running = 0;
    let most = 0;
    const out = await mapLimited([5, 1, 4, 2, 3, 0, 6, 2], 3, async (ms, i) => {
      running++;
      most = Math.max(most, running);
      await tick(ms);
      running--;
      return `${i}:${ms}`;
    });
    expect(out).toEqual(["0:5", "1:1", "2:4", "3:2", "4:3", "5:0", "6:6", "7:2"]);
    expect(most).toBe(3);
  });

  it("rejects with the first failure; no items is no call", async () => {
    await expect(
      mapLimited([1, 2, 3], 2, async (n) => {
        if (n === 2) throw new Error("two failed");
        return n;
      }),
    ).rejects.toThrow("two failed");
    let calls = 0;
    expect(await mapLimited([], 4, async () => ++calls)).toEqual([]);
    expect(calls).toBe(0);
  });

  it("a limit below 1 still makes progress, one at a time", async () => {
    const seen: number[] = [];
    await forEachLimited([1, 2, 3], 0, async (n) => void seen.push(n));
    expect(seen).toEqual([1, 2, 3]);
  });
});
