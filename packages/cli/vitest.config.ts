import { defineConfig } from "vitest/config";

// These tests spawn the real `virtkit` binary, several times per test; under turbo's parallel
// package runs on two cores a spawn can take well over vitest's 5 s default.
export default defineConfig({
  test: { testTimeout: 60_000, hookTimeout: 60_000 },
});
