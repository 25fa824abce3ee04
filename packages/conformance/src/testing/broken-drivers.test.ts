import { describe, expect, it } from "vitest";
import { BROKEN_VARIANTS } from "./broken-drivers.js";
import { measureCatchRate } from "./catch-rate.js";

describe("broken variants of the fake driver", () => {
  it("ships at least 50 variants, each with a distinct name, 15+ of them for the state table in every class", () => {
    expect(BROKEN_VARIANTS.length).toBeGreaterThanOrEqual(50);
    expect(new Set(BROKEN_VARIANTS.map((v) => v.name)).size).toBe(BROKEN_VARIANTS.length);
    const classified = BROKEN_VARIANTS.filter((v) => v.defectClass !== undefined);
    expect(classified.length).toBeGreaterThanOrEqual(15);
    expect(new Set(classified.map((v) => v.defectClass))).toEqual(
      new Set(["wrong-state", "illegal-accepted", "refusal", "events", "views", "snapshots"]),
    );
  });

  it("catches every one, where expected, while the healthy fake passes everything", async () => {
    const report = await measureCatchRate();
    const notPassing = report.healthy.results.filter((r) => r.status !== "pass");
    expect(notPassing.map((r) => `${r.id}: ${r.reason}`)).toEqual([]);
    const lines = report.verdicts.map(
      (v) => `${v.caught ? "caught" : "MISSED"}  ${v.name.padEnd(34)} ${v.failedBy.map((f) => f.id).join(", ")}`,
    );
    const classes = Object.entries(report.byClass).map(([c, n]) => `${c} ${n.caught}/${n.total}`);
    console.log(
      `catch rate: ${report.caught}/${report.total} in ${report.durationMs} ms (by class: ${classes.join(", ")})\n${lines.join("\n")}`,
    );
    expect(report.verdicts.filter((v) => !v.caught).map((v) => v.name)).toEqual([]);
    expect(
      report.verdicts
        .filter((v) => !v.caughtWhereExpected)
        .map((v) => `${v.name}: ${v.failedBy.map((f) => f.id).join(", ")}`),
    ).toEqual([]);
  }, 300_000);
});
