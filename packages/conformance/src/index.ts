export { runConformance, collectNotes, notRun, planRun, scheduleScenarios, shuffle } from "./runner.js";
export type { ConformanceRunOptions, RunPlan, PlannedScenario } from "./runner.js";
export { DriverSetupError, withProbeDriver } from "./driver-probe.js";
export type { DriverSetupStage, ProbeOptions } from "./driver-probe.js";
export { driverLocation } from "./failure-location.js";
export { explainScenario, findScenario, renderExplanation } from "./docs/explain.js";
export type { ScenarioExplanation, ScenarioTrace } from "./docs/explain.js";
export { SCENARIO_DOCS, FAMILY_DOCS, scenarioDoc } from "./docs/scenario-docs.js";
export type { ScenarioDoc } from "./docs/scenario-docs.js";
export {
  runScenario,
  declares,
  refusalOf,
  environmentLimit,
  scenarioDeadlineMs,
  DEFAULT_SCENARIO_TIMEOUT_MS,
  DEFAULT_BOOT_IMAGE,
  DEFAULT_CLEANUP_TIMEOUT_MS,
  DEFAULT_SLOW_CLEANUP_MS,
} from "./make-test.js";
export type { MakeTestOptions } from "./make-test.js";
export { SCENARIOS, SCENARIO_GROUPS, selectScenarios } from "./scenarios.js";
export type {
  ScenarioContext,
  ScenarioDefinition,
  AdminPasswordService,
  AdminPasswordServiceFactory,
} from "./scenario.js";
export { SCENARIO_LEVELS, levelCounts, summarize, withRunErrors } from "./types.js";
export type {
  ScenarioLevel,
  ScenarioStatus,
  CapabilityMismatch,
  ScenarioResult,
  RunSummary,
  DriverDescriptor,
  RunReport,
} from "./types.js";
export {
  ConformanceFailure,
  WorksButUndeclaredError,
  EnvironmentLimitError,
  check,
  checkEqual,
  fail,
  skipForEnvironment,
  expectRejects,
  expectUnsupported,
  expectState,
  expectGone,
  expectIllegal,
} from "./assertions.js";
export { MIGRATION_CASES, VIR_MIGRATE } from "./checks/migration.js";
export { stateMatrixScenarios, stateScenario } from "./checks/state-matrix.js";
export {
  EXPECTED_TRANSITIONS,
  MATRIX_STATES,
  MATRIX_OPERATIONS,
  REACHABLE_STATES,
  STATE_POWER,
  STATE_CAPABILITY,
  OPERATION_CAPABILITY,
  expectedCell,
  describeOutcome,
  revertCapturedState,
} from "./expected-transitions.js";
export type {
  MatrixState,
  MatrixOperation,
  EventSequence,
  RefusalClass,
  StateOutcome,
  RefusalOutcome,
  GoneOutcome,
  Outcome,
  ExpectedCell,
} from "./expected-transitions.js";
export type { MigrationCase } from "./checks/migration.js";
export { fakeEnvironment } from "./environments/fake-environment.js";
export type { FakeEnvironmentOptions, FakeWrapContext } from "./environments/fake-environment.js";
export { computeServiceFactory } from "./compute-service-adapter.js";
export { resolveDriver, declaredCapabilities, genericEnvironment, pluginEnvironment } from "./resolve-driver.js";
export type { ResolvedDriver, ResolveDriverOptions } from "./resolve-driver.js";
export { runWithVitest, entryFile } from "./vitest/run-vitest.js";
export type { RunWithVitestOptions, VitestRunSettings } from "./vitest/run-vitest.js";
export { SUPPORTED_VITEST } from "./vitest/vitest-version.js";
export {
  HumanReporter,
  JsonReporter,
  JunitReporter,
  TapReporter,
  REPORTERS,
  createReporter,
  xmlEscape,
} from "./reporters/index.js";
export type { ConformanceReporter, HumanReporterOptions, ReporterName, WriteFn } from "./reporters/index.js";
export { stableStringify } from "./stable-json.js";
export { buildMatrix, renderMarkdown, renderHtml, htmlEscape, STATUS_SYMBOL } from "./matrix/index.js";
export type { SupportMatrix, MatrixCell, MatrixDriver, MatrixScenario, UnavailableDriver } from "./matrix/index.js";
export {
  explore,
  exploreEnvironment,
  formatExploreResult,
  withExploreErrors,
  EXPLORE_OPERATIONS,
  ExploreDivergence,
  EXPLORE_SCENARIO,
  EXPLORE_SCENARIO_SEED,
} from "./explore/index.js";
export type { ExploreOptions, ExploreResult, ExploreTarget, TargetProvider } from "./explore/index.js";
export {
  runBench,
  benchSettings,
  parseBenchOperations,
  parseBenchReport,
  renderBench,
  benchSummary,
  latencyStats,
  BENCH_SCHEMA,
  BENCH_OPERATIONS,
  BENCH_OPERATION_CAPABILITY,
  BENCH_SELECTABLE,
  BENCH_THROUGHPUT,
  DEFAULT_BENCH_COUNT,
  DEFAULT_BENCH_TIMEOUT_MS,
  benchByColumn,
} from "./bench/index.js";
export type {
  BenchOptions,
  BenchReport,
  BenchOperation,
  BenchOperationResult,
  BenchSelectable,
  BenchSettings,
  BenchThroughput,
  BenchError,
  LatencyStats,
  MatrixRenderOptions,
} from "./bench/index.js";
