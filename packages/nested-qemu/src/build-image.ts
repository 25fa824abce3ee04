#!/usr/bin/env node
/**
 * Builds the nested-QEMU image ahead of time: `node dist/build-image.js [--force] [--verbose]`.
 * Prints each layer's outcome and time; with --verbose every line of the build.
 */
import { configureTestcontainers } from "./docker-engine.js";
import { ensureImage } from "./image.js";

const args = new Set(process.argv.slice(2));
const verbose = args.has("--verbose") || args.has("-v");
const host = configureTestcontainers();
const controller = new AbortController();
process.once("SIGINT", () => controller.abort(new Error("interrupted")));
const secs = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
console.log(`nested-qemu image on ${host}`);
try {
  const image = await ensureImage({
    force: args.has("--force"),
    signal: controller.signal,
    onProgress: (p) => {
      const at = `[${secs(p.elapsedMs).padStart(7)}] ${p.layer.padEnd(10)}`;
      if (p.phase === "output") {
        // Steps and the guest's own summary lines always; the rest with --verbose.
        if (
          verbose ||
          /^Step \d+\/\d+|^make-guest:|^debootstrap|^importing|^I: Base system installed/.test(p.message)
        ) {
          console.log(`${at} ${p.message}`);
        }
      } else {
        console.log(`${at} ${p.phase} ${p.message}`);
      }
    },
  });
  console.log(`image ${image.image} ready in ${secs(image.totalMs)}`);
  for (const l of image.layers)
    console.log(`  ${l.name.padEnd(10)} ${l.built ? "built " : "cached"} ${secs(l.ms)}  ${l.tag}`);
} catch (err) {
  console.error(`nested-qemu image build failed: ${err instanceof Error ? err.message : String(err)}`);
  process.exitCode = 1;
}
