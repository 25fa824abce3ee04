import { describe, expect, it } from "vitest";
import { SCENARIOS } from "../scenarios.js";
import { explainScenario, findScenario, renderExplanation } from "./explain.js";
import { SCENARIO_DOCS, scenarioDoc } from "./scenario-docs.js";

describe("scenario documentation", () => {
  it("has words for every scenario, and none for a scenario that does not exist", () => {
    expect(SCENARIOS.filter((s) => scenarioDoc(s.id) === undefined).map((s) => s.id)).toEqual([]);
    const ids = new Set(SCENARIOS.map((s) => s.id));
    expect(Object.keys(SCENARIO_DOCS).filter((id) => !ids.has(id))).toEqual([]);
  });

  it("explains a scenario by tracing it: steps, calls, controls, both paths", async () => {
    const e = await explainScenario(findScenario("lifecycle.power-off-fallback")!);
    expect(e).toMatchObject({ id: "lifecycle.power-off-fallback", level: "MUST", capability: null, check: "checkPowerOffFallback" });
    expect(e.rule).toMatch(/ACPI/);
    expect(e.declared.status).toBe("pass");
    expect(e.declared.steps[0]).toBe("spawn <prefix>-1");
    expect(e.declared.controls).toEqual(["guestControls.ignoreAcpi"]);
    expect(e.declared.calls).toContain("powerOff");
    expect(e.undeclared).toBeUndefined();

    const pause = await explainScenario(findScenario("lifecycle.pause-unpause")!);
    expect(pause.undeclared).toMatchObject({ status: "unsupported" });
    expect(pause.undeclared?.calls).toContain("pause");
    const text = renderExplanation(pause);
    expect(text).toContain("When pause is not declared (refusal check)");
    expect(text).toContain("Nova behaviour:");

    const move = await explainScenario(findScenario("migration.live")!);
    expect(move.declared.controls).toContain("a second host");
  });
});
