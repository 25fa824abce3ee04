import { describe, expect, it } from "vitest";
import { NestedQemuTimeoutError, abortable } from "./abortable.js";

describe("abortable", () => {
  it("passes the value through", async () => {
    await expect(abortable(Promise.resolve(3), { what: "x", timeoutMs: 1000 })).resolves.toBe(3);
  });

  it("gives up after the deadline and hands a late value to onLate", async () => {
    let late: number | undefined;
    const slow = new Promise<number>((resolve) => setTimeout(() => resolve(7), 50));
    await expect(
      abortable(slow, { what: "slow thing", timeoutMs: 10, onLate: (v) => (late = v) }),
    ).rejects.toBeInstanceOf(NestedQemuTimeoutError);
    await new Promise((r) => setTimeout(r, 80));
    expect(late).toBe(7);
  });

  it("rejects on abort, naming what was aborted", async () => {
    const controller = new AbortController();
    const never = new Promise<never>(() => undefined);
    const p = abortable(never, { what: "docker rm", signal: controller.signal });
    controller.abort(new Error("interrupted"));
    await expect(p).rejects.toThrow("docker rm: interrupted");
  });
});
