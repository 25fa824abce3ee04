import { configDefaults, defineConfig } from "vitest/config";

// The nested-QEMU tests (`*.nested.test.ts`) run on their own, after every other package's tests
// (`pnpm test` -> scripts/test.sh): real guests under TCG want the machine's cores to themselves.
export default defineConfig({
  test: {
    exclude: [...configDefaults.exclude, "src/**/*.nested.test.ts"],
  },
});
