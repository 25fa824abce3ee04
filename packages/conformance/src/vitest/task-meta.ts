/**
 * What the kit stores on each scenario test (`task.meta`), for its reporters. Types only: the
 * reporter side imports this without loading vitest's test API.
 */
import type { DriverDescriptor, ScenarioLevel, ScenarioResult } from "../types.js";

declare module "vitest" {
  interface TaskMeta {
    /** The conformance result of this scenario test. */
    virtkit?: ScenarioResult;
    /** The notes of the environment the scenario ran in. */
    virtkitNotes?: readonly string[];
    /** The run this scenario belongs to (driver and level), for the kit's vitest reporter. */
    virtkitRun?: { readonly driver: DriverDescriptor; readonly level: ScenarioLevel };
  }
}

export {};
