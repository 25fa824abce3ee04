import { defineConfig } from "vitest/config";

// Several tests run the whole kit (200 scenarios) against a broken fake; under turbo's parallel
// package runs on two cores one such run can take well over vitest's 5 s default (seen: 5.5 s).
export default defineConfig({
  test: { testTimeout: 60_000, hookTimeout: 60_000 },
});
