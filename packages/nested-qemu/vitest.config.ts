import { defineConfig } from "vitest/config";

// Integration tests build images and boot guests under TCG: minutes, not seconds. Logs are the
// figures the tests print, so they are shown.
export default defineConfig({ test: { testTimeout: 600_000, hookTimeout: 900_000 } });
