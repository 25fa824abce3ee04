import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { stateMatrixScenarios } from "./checks/state-matrix.js";
import {
  EXPECTED_TRANSITIONS,
  MATRIX_OPERATIONS,
  MATRIX_STATES,
  REACHABLE_STATES,
  ENVIRONMENT_STATES,
  WITH_SNAPSHOT_CELLS,
  describeOutcome,
} from "./expected-transitions.js";

describe("the kit's expected transition table", () => {
  it("has every state x every operation, each with an outcome, and a reason wherever it allows a choice", () => {
    for (const from of MATRIX_STATES) {
      for (const op of MATRIX_OPERATIONS) {
        const cell = EXPECTED_TRANSITIONS[from][op];
        expect(cell.outcomes.length, `${from} ${op}`).toBeGreaterThan(0);
        if (cell.outcomes.length > 1) expect(cell.silent, `${from} ${op} allows a choice`).toBeTruthy();
        for (const o of cell.outcomes) {
          if (o.kind === "refused") expect(o.errors.length, `${from} ${op}`).toBeGreaterThan(0);
          else expect(o.events.length, `${from} ${op}: ${describeOutcome(o)}`).toBeGreaterThan(0);
        }
      }
    }
  });

  it("is the kit's own: nothing of a driver's transition table is imported", () => {
    const source = readFileSync(new URL("./expected-transitions.ts", import.meta.url), "utf8");
    expect(source).not.toMatch(/driver-fake|driver-libvirt|transitions\.js/);
  });

  it("makes one scenario per cell, SHOULD only where the contract says so", () => {
    const scenarios = stateMatrixScenarios();
    expect(REACHABLE_STATES).not.toContain("CRASHED");
    expect(ENVIRONMENT_STATES).toEqual(["CRASHED"]);
    expect(scenarios).toHaveLength(
      (REACHABLE_STATES.length + ENVIRONMENT_STATES.length) * MATRIX_OPERATIONS.length + WITH_SNAPSHOT_CELLS.length,
    );
    // CRASHED cells need the environment's crash control; the with-snapshots ones instance snapshots.
    expect(scenarios.filter((s) => s.id.startsWith("state.crashed.")).every((s) => s.needs !== undefined)).toBe(true);
    expect(
      scenarios.filter((s) => s.id.endsWith(".with-snapshots")).every((s) => s.alsoNeeds?.includes("instanceSnapshots") || s.capability === "instanceSnapshots"),
    ).toBe(true);
    expect(scenarios.find((s) => s.id === "state.crashed.power-on")?.needs?.({ hosts: [] } as never)).toMatch(/crash/);
    expect(new Set(scenarios.map((s) => s.id)).size).toBe(scenarios.length);
    expect(scenarios.filter((s) => s.level === "SHOULD").every((s) => s.id.endsWith(".reboot-soft"))).toBe(true);
    for (const s of scenarios) {
      expect(s.timeoutMs, s.id).toBeLessThanOrEqual(10_000);
      // Soft reboot may fall back to hard when undeclared: no refusal to require; the with-snapshots
      // cells leave the refusal to their plain twin.
      expect(s.refuse === undefined, s.id).toBe(s.id.endsWith(".reboot-soft") || s.id.endsWith(".with-snapshots"));
    }
    expect(scenarios.find((s) => s.id === "state.paused.power-off")).toMatchObject({
      capability: null,
      alsoNeeds: ["pause"],
    });
    expect(scenarios.find((s) => s.id === "state.running.instance-snapshot-revert")).toMatchObject({
      capability: "instanceSnapshots",
    });
  });
});
