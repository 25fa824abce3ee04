import { describe, expect, it } from "vitest";
import { HostsLock } from "./hosts-lock.js";

const tick = () => new Promise((r) => setTimeout(r, 5));

describe("HostsLock (scenarios sharing hosts)", () => {
  it("runs readers side by side and a writer alone, in arrival order", async () => {
    const lock = new HostsLock();
    const log: string[] = [];
    const r1 = await lock.acquire(false);
    const r2 = await lock.acquire(false);
    log.push("r1", "r2");
    const w = lock.acquire(true).then((release) => (log.push("w"), release));
    // A reader that arrives after the writer waits behind it (the writer is never starved).
    const r3 = lock.acquire(false).then((release) => (log.push("r3"), release));
    await tick();
    expect(log).toEqual(["r1", "r2"]);
    r1();
    await tick();
    expect(log).toEqual(["r1", "r2"]);
    r2();
    const wRelease = await w;
    await tick();
    expect(log).toEqual(["r1", "r2", "w"]);
    wRelease();
    wRelease(); // idempotent: a second release changes nothing
    (await r3)();
    expect(log).toEqual(["r1", "r2", "w", "r3"]);
    // Free again: a writer gets it at once.
    (await lock.acquire(true))();
  });
});
