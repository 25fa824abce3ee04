/**
 * vitest is a peer dependency (the author's own copy runs the kit's tests): this checks that the
 * copy the kit resolves is one it works with, and says so plainly when it is not, instead of the
 * `Cannot read properties of undefined` a mismatched copy dies with.
 */
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";

/** The vitest range the kit is tested with (keep in step with `peerDependencies` in package.json). */
export const SUPPORTED_VITEST = ">=3.2.0 <5";

/** True when `version` (x.y.z) is in {@link SUPPORTED_VITEST}. */
export function isSupportedVitest(version: string): boolean {
  const m = /^(\d+)\.(\d+)\.\d+/.exec(version);
  if (!m) return false;
  const major = Number(m[1]);
  const minor = Number(m[2]);
  return (major === 3 && minor >= 2) || major === 4;
}

/** The version and place of the vitest this package resolves, or undefined when none is installed. */
export function resolvedVitest(from: string = import.meta.url): { version: string; path: string } | undefined {
  try {
    const path = createRequire(from).resolve("vitest/package.json");
    const { version } = JSON.parse(readFileSync(path, "utf8")) as { version?: unknown };
    return typeof version === "string" ? { version, path } : undefined;
  } catch {
    return undefined;
  }
}

/** Throws a clear error when vitest is missing or outside {@link SUPPORTED_VITEST}. */
export function assertSupportedVitest(lookup: () => { version: string; path: string } | undefined = resolvedVitest): void {
  const found = lookup();
  if (!found) {
    throw new Error(
      `@virtkit/conformance's vitest runner needs vitest ${SUPPORTED_VITEST} (a peer dependency): install it, e.g. npm i -D vitest@4`,
    );
  }
  if (!isSupportedVitest(found.version)) {
    throw new Error(
      `@virtkit/conformance works with vitest ${SUPPORTED_VITEST}, but found vitest ${found.version} (${found.path}); ` +
        "install a supported vitest, or run the kit without vitest: virtkit conformance run --runner direct",
    );
  }
}
