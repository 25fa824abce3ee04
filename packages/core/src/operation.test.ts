// Deadlines and cancellation (and the options that carry them): many calls sharing one caller signal put one listener on it, and
// every one of them is still cancelled by it.
import { getEventListeners } from "node:events";
import { describe, expect, it } from "vitest";
import { InvalidInputError, OperationAbortedError, OperationTimeoutError } from "./errors.js";
import { MAX_TIMER_MS, onAbort, raceSignal, sleep, throwIfAborted, timerDelay, withDeadline } from "./operation.js";

describe("one caller signal, many calls", () => {
  it("carries one listener however many calls wait on it, none once they are done, and no leak warning", async () => {
    const warnings: Error[] = [];
    const onWarning = (w: Error) => warnings.push(w);
    process.on("warning", onWarning);
    try {
      const caller = new AbortController();
      const calls = Array.from({ length: 50 }, (_, i) =>
        withDeadline(`op${i}`, { signal: caller.signal }, 5_000, (signal) => sleep(20, signal)),
      );
      const naps = Array.from({ length: 20 }, () => sleep(20, caller.signal));
      expect(getEventListeners(caller.signal, "abort")).toHaveLength(1);
      await Promise.all([...calls, ...naps]);
      expect(getEventListeners(caller.signal, "abort")).toHaveLength(0);
      await new Promise((r) => setImmediate(r));
      expect(warnings.filter((w) => w.name === "MaxListenersExceededWarning")).toEqual([]);
    } finally {
      process.off("warning", onWarning);
    }
  });

  it("aborts every call waiting on the signal, each with its own typed error", async () => {
    const caller = new AbortController();
    const calls = Array.from({ length: 30 }, (_, i) =>
      withDeadline(`op${i}`, { signal: caller.signal }, 5_000, (signal) => sleep(10_000, signal)).catch((e: unknown) => e),
    );
    const nap = sleep(10_000, caller.signal, "nap").catch((e: unknown) => e);
    caller.abort(new Error("user cancelled"));
    const errors = await Promise.all(calls);
    expect(errors.every((e) => e instanceof OperationAbortedError)).toBe(true);
    expect(String((errors[7] as Error).message)).toMatch(/op7/);
    expect(await nap).toBeInstanceOf(OperationAbortedError);
    expect(getEventListeners(caller.signal, "abort")).toHaveLength(0);
  });

  it("a deadline still ends its own call only", async () => {
    const caller = new AbortController();
    const slow = withDeadline("slow", { signal: caller.signal, timeoutMs: 20 }, 5_000, (s) => sleep(5_000, s)).catch((e: unknown) => e);
    const quick = withDeadline("quick", { signal: caller.signal }, 5_000, (s) => sleep(50, s).then(() => "done"));
    expect(await slow).toBeInstanceOf(OperationTimeoutError);
    expect(await quick).toBe("done");
    expect(caller.signal.aborted).toBe(false);
  });

  it("an unregistered callback is not called; the others are", () => {
    const caller = new AbortController();
    const seen: string[] = [];
    const offA = onAbort(caller.signal, () => seen.push("a"));
    onAbort(caller.signal, (reason) => seen.push(`b:${String(reason)}`));
    offA();
    caller.abort("why");
    expect(seen).toEqual(["b:why"]);
  });
});

describe("raceSignal", () => {
  it("gives the promise's outcome, or the signal's reason as soon as it fires, and leaves no listener", async () => {
    expect(await raceSignal(Promise.resolve(7), undefined)).toBe(7);
    const ac = new AbortController();
    expect(await raceSignal(Promise.resolve(8), ac.signal)).toBe(8);
    await expect(raceSignal(Promise.reject(new RangeError("own")), ac.signal)).rejects.toBeInstanceOf(RangeError);
    expect(getEventListeners(ac.signal, "abort")).toHaveLength(0);
    const never = new Promise<number>(() => undefined);
    const raced = raceSignal(never, ac.signal);
    ac.abort(new Error("stop"));
    await expect(raced).rejects.toThrow("stop");
    await expect(raceSignal(never, ac.signal)).rejects.toThrow("stop");
  });
});

describe("deadlines longer than a timer holds", () => {
  it("caps a delay at what a Node timer holds instead of letting it fire at once", () => {
    expect(timerDelay(2 ** 31)).toBe(MAX_TIMER_MS);
    expect(timerDelay(Number.MAX_SAFE_INTEGER)).toBe(MAX_TIMER_MS);
    expect(timerDelay(1500)).toBe(1500);
    expect(timerDelay(-5)).toBe(0);
  });

  it("does not time a call out at once when its deadline is beyond 2^31 ms", async () => {
    const ac = new AbortController();
    const call = withDeadline("op", { timeoutMs: 2 ** 31, signal: ac.signal }, 1000, (signal) =>
      new Promise<string>((resolve) => setTimeout(() => resolve(signal.aborted ? "aborted" : "done"), 30)),
    );
    await expect(call).resolves.toBe("done");
  });

  it("sleeps past a tick for a delay beyond 2^31 ms, and still ends on abort", async () => {
    const ac = new AbortController();
    let settled = false;
    const nap = sleep(2 ** 31, ac.signal).finally(() => (settled = true));
    await new Promise((r) => setTimeout(r, 30));
    expect(settled).toBe(false);
    ac.abort();
    await expect(nap).rejects.toBeInstanceOf(OperationAbortedError);
  });
});

