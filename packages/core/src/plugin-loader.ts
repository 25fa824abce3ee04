/**
 * Finds, imports and checks driver plugins. A spec is a short name (`fake`), a package name
 * (`@acme/virtkit-driver-x`, `virtkit-driver-x/plugin`) or a `.js`/`.mjs` file (path or `file:`
 * URL). Packages are resolved from the caller's directory (`cwd`), not from this package, so a
 * driver installed in the user's project is found; the resolution follows the package's
 * `exports` map with the conditions `import`/`node`/`default`, as Node's own ESM resolver does
 * (Node 20 cannot resolve from another directory without a flag).
 */
import { existsSync, readFileSync, statSync } from "node:fs";
import { dirname, isAbsolute, join, resolve as resolvePath } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import semver from "semver";
import type { z } from "zod";
import { CONTRACT_VERSION } from "./driver.js";
import { DriverLoadError, InvalidInputError, OperationAbortedError } from "./errors.js";
import type { DriverPlugin } from "./plugin.js";
import { REDACTED } from "./logger.js";
import { scrubOptionSecrets } from "./redact-options.js";

/** Short names of the drivers virtkit knows, and their packages. */
export const KNOWN_DRIVERS: Readonly<Record<string, string>> = Object.freeze({
  fake: "@virtkit/driver-fake",
  libvirt: "@virtkit/driver-libvirt",
  xenapi: "@virtkit/driver-xenapi",
});

/** Options of {@link loadDriverPlugin}. */
export interface LoadDriverPluginOptions {
  /** Where relative paths and packages are resolved from; default `process.cwd()`. */
  readonly cwd?: string;
  /** More directories to resolve packages from when `cwd` has none (e.g. the CLI's own). */
  readonly paths?: readonly string[];
  /** Abandons the load; it rejects with `OperationAbortedError`. */
  readonly signal?: AbortSignal;
}

const SHORT_NAME_RE = /^[a-z0-9][a-z0-9._-]*$/;
const PACKAGE_RE = /^(?:@[a-z0-9-~][a-z0-9-._~]*\/)?[a-z0-9-~][a-z0-9-._~]*(?:\/[A-Za-z0-9._~/-]+)?$/;
const DRIVER_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;
const CONDITIONS = new Set(["import", "node", "module-sync", "default"]);

/** True when `spec` names a file rather than a package. */
function isPathSpec(spec: string, cwd: string): boolean {
  if (spec.startsWith("file:") || isAbsolute(spec) || /^\.\.?[/\\]/.test(spec)) return true;
  // `driver.mjs` is a path when such a file exists; `socket.io`-style package names stay packages.
  return /\.m?js$/.test(spec) && existsSync(resolvePath(cwd, spec));
}

/** The packages to try for `spec`, best first. */
export function pluginCandidates(spec: string): string[] {
  const known = KNOWN_DRIVERS[spec];
  if (known) return [known];
  if (SHORT_NAME_RE.test(spec)) return [`@virtkit/driver-${spec}`, `virtkit-driver-${spec}`, spec];
  return [spec];
}

/**
 * Loads a driver plugin: resolves `spec`, imports it, validates its manifest (export `plugin` or
 * default) and its contract range against {@link CONTRACT_VERSION}. Every failure is a
 * `DriverLoadError` whose reason says what went wrong.
 */
export async function loadDriverPlugin(spec: string, options: LoadDriverPluginOptions = {}): Promise<DriverPlugin> {
  if (typeof spec !== "string" || spec.trim().length === 0)
    throw new DriverLoadError(String(spec), "empty driver spec");
  const signal = options.signal;
  if (signal?.aborted) throw new OperationAbortedError(`load driver ${spec}`, { cause: signal.reason });
  const cwd = resolvePath(options.cwd ?? process.cwd());
  const url = isPathSpec(spec, cwd) ? fileSpecUrl(spec, cwd) : packageSpecUrl(spec, [cwd, ...(options.paths ?? [])]);
  let mod: unknown;
  try {
    mod = await abortable(import(url), signal, `load driver ${spec}`);
  } catch (e) {
    if (e instanceof OperationAbortedError) throw e;
    throw new DriverLoadError(spec, `importing ${url} failed: ${messageOf(e)}`, { cause: e });
  }
  return validatePluginManifest(extractManifest(mod), spec);
}

