// @ts-check
/**
 * Mutation score of the conformance suite against the fake driver's behavioural code
 * (`pnpm mutation`, which prints the score and the survivors). The tests are the kit's scenarios
 * run on the fake from sources (mutation/); the scope is `mutate` below (the plugin, index, logger
 * and migration plumbing are not mutated).
 * Incremental: reports/stryker-incremental.json (a machine-local cache, ignored by git like all of
 * reports/) lets a rerun test only mutants whose code or covering scenarios changed.
 */
import { readFileSync } from "node:fs";

/**
 * The measured part of fake-driver.ts: its lifecycle, snapshot and admin-password sections, from
 * `// -- lifecycle --` to the line before `// -- live migration --` (found each run, so the scope
 * follows the code; the plumbing above and the migration section below are not measured).
 */
function measuredDriverLines() {
  const file = "packages/driver-fake/src/fake-driver.ts";
  const lines = readFileSync(new URL(file, import.meta.url), "utf8").split("\n");
  const at = (marker) => {
    const i = lines.findIndex((l) => l.trim() === marker);
    if (i < 0) throw new Error(`${file}: no line "${marker}" (the measured scope's bounds)`);
    return i + 1;
  };
  return `${file}:${at("// -- lifecycle --")}-${at("// -- live migration --") - 1}`;
}

/** @type {import("@stryker-mutator/api/core").PartialStrykerOptions} */
const config = {
  testRunner: "vitest",
  plugins: ["@stryker-mutator/vitest-runner"],
  vitest: { configFile: "mutation/vitest.config.mjs", related: false },
  // The scope every measurement since the fourth reports (MUTATION.md): the fake's state table,
  // instance and host, and the measured sections of the driver.
  mutate: [
    measuredDriverLines(),
    "packages/driver-fake/src/transitions.ts",
    "packages/driver-fake/src/fake-instance.ts",
    "packages/driver-fake/src/fake-host.ts",
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
