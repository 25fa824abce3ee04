import { defineConfig } from "vitest/config";

// Only the nested-QEMU tests: two libvirtd hosts in containers, real guests. One file at a time.
export default defineConfig({
  test: {
    include: ["src/**/*.nested.test.ts"],
    fileParallelism: false,
    testTimeout: 900_000,
    hookTimeout: 900_000,
  },
});