function fileSpecUrl(spec: string, cwd: string): string {
  let url: URL;
  try {
    url = spec.startsWith("file:") ? new URL(spec) : pathToFileURL(resolvePath(cwd, spec));
  } catch (e) {
    throw new DriverLoadError(spec, "not a valid file URL", { cause: e });
  }
  let file: string;
  try {
    file = fileURLToPath(new URL(url.pathname, "file://"));
  } catch (e) {
    // e.g. an encoded `/` (`%2F`) or NUL, which Node refuses with a raw TypeError.
    throw new DriverLoadError(spec, "not a valid file URL", { cause: e });
  }
  if (!/\.m?js$/.test(file)) throw new DriverLoadError(spec, "a driver file must be a .js or .mjs module");
  if (!existsSync(file) || !statSync(file).isFile()) throw new DriverLoadError(spec, `no such file: ${file}`);
  // The query (if any) is kept: callers use it to bypass the module cache.
  return url.href;
}

function packageSpecUrl(spec: string, bases: readonly string[]): string {
  const candidates = pluginCandidates(spec);
  for (const candidate of candidates) {
    if (!PACKAGE_RE.test(candidate)) continue;
    const file = resolvePackage(candidate, bases, spec);
    if (file) return pathToFileURL(file).href;
  }
  if (!candidates.some((c) => PACKAGE_RE.test(c))) {
    throw new DriverLoadError(spec, "not a short name, a package name or a path to a .js/.mjs file");
  }
  throw new DriverLoadError(spec, `not found (tried ${candidates.join(", ")} from ${bases.join(", ")})`);
}

function splitPackage(name: string): { pkg: string; subpath: string } {
  const parts = name.split("/");
  const n = name.startsWith("@") ? 2 : 1;
  const rest = parts.slice(n).join("/");
  return { pkg: parts.slice(0, n).join("/"), subpath: rest ? `./${rest}` : "." };
}

function readJson(file: string): Record<string, unknown> | undefined {
  try {
    const v: unknown = JSON.parse(readFileSync(file, "utf8"));
    return typeof v === "object" && v !== null ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** The entry file of package `name` seen from one of `bases`, or undefined when it is not installed. */
function resolvePackage(name: string, bases: readonly string[], spec: string): string | undefined {
  const { pkg, subpath } = splitPackage(name);
  for (const base of bases) {
    let dir = resolvePath(base);
    let nearestChecked = false;
    for (;;) {
      // Self-reference: a driver author running virtkit inside their own package.
      if (!nearestChecked && existsSync(join(dir, "package.json"))) {
        nearestChecked = true;
        const own = readJson(join(dir, "package.json"));
        if (own?.name === pkg && own.exports !== undefined) return entryOf(dir, own, subpath, spec);
      }
      const pkgDir = join(dir, "node_modules", pkg);
      const manifest = existsSync(join(pkgDir, "package.json")) ? readJson(join(pkgDir, "package.json")) : undefined;
      if (manifest) return entryOf(pkgDir, manifest, subpath, spec);
      const parent = dirname(dir);
      if (parent === dir) break;
      dir = parent;
    }
  }
  return undefined;
}

function entryOf(pkgDir: string, manifest: Record<string, unknown>, subpath: string, spec: string): string {
  let rel: string | null | undefined;
  if (manifest.exports !== undefined && manifest.exports !== null) {
    rel = resolveExports(manifest.exports, subpath);
    if (!rel) throw new DriverLoadError(spec, `package ${pkgDir} does not export "${subpath}" for import`);
  } else if (subpath === ".") {
    rel = typeof manifest.main === "string" ? manifest.main : "index.js";
  } else {
    rel = subpath;
  }
  const file = resolvePath(pkgDir, rel);
  if (!existsSync(file))
    throw new DriverLoadError(spec, `package entry ${file} does not exist (is the package built?)`);
  return file;
}

/** Node's PACKAGE_EXPORTS_RESOLVE for the import conditions, including `*` patterns. */
function resolveExports(exportsField: unknown, subpath: string): string | null {
  const isSubpathMap =
    typeof exportsField === "object" &&
    exportsField !== null &&
    !Array.isArray(exportsField) &&
    Object.keys(exportsField).some((k) => k.startsWith("."));
  const map: Record<string, unknown> = isSubpathMap ? (exportsField as Record<string, unknown>) : { ".": exportsField };
  if (Object.hasOwn(map, subpath)) return resolveTarget(map[subpath], undefined);
  let best: { key: string; match: string } | undefined;
  for (const key of Object.keys(map)) {
    const star = key.indexOf("*");
    if (star < 0) continue;
    const prefix = key.slice(0, star);
    const suffix = key.slice(star + 1);
    if (subpath.startsWith(prefix) && subpath.endsWith(suffix) && subpath.length >= key.length) {
      if (!best || prefix.length > best.key.indexOf("*")) {
        best = { key, match: subpath.slice(prefix.length, subpath.length - suffix.length) };
      }
    }
  }
  return best ? resolveTarget(map[best.key], best.match) : null;
}

function resolveTarget(target: unknown, match: string | undefined): string | null {
  if (typeof target === "string") {
    if (!target.startsWith("./")) return null;
    return match === undefined ? target : target.replaceAll("*", match);
  }
  if (Array.isArray(target)) {
    for (const t of target) {
      const r = resolveTarget(t, match);
      if (r) return r;
    }
    return null;
  }
  if (typeof target === "object" && target !== null) {
    for (const [cond, value] of Object.entries(target)) {
      if (!CONDITIONS.has(cond)) continue;
      const r = resolveTarget(value, match);
      if (r) return r;
    }
  }
  return null;
}

async function abortable<T>(promise: Promise<T>, signal: AbortSignal | undefined, operation: string): Promise<T> {
  if (!signal) return promise;
  let onAbort: (() => void) | undefined;
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(new OperationAbortedError(operation, { cause: signal.reason }));
    signal.addEventListener("abort", onAbort, { once: true });
  });
  try {
    return await Promise.race([promise, aborted]);
  } finally {
    if (onAbort) signal.removeEventListener("abort", onAbort);
  }
}

