import { describe, expect, it } from "vitest";
import { SCENARIOS } from "../scenarios.js";
import { BROKEN_VARIANTS } from "./broken-drivers.js";
import { DEPTH_VARIANTS } from "./broken-drivers-depth.js";
import { measureCatchRate } from "./catch-rate.js";

const LEVEL = new Map(SCENARIOS.map((s) => [s.id, s.level]));

describe("the deeper broken variants of the fake driver", () => {
  it("ships at least 100 new variants, named apart from the first set, each with a class", () => {
    expect(DEPTH_VARIANTS.length).toBeGreaterThanOrEqual(100);
    const names = new Set([...BROKEN_VARIANTS, ...DEPTH_VARIANTS].map((v) => v.name));
    expect(names.size).toBe(BROKEN_VARIANTS.length + DEPTH_VARIANTS.length);
    expect(DEPTH_VARIANTS.every((v) => v.defectClass !== undefined)).toBe(true);
    for (const v of DEPTH_VARIANTS) for (const id of v.caughtBy) expect(LEVEL.has(id), `${v.name}: ${id}`).toBe(true);
  });

  it("catches every one at MUST level, where expected, while the healthy fake passes everything", async () => {
    const report = await measureCatchRate(DEPTH_VARIANTS);
    const atMust = (v: (typeof report.verdicts)[number]) => v.failedBy.some((f) => LEVEL.get(f.id) === "MUST");
    const lines = report.verdicts.map(
      (v) =>
        `${atMust(v) ? "caught" : v.caught ? "SHOULD" : "MISSED"}  ${v.name.padEnd(44)} ${v.failedBy.map((f) => f.id).join(", ")}`,
    );
    const classes = Object.entries(report.byClass).map(([c, n]) => `${c} ${n.caught}/${n.total}`);
    console.log(
      `deeper catch rate: ${report.caught}/${report.total} in ${report.durationMs} ms (by class: ${classes.join(", ")})\n${lines.join("\n")}`,
    );
    const notPassing = report.healthy.results.filter((r) => r.status !== "pass");
    expect(notPassing.map((r) => `${r.id}: ${r.reason}`)).toEqual([]);
    expect(report.verdicts.filter((v) => !atMust(v)).map((v) => v.name)).toEqual([]);
    expect(
      report.verdicts
        .filter((v) => !v.caughtWhereExpected)
        .map((v) => `${v.name}: ${v.failedBy.map((f) => f.id).join(", ")}`),
    ).toEqual([]);
  }, 600_000);
});
