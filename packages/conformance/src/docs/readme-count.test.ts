// The root README states how many scenarios "the whole suite" has; it must be the suite's real size.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { SCENARIOS } from "../scenarios.js";

const readme = readFileSync(new URL("../../../../README.md", import.meta.url), "utf8");

describe("the root README", () => {
  it("states the suite's real number of scenarios", () => {
    const stated = /through the whole suite \((\d+) scenarios\)/.exec(readme)?.[1];
    expect(stated, "README.md no longer says 'through the whole suite (N scenarios)'").toBeDefined();
    expect(Number(stated)).toBe(SCENARIOS.length);
  });
});