function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

function extractManifest(mod: unknown): unknown {
  if (typeof mod !== "object" || mod === null) return undefined;
  const m = mod as { plugin?: unknown; default?: unknown };
  if (m.plugin !== undefined) return m.plugin;
  const d = m.default;
  // A CommonJS plugin arrives as `default: module.exports`.
  if (typeof d === "object" && d !== null && (d as { kind?: unknown }).kind === undefined) {
    return (d as { plugin?: unknown }).plugin ?? d;
  }
  return d;
}

/**
 * Checks that `value` is a driver plugin manifest this virtkit can use: `kind`, `name`, a semver
 * `version`, a `contractVersion` range that {@link CONTRACT_VERSION} satisfies, a `description`,
 * an `optionsSchema` with `safeParse`, a `register` function and, optionally, a
 * `conformanceEnvironment` function.
 */
export function validatePluginManifest(value: unknown, spec: string): DriverPlugin {
  if (typeof value !== "object" || value === null) {
    throw new DriverLoadError(
      spec,
      "the module exports no plugin manifest (expected an export `plugin` or a default export)",
    );
  }
  const m = value as Record<string, unknown>;
  const problems: string[] = [];
  if (m.kind !== "virtkit-driver") problems.push('kind must be "virtkit-driver"');
  if (typeof m.name !== "string" || !DRIVER_NAME_RE.test(m.name)) {
    problems.push("name must be 1..63 letters, digits, '.', '_', '-'");
  }
  if (typeof m.version !== "string" || semver.valid(m.version) === null)
    problems.push("version must be a semver version");
  const range = m.contractVersion;
  if (typeof range !== "string" || semver.validRange(range) === null) {
    problems.push("contractVersion must be a semver range (e.g. ^1.0.0)");
  }
  if (typeof m.description !== "string") problems.push("description must be a string");
  const schema = m.optionsSchema;
  if ((typeof schema !== "object" && typeof schema !== "function") || schema === null) {
    problems.push("optionsSchema is missing (a zod schema)");
  } else if (typeof (schema as { safeParse?: unknown }).safeParse !== "function") {
    problems.push("optionsSchema must be a zod schema (no safeParse)");
  }
  if (typeof m.register !== "function") problems.push("register must be a function");
  if (m.conformanceEnvironment !== undefined && typeof m.conformanceEnvironment !== "function") {
    problems.push("conformanceEnvironment, when given, must be a function");
  }
  if (problems.length > 0) throw new DriverLoadError(spec, `invalid plugin manifest: ${problems.join("; ")}`);
  if (!semver.satisfies(CONTRACT_VERSION, range as string, { includePrerelease: true })) {
    throw new DriverLoadError(spec, `built for contract ${String(range)}, this virtkit implements ${CONTRACT_VERSION}`);
  }
  return value as DriverPlugin;
}

const OPTION_KEY_RE = /^[A-Za-z][A-Za-z0-9_.-]*$/;

/**
 * Turns `--option key=value` strings into a record (`["uri=test:///default","timeout=5"]` →
 * `{uri: "test:///default", timeout: "5"}`); the value is everything after the first `=`.
 * A missing `=`, an empty or malformed key or a duplicate key is an `InvalidInputError` naming the
 * option by position; neither keys nor values are echoed (a pasted password or a URI with
 * credentials may land on either side of the `=`).
 */
