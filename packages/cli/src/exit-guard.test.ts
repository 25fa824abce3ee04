import { EventEmitter } from "node:events";
import { describe, expect, it } from "vitest";
import { ExitDuringRunError, collectStrayErrors, guardExit } from "./exit-guard.js";

/** A stand-in process: exit, the exit event, stderr and exitCode. */
function fakeProcess() {
  const written: string[] = [];
  const exited: unknown[] = [];
  const target = Object.assign(new EventEmitter(), {
    exitCode: undefined as number | undefined,
    stderr: { write: (t: string) => written.push(t) },
    exit: (code?: number) => {
      exited.push(code);
      return undefined as never;
    },
  });
  return { target, written, exited };
}

describe("the exit guard", () => {
  it("turns a driver's process.exit into an error while the run goes on, and gives exit back after", () => {
    const { target, exited } = fakeProcess();
    const original = target.exit;
    const attempts: string[] = [];
    const release = guardExit(target as unknown as NodeJS.Process, (err) => attempts.push(err.message));
    expect(() => target.exit(0)).toThrow(ExitDuringRunError);
    expect(attempts).toHaveLength(1);
    expect(() => target.exit(0)).toThrow(/process.exit\(0\) was called during the conformance run/);
    expect(exited).toEqual([]);
    release();
    expect(target.exit).toBe(original);
    target.exit(3);
    expect(exited).toEqual([3]);
  });

  it("a process that ends mid-run anyway ends non-zero and says the run did not finish", () => {
    const { target, written } = fakeProcess();
    const release = guardExit(target as unknown as NodeJS.Process);
    target.emit("exit", 0);
    expect(target.exitCode).toBe(1);
    expect(written.join("")).toMatch(/before the run finished: no report was written/);
    release();
    expect(target.listenerCount("exit")).toBe(0);
  });

  it("collects a driver's uncaught exception and unhandled rejection (said at once), and stops listening after", () => {
    const { target, written } = fakeProcess();
    const stray = collectStrayErrors(target as unknown as NodeJS.Process);
    target.emit("uncaughtException", new Error("boom\nat the driver"));
    target.emit("unhandledRejection", "plain reason");
    expect(stray.errors).toEqual(["uncaught exception: Error: boom", "unhandled rejection: plain reason"]);
    expect(written.join("")).toMatch(/uncaught exception: Error: boom \(outside any scenario: the run will fail\)/);
    stray.release();
    expect(target.listenerCount("uncaughtException") + target.listenerCount("unhandledRejection")).toBe(0);
  });
});
