import { hostname } from "node:os";
import { describe, expect, it } from "vitest";
import { OWNER_HOST_LABEL, OWNER_PID_LABEL, RUN_LABEL, SESSION_LABEL, runLabels } from "./labels.js";
import { abandoned } from "./sweep.js";

const now = Date.now();

describe("what a sweep removes", () => {
  it("keeps a live owner's resources, removes a dead owner's", () => {
    expect(abandoned(runLabels("r1"), now, {})).toBe(false);
    // A pid that cannot be alive (beyond pid_max).
    const dead = { ...runLabels("r1"), [OWNER_PID_LABEL]: "2147483640" };
    expect(abandoned(dead, now, {})).toBe(true);
  });

  it("never touches what is not labelled by this package", () => {
    expect(abandoned(undefined, 0, { all: true })).toBe(false);
    expect(abandoned({ other: "x" }, 0, { all: true })).toBe(false);
  });

  it("treats another machine's resources as abandoned only after a while", () => {
    const foreign = { [RUN_LABEL]: "r", [OWNER_PID_LABEL]: "1", [OWNER_HOST_LABEL]: `not-${hostname()}` };
    expect(abandoned(foreign, now - 60_000, {})).toBe(false);
    expect(abandoned(foreign, now - 2 * 3_600_000, {})).toBe(true);
  });

  it("with `all` or `runId` picks regardless of the owner", () => {
    expect(abandoned(runLabels("r1"), now, { all: true })).toBe(true);
    expect(abandoned(runLabels("r1"), now, { runId: "r1" })).toBe(true);
    expect(abandoned(runLabels("r1"), now, { runId: "r2", all: true })).toBe(false);
  });

  it("with `session` picks the session's resources, live owner or not, and nothing else", () => {
    // A CLI sweeps what its vitest worker (a child, in its session) left once the worker is gone.
    expect(runLabels("r1", "s1")[SESSION_LABEL]).toBe("s1");
    expect(SESSION_LABEL in runLabels("r1")).toBe(false);
    expect(abandoned(runLabels("r1", "s1"), now, { session: "s1" })).toBe(true);
    expect(abandoned(runLabels("r1", "s2"), now, { session: "s1" })).toBe(false);
    expect(abandoned(runLabels("r1"), now, { session: "s1" })).toBe(false);
  });
});
