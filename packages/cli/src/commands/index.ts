/**
 * Explicit command discovery (oclif `commands.strategy: explicit`): no directory scan at startup.
 * Command modules import only `@oclif/core` at the top; drivers and the kit load inside `run()`.
 */
import ConformanceBench from "./conformance/bench.js";
import ConformanceExplain from "./conformance/explain.js";
import ConformanceList from "./conformance/list.js";
import ConformanceRun from "./conformance/run.js";
import Drivers from "./drivers.js";
import InitDriver from "./init/driver.js";
import EnvBuild from "./env/build.js";
import EnvList from "./env/list.js";
import Matrix from "./matrix.js";

/** Command id → class. */
export const COMMANDS = {
  "conformance:run": ConformanceRun,
  "conformance:list": ConformanceList,
  "conformance:explain": ConformanceExplain,
  "conformance:bench": ConformanceBench,
  drivers: Drivers,
  "init:driver": InitDriver,
  "env:build": EnvBuild,
  "env:list": EnvList,
  matrix: Matrix,
};
