/**
 * Explicit command discovery (oclif `commands.strategy: explicit`): no directory scan at startup.
 * Command modules import only `@oclif/core` at the top; drivers and the kit load inside `run()`.
 */
import ConformanceList from "./conformance/list.js";
import ConformanceRun from "./conformance/run.js";
import Drivers from "./drivers.js";
import Matrix from "./matrix.js";

/** Command id → class. */
export const COMMANDS = {
  "conformance:run": ConformanceRun,
  "conformance:list": ConformanceList,
  drivers: Drivers,
  matrix: Matrix,
};
