// @ts-check
/**
 * Mutation score of the conformance suite against the fake driver's behavioural code
 * (`pnpm mutation`, which prints the score and the survivors). The tests are the kit's scenarios
 * run on the fake from sources (mutation/); the plugin, index and logger wiring is not mutated.
 * Incremental: reports/stryker-incremental.json (a machine-local cache, ignored by git like all of
 * reports/) lets a rerun test only mutants whose code or covering scenarios changed.
 */
/** @type {import("@stryker-mutator/api/core").PartialStrykerOptions} */
const config = {
  testRunner: "vitest",
  plugins: ["@stryker-mutator/vitest-runner"],
  vitest: { configFile: "mutation/vitest.config.mjs", related: false },
  mutate: [
    "packages/driver-fake/src/*.ts",
    "!packages/driver-fake/src/*.test.ts",
    "!packages/driver-fake/src/index.ts",
    "!packages/driver-fake/src/plugin.ts",
    "!packages/driver-fake/src/logger.ts",
    // The qcow2 container of image snapshots: format plumbing the kit sees only by its magic;
    // its own unit tests (qemu-img check where installed) cover it.
    "!packages/driver-fake/src/qcow2-image.ts",
  ],
  coverageAnalysis: "perTest",
  // Two cores shared with everyone else: one test process at a time.
  concurrency: 1,
  incremental: true,
  incrementalFile: "reports/stryker-incremental.json",
  // Inside reports/ (ignored by git), not a new untracked directory at the root.
  tempDirName: "reports/.stryker-tmp",
  ignorePatterns: ["packages/*/dist", "packages/cli", "packages/driver-libvirt", "packages/libvirt-rpc", "packages/nested-qemu", "packages/driver-xenapi", "packages/xapi-simulator", "examples"],
  // event-recorder: every mutant's result as it is tested, so a run cut short still tells something.
  reporters: ["json", "clear-text", "progress", "event-recorder"],
  eventReporter: { baseDir: "reports/mutation/events" },
  jsonReporter: { fileName: "reports/mutation/mutation.json" },
  clearTextReporter: { allowColor: false, logTests: false, reportMutants: false, reportScoreTable: true },
  timeoutMS: 10_000,
  thresholds: { high: 90, low: 85, break: null },
};
export default config;