describe("withDeadline's options, as a JavaScript caller may get them wrong", () => {
  it.each([
    ["timeoutMs", { timeoutMs: Number.NaN }],
    ["timeoutMs", { timeoutMs: 0 }],
    ["timeoutMs", { timeoutMs: -1 }],
    ["timeoutMs", { timeoutMs: "5" }],
    ["signal", { signal: "nope" }],
    ["options", 42],
    ["options", null],
  ])("refuses %s in %j with InvalidInputError naming it, before the call runs", async (field, options) => {
    let ran = false;
    const err = await withDeadline("op", options as never, 5_000, async () => {
      ran = true;
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InvalidInputError);
    expect((err as InvalidInputError).field).toBe(field);
    expect(ran).toBe(false);
  });

  it("takes options left out, an AbortSignal, a positive deadline, and Infinity as no deadline", async () => {
    for (const options of [undefined, {}, { signal: new AbortController().signal }, { timeoutMs: 50 }, { timeoutMs: Number.POSITIVE_INFINITY }]) {
      await expect(withDeadline("op", options, 5_000, async () => "done")).resolves.toBe("done");
    }
  });
});

describe("a deadline is past when its time is, not when its timer ran", () => {
  // After a stall of the process the deadline's timer and the work's timer are due at once, and
  // Node may run the work's first: the work must still end in the deadline's error, changing nothing.
  const stall = (ms: number) => {
    const until = performance.now() + ms;
    while (performance.now() < until);
  };

  it("throwIfAborted sees a deadline that passed while its timer had not run", async () => {
    let changed = false;
    const call = withDeadline("op", { timeoutMs: 4 }, 60_000, async (signal) => {
      stall(20);
      throwIfAborted("op", signal);
      changed = true;
    });
    await expect(call).rejects.toBeInstanceOf(OperationTimeoutError);
    expect(changed).toBe(false);
  });

  it("a sleep whose timer runs after the deadline's time rejects with the deadline's error", async () => {
    for (let i = 0; i < 20; i++) {
      let changed = false;
      const call = withDeadline("op", { timeoutMs: 4 }, 60_000, async (signal) => {
        const slept = sleep(1, signal, "op");
        stall(20);
        await slept;
        changed = true;
      });
      await expect(call).rejects.toBeInstanceOf(OperationTimeoutError);
      expect(changed).toBe(false);
    }
  });

  it("leaves a caller's own signal, and a deadline not yet reached, as they were", async () => {
    const outer = new AbortController();
    expect(() => throwIfAborted("op", outer.signal)).not.toThrow();
    await expect(withDeadline("op", { timeoutMs: 5_000 }, 60_000, async (signal) => (throwIfAborted("op", signal), "ok"))).resolves.toBe("ok");
    await expect(withDeadline("op", { timeoutMs: 50 }, 60_000, async (signal) => (await sleep(1, signal, "op"), "slept"))).resolves.toBe("slept");
  });
});

describe("a call made inside an operation's deadline", () => {
  it("ends with the operation's deadline when that comes first: typed, naming the inner call, caused by the outer timeout", async () => {
    const seen: AbortSignal[] = [];
    const outer = withDeadline("outer op", undefined, 40, (signal) =>
      withDeadline("inner call", { signal }, 60_000, (inner) => {
        seen.push(inner, signal);
        return new Promise<never>(() => undefined);
      }),
    );
    const t0 = performance.now();
    const err = await outer.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OperationTimeoutError);
    expect(performance.now() - t0).toBeLessThan(1_000);
    // The inner call ran under the operation's own signal (no controller or timer of its own).
    expect(seen[0]).toBe(seen[1]);
  });

  it("the inner call's rejection, seen by itself, is OperationAbortedError caused by the outer timeout", async () => {
    let innerErr: unknown;
    await withDeadline("outer op", undefined, 30, async (signal) => {
      innerErr = await withDeadline("inner call", { signal }, 60_000, () => new Promise<never>(() => undefined)).catch((e: unknown) => e);
    }).catch(() => undefined);
    await new Promise((r) => setTimeout(r, 60));
    expect(innerErr).toBeInstanceOf(OperationAbortedError);
    expect((innerErr as Error).message).toContain("inner call");
    expect(((innerErr as Error).cause as Error)).toBeInstanceOf(OperationTimeoutError);
  });

  it("keeps its own deadline when that is the sooner one, or when it was given one", async () => {
    const shorterDefault = withDeadline("outer op", undefined, 60_000, (signal) =>
      withDeadline("inner call", { signal }, 30, () => new Promise<never>(() => undefined)),
    );
    await expect(shorterDefault).rejects.toMatchObject({ name: "OperationTimeoutError", message: expect.stringContaining("inner call") });
    const given = withDeadline("outer op", undefined, 60_000, (signal) =>
      withDeadline("inner call", { signal, timeoutMs: 30 }, 60_000, () => new Promise<never>(() => undefined)),
    );
    await expect(given).rejects.toMatchObject({ name: "OperationTimeoutError", message: expect.stringContaining("inner call") });
  });

  it("a signal whose operation has settled gives a later call no deadline of its own: that call keeps its own", async () => {
    let stale: AbortSignal | undefined;
    await withDeadline("outer op", undefined, 60_000, async (signal) => {
      stale = signal;
    });
    const late = withDeadline("late call", { signal: stale! }, 30, () => new Promise<never>(() => undefined));
    await expect(late).rejects.toMatchObject({ name: "OperationTimeoutError", message: expect.stringContaining("late call") });
  });
});