export function parseOptionPairs(pairs: readonly string[]): Record<string, string> {
  const out = new Map<string, string>();
  const firstAt = new Map<string, number>();
  pairs.forEach((pair, i) => {
    if (typeof pair !== "string") throw new InvalidInputError("option", `option #${i + 1} must be a string`);
    const eq = pair.indexOf("=");
    if (eq < 0) throw new InvalidInputError("option", `option #${i + 1} must be key=value`);
    const key = pair.slice(0, eq);
    if (key.length === 0) throw new InvalidInputError("option", `option #${i + 1} has an empty key`);
    if (!OPTION_KEY_RE.test(key)) {
      throw new InvalidInputError(
        "option",
        `option #${i + 1} has a malformed key (${characters(key)}): keys start with a letter and hold letters, digits, '_', '.', '-'`,
      );
    }
    const first = firstAt.get(key);
    if (first !== undefined) throw new InvalidInputError("option", `option #${i + 1} repeats the key of option #${first}`);
    firstAt.set(key, i + 1);
    out.set(key, pair.slice(eq + 1));
  });
  return Object.fromEntries(out);
}

/** `13 characters`: what may be said about a key that must not be shown. */
function characters(text: string): string {
  const n = [...text].length;
  return `${n} character${n === 1 ? "" : "s"}`;
}

interface ParseIssue {
  readonly code?: string;
  readonly path?: readonly PropertyKey[];
  readonly message: string;
  readonly keys?: readonly string[];
}

type SafeParseResult = { success: true; data: unknown } | { success: false; error: { issues: readonly ParseIssue[] } };

/**
 * Validates (and coerces) raw options with the plugin's schema. Unknown keys are refused even
 * when the plugin's schema would strip or pass them through; a failure is an
 * `InvalidInputError` on `option.<key>` with the schema's message.
 */
export function validatePluginOptions<S extends z.ZodType>(plugin: DriverPlugin<S>, raw: unknown = {}): z.output<S> {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    throw new InvalidInputError("options", "must be an object of option names to values");
  }
  const schema = plugin.optionsSchema as unknown as { shape?: unknown; safeParse(data: unknown): SafeParseResult };
  const shape = schema.shape;
  const given = Object.keys(raw);
  // Only the schema's own keys may be shown: a key the user typed may be a pasted secret.
  const known = typeof shape === "object" && shape !== null ? Object.keys(shape) : undefined;
  const unknownKey = (key: string): InvalidInputError => {
    const at = given.indexOf(key);
    const which = at >= 0 ? `#${at + 1} ` : "";
    const list = known === undefined ? "" : `; known keys of driver ${plugin.name}: ${known.length ? known.join(", ") : "none"}`;
    return new InvalidInputError("option", `unknown option key ${which}(${characters(key)})${list}`);
  };
  if (known !== undefined) {
    for (const key of given) if (!known.includes(key)) throw unknownKey(key);
  }
  // Messages are scrubbed of every key the schema does not declare, then of secret values (keys
  // first: a short secret value could otherwise cut a key apart before it is found).
  const scrub = (text: string): string => scrubOptionSecrets(scrubUnknownKeys(text, given, known), raw);
  let result: SafeParseResult;
  try {
    result = schema.safeParse(raw);
  } catch (e) {
    // e.g. an async refinement: the schema cannot be used synchronously.
    // No `cause`: the schema's exception may carry the option values (a password) in its fields.
    throw new DriverLoadError(plugin.name, `its options schema failed: ${scrub(messageOf(e))}`);
  }
  if (result.success) return result.data as z.output<S>;
  const issue = result.error.issues[0];
  if (!issue) throw new InvalidInputError("options", "rejected by the driver's schema");
  const path = (issue.path ?? []).map(String);
  if (issue.code === "unrecognized_keys" && issue.keys?.[0] !== undefined && path.length === 0) throw unknownKey(issue.keys[0]);
  // A path through a key the schema does not declare (a record schema) would echo the user's key.
  const showable = path.length === 0 || known?.includes(path[0]!) === true;
  const field = path.length === 0 ? "options" : showable ? `option.${path.join(".")}` : "option";
  // A plugin's own message may echo the value it refused (`"<value>" is not a valid ...`).
  throw new InvalidInputError(field, scrub(issue.message));
}

/**
 * `text` without any of `given`'s keys that `known` does not hold (all of them when nothing is
 * known). Keys under 4 characters stay: hiding them would mangle every word holding them, and
 * they hide little.
 */
function scrubUnknownKeys(text: string, given: readonly string[], known: readonly string[] | undefined): string {
  let out = text;
  const hidden = given.filter((k) => k.length >= 4 && !known?.includes(k)).sort((a, b) => b.length - a.length);
  for (const key of hidden) out = out.split(key).join(REDACTED);
  return out;
}
