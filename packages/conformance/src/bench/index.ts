export {
  BENCH_SCHEMA,
  BENCH_OPERATIONS,
  BENCH_OPERATION_CAPABILITY,
  BENCH_SELECTABLE,
  BENCH_THROUGHPUT,
  parseBenchReport,
} from "./bench-report.js";
export type {
  BenchOperation,
  BenchSelectable,
  BenchOperationResult,
  BenchThroughput,
  BenchSettings,
  BenchMachine,
  BenchError,
  BenchReport,
  LatencyStats,
} from "./bench-report.js";
export { latencyStats, percentile } from "./latency-stats.js";
export {
  runBench,
  benchSettings,
  parseBenchOperations,
  DEFAULT_BENCH_COUNT,
  DEFAULT_BENCH_TIMEOUT_MS,
  DEFAULT_BENCH_SETUP_TIMEOUT_MS,
} from "./run-bench.js";
export type { BenchOptions } from "./run-bench.js";
export { renderBench, benchSummary, formatMs } from "./render-bench.js";
export { benchByColumn, benchProvenance } from "./matrix-bench.js";
export type { MatrixRenderOptions } from "./matrix-bench.js";
