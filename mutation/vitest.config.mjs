/**
 * The vitest project StrykerJS runs: the conformance suite against the fake, built from the
 * SOURCES of both packages (in Stryker's sandbox those are the mutated copies), never from dist.
 */
import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

const at = (path) => fileURLToPath(new URL(path, import.meta.url));

export default defineConfig({
  root: at(".."),
  resolve: {
    // Whatever imports the fake by package name gets the (mutated) sources too.
    alias: [{ find: /^@virtkit\/driver-fake$/, replacement: at("../packages/driver-fake/src/index.ts") }],
  },
  test: {
    include: ["mutation/**/*.mutation.test.ts"],
    pool: "forks",
    maxWorkers: 1,
    fileParallelism: false,
    testTimeout: 90_000,
  },
});
