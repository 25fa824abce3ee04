/**
 * Finds, imports and checks driver plugins. A spec is a short name (`fake`), a package name
 * (`@acme/virtkit-driver-x`, `virtkit-driver-x/plugin`) or a `.js`/`.mjs` file (path or `file:`
 * URL), or a `.ts`/`.mts` file (Node's own type stripping where it has it, 22.18+, else `tsx` when
 * installed: Node 20 strips no types). Packages are resolved from the caller's directory (`cwd`),
 * not from this package, so a
 * driver installed in the user's project is found; the resolution follows the package's
 * `exports` map with the conditions `import`/`node`/`default`, as Node's own ESM resolver does
 * (Node 20 cannot resolve from another directory without a flag).
 */
import { existsSync, readFileSync, realpathSync, statSync } from "node:fs";
import { dirname, isAbsolute, join, resolve as resolvePath } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import type { StandardSchemaV1 } from "@standard-schema/spec";
import semver from "semver";
import { CONTRACT_VERSION } from "./driver.js";
import { DriverLoadError, InvalidInputError, OperationAbortedError, OperationTimeoutError } from "./errors.js";
import type { DriverPlugin, PluginOptions } from "./plugin.js";
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
  /**
   * Deadline of the import (the module's top-level code, a top-level `await` included) in ms; past
   * it the load rejects with `OperationTimeoutError` naming the file. Default: none.
   */
  readonly timeoutMs?: number;
}

const SHORT_NAME_RE = /^[a-z0-9][a-z0-9._-]*$/;
const PACKAGE_RE = /^(?:@[a-z0-9-~][a-z0-9-._~]*\/)?[a-z0-9-~][a-z0-9-._~]*(?:\/[A-Za-z0-9._~/-]+)?$/;
const DRIVER_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;
const CONDITIONS = new Set(["import", "node", "module-sync", "default"]);
const MODULE_FILE_RE = /\.(?:m?js|m?ts)$/;
const TS_FILE_RE = /\.m?ts$/;

/** True when `spec` names a file rather than a package. */
function isPathSpec(spec: string, cwd: string): boolean {
  if (spec.startsWith("file:") || isAbsolute(spec) || /^\.\.?[/\\]/.test(spec)) return true;
  // `driver.mjs` is a path when such a file exists; `socket.io`-style package names stay packages.
  return MODULE_FILE_RE.test(spec) && existsSync(resolvePath(cwd, spec));
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
 * `DriverLoadError` whose reason says what went wrong, except an import still unfinished at
 * `timeoutMs` (`OperationTimeoutError`: a hang is not a bad spec) and an abort (`OperationAbortedError`).
 */
export async function loadDriverPlugin(spec: string, options: LoadDriverPluginOptions = {}): Promise<DriverPlugin> {
  if (typeof spec !== "string" || spec.trim().length === 0)
    throw new DriverLoadError(String(spec), "empty driver spec");
  const signal = options.signal;
  if (signal?.aborted) throw new OperationAbortedError(`load driver ${spec}`, { cause: signal.reason });
  checkTimeout(options.timeoutMs);
  const cwd = resolvePath(options.cwd ?? process.cwd());
  const bases = [cwd, ...(options.paths ?? [])];
  const url = isPathSpec(spec, cwd) ? fileSpecUrl(spec, cwd) : packageSpecUrl(spec, bases);
  let mod: unknown;
  try {
    const load = TS_FILE_RE.test(new URL(url).pathname) ? importTypeScript(url, spec, bases) : import(url);
    mod = await bounded(load, signal, `load driver ${spec}`, options.timeoutMs, `loading the driver plugin ${moduleName(url)}`);
  } catch (e) {
    if (e instanceof OperationAbortedError || e instanceof OperationTimeoutError || e instanceof DriverLoadError) throw e;
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
  if (!MODULE_FILE_RE.test(file)) {
    throw new DriverLoadError(spec, "a driver file must be a .js or .mjs module (or .ts / .mts, run through tsx)");
  }
  if (!existsSync(file) || !statSync(file).isFile()) throw new DriverLoadError(spec, `no such file: ${file}`, { notFound: true });
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
  throw new DriverLoadError(spec, `not found (tried ${candidates.join(", ")} from ${bases.join(", ")})`, { notFound: true });
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

/** @internal The entry of `tsx/esm/api` seen from one of `bases`, or undefined when tsx is not installed there. */
export function findTsx(bases: readonly string[]): string | undefined {
  try {
    return resolvePackage("tsx/esm/api", bases, "tsx");
  } catch {
    return undefined;
  }
}

/** Set once tsx's loader is registered for this process. */
let tsxRegistered: Promise<void> | undefined;

/**
 * Imports a TypeScript driver file. Node 22.18+ strips types itself (`process.features.typescript`);
 * on older Node (20 has no type stripping at all) tsx's ESM loader is registered once for the
 * process, found from the caller's directory, the extra paths or virtkit's own; without either, a
 * `DriverLoadError` says what to do.
 */
async function importTypeScript(url: string, spec: string, bases: readonly string[]): Promise<unknown> {
  const features = process.features as { typescript?: unknown };
  if (features.typescript === "strip" || features.typescript === "transform") return import(url);
  if (!tsxRegistered) {
    const api = findTsx([...bases, dirname(fileURLToPath(import.meta.url))]);
    if (!api) {
      throw new DriverLoadError(
        spec,
        `a TypeScript driver file needs a loader: Node ${process.versions.node} does not strip types ` +
          "(Node >= 22.18 does), and tsx is not installed here (npm install --save-dev tsx); " +
          "or build the driver and pass the .js file",
      );
    }
    const registering = (async () => {
      const { register } = (await import(pathToFileURL(api).href)) as { register: () => unknown };
      register();
    })();
    tsxRegistered = registering;
    registering.catch(() => {
      if (tsxRegistered === registering) tsxRegistered = undefined;
    });
  }
  await tsxRegistered;
  return import(url);
}

function checkTimeout(timeoutMs: number | undefined): void {
  if (timeoutMs !== undefined && !(Number.isInteger(timeoutMs) && timeoutMs >= 1 && timeoutMs <= 2_147_483_647)) {
    throw new InvalidInputError("timeoutMs", "must be a whole number of milliseconds from 1 to 2147483647");
  }
}

/** The file a module URL names (for messages), or the URL itself when it is no file. */
function moduleName(url: string): string {
  try {
    return fileURLToPath(new URL(new URL(url).pathname, "file://"));
  } catch {
    return url;
  }
}

/**
 * `promise` unless `signal` fires (`OperationAbortedError: operation`) or `timeoutMs` passes first
 * (`OperationTimeoutError: timedOut`). An import cannot be cancelled: it is only no longer waited for.
 */
async function bounded<T>(
  promise: Promise<T>,
  signal: AbortSignal | undefined,
  operation: string,
  timeoutMs?: number,
  timedOut = operation,
): Promise<T> {
  if (!signal && timeoutMs === undefined) return promise;
  let onAbort: (() => void) | undefined;
  let timer: NodeJS.Timeout | undefined;
  const stop = new Promise<never>((_, reject) => {
    if (signal) {
      onAbort = () => reject(new OperationAbortedError(operation, { cause: signal.reason }));
      signal.addEventListener("abort", onAbort, { once: true });
    }
    // Not unref'd (unlike withDeadline's): while a top-level await nothing will settle is pending,
    // this timer is all that keeps Node from exiting silently (code 13) instead of saying why.
    if (timeoutMs !== undefined) timer = setTimeout(() => reject(new OperationTimeoutError(timedOut, timeoutMs)), timeoutMs);
  });
  try {
    return await Promise.race([promise, stop]);
  } finally {
    if (timer) clearTimeout(timer);
    if (onAbort) signal?.removeEventListener("abort", onAbort);
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
    problems.push("optionsSchema is missing (a Standard Schema validator: zod, valibot, arktype, ...)");
  } else if (standardValidate(schema) === undefined && typeof (schema as { safeParse?: unknown }).safeParse !== "function") {
    problems.push("optionsSchema must be a Standard Schema validator (no ~standard.validate)");
  }
  if (typeof m.register !== "function") problems.push("register must be a function");
  if (m.conformanceEnvironment !== undefined && typeof m.conformanceEnvironment !== "function") {
    problems.push("conformanceEnvironment, when given, must be a function");
  }
  if (m.environments !== undefined) problems.push(...environmentProblems(m.environments));
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
  readonly path?: readonly (PropertyKey | StandardSchemaV1.PathSegment)[];
  readonly message: string;
  readonly keys?: readonly string[];
}

type ValidateResult = { ok: true; value: unknown } | { ok: false; issues: readonly ParseIssue[] };

type ValidateFn = (value: unknown) => unknown;

/** The schema's `~standard.validate` (bound), or undefined when it is no Standard Schema v1. */
function standardValidate(schema: unknown): ValidateFn | undefined {
  if ((typeof schema !== "object" && typeof schema !== "function") || schema === null) return undefined;
  const props = (schema as { "~standard"?: { version?: unknown; validate?: unknown } })["~standard"];
  if (typeof props !== "object" || props === null || props.version !== 1 || typeof props.validate !== "function") return undefined;
  const validate = props.validate as ValidateFn;
  return (value) => validate.call(props, value);
}

/**
 * Runs the schema synchronously: through `~standard.validate`, or a zod-like `safeParse` for
 * schemas that predate the standard. A promise is refused: options are checked before anything runs.
 */
function runSchema(schema: unknown, raw: unknown): ValidateResult {
  const validate = standardValidate(schema);
  if (validate) {
    const result = validate(raw) as StandardSchemaV1.Result<unknown> | PromiseLike<unknown>;
    if (typeof (result as PromiseLike<unknown>)?.then === "function") {
      // Keep no unhandled rejection behind.
      Promise.resolve(result).catch(() => undefined);
      throw new AsyncSchemaError();
    }
    const r = result as StandardSchemaV1.Result<unknown>;
    return r.issues ? { ok: false, issues: r.issues } : { ok: true, value: r.value };
  }
  const parsed = (schema as { safeParse(data: unknown): SafeParseResult }).safeParse(raw);
  return parsed.success ? { ok: true, value: parsed.data } : { ok: false, issues: parsed.error.issues };
}

type SafeParseResult = { success: true; data: unknown } | { success: false; error: { issues: readonly ParseIssue[] } };

class AsyncSchemaError extends Error {
  constructor() {
    super("it validates asynchronously; virtkit validates options synchronously before anything runs");
  }
}

/** The keys an object schema declares, when the library shows them (zod's `shape`, valibot's `entries`). */
function declaredKeys(schema: unknown): string[] | undefined {
  const s = schema as { shape?: unknown; entries?: unknown };
  for (const field of [s.shape, s.entries]) {
    if (typeof field === "object" && field !== null && !Array.isArray(field)) return Object.keys(field);
  }
  return undefined;
}

/**
 * The declared key a mistyped one most likely meant: the same but for case, or one or two edits
 * away (a third of its length at most). Only the declared key is ever shown, never what was typed:
 * a pasted secret is not within two edits of an option's name.
 */
export function nearestKey(typed: string, known: readonly string[]): string | undefined {
  const lower = typed.toLowerCase();
  const sameButCase = known.find((k) => k.toLowerCase() === lower);
  if (sameButCase !== undefined) return sameButCase;
  const most = Math.min(2, Math.floor(typed.length / 3));
  let best: { key: string; d: number } | undefined;
  for (const k of known) {
    if (Math.abs(k.length - typed.length) > most) continue;
    const d = editDistance(lower, k.toLowerCase());
    if (d <= most && (best === undefined || d < best.d)) best = { key: k, d };
  }
  return best?.key;
}

/** Levenshtein distance with adjacent transpositions counted as one edit. */
function editDistance(a: string, b: string): number {
  const rows: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) rows[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let d = Math.min(rows[i - 1]![j]! + 1, rows[i]![j - 1]! + 1, rows[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d = Math.min(d, rows[i - 2]![j - 2]! + 1);
      rows[i]![j] = d;
    }
  }
  return rows[a.length]![b.length]!;
}

function pathKey(segment: PropertyKey | StandardSchemaV1.PathSegment): string {
  return typeof segment === "object" && segment !== null ? String(segment.key) : String(segment);
}

/**
 * Validates (and coerces) raw options with the plugin's schema (any Standard Schema validator, run
 * synchronously). Unknown keys are refused even when the plugin's schema would strip or pass them
 * through; a failure is an `InvalidInputError` on `option.<key>` with the schema's message.
 */
export function validatePluginOptions<P extends DriverPlugin<StandardSchemaV1>>(plugin: P, raw: unknown = {}): PluginOptions<P> {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    throw new InvalidInputError("options", "must be an object of option names to values");
  }
  const schema: unknown = plugin.optionsSchema;
  const given = Object.keys(raw);
  // Only the schema's own keys may be shown: a key the user typed may be a pasted secret.
  const known = declaredKeys(schema);
  const unknownKey = (key: string): InvalidInputError => {
    const at = given.indexOf(key);
    const which = at >= 0 ? `#${at + 1} ` : "";
    const list = known === undefined ? "" : `; known keys of driver ${plugin.name}: ${known.length ? known.join(", ") : "none"}`;
    const near = known === undefined ? undefined : nearestKey(key, known);
    const hint = near === undefined ? "" : `; did you mean ${near}?`;
    return new InvalidInputError("option", `unknown option key ${which}(${characters(key)})${hint}${list}`);
  };
  if (known !== undefined) {
    for (const key of given) if (!known.includes(key)) throw unknownKey(key);
  }
  // Messages are scrubbed of every key the schema does not declare, then of secret values (keys
  // first: a short secret value could otherwise cut a key apart before it is found).
  const scrub = (text: string): string => scrubOptionSecrets(scrubUnknownKeys(text, given, known), raw);
  let result: ValidateResult;
  try {
    result = runSchema(schema, raw);
  } catch (e) {
    // e.g. an async refinement: the schema cannot be used synchronously.
    // No `cause`: the schema's exception may carry the option values (a password) in its fields.
    throw new DriverLoadError(plugin.name, `its options schema failed: ${scrub(messageOf(e))}`);
  }
  if (result.ok) return result.value as PluginOptions<P>;
  const issue = result.issues[0];
  if (!issue) throw new InvalidInputError("options", "rejected by the driver's schema");
  const path = (issue.path ?? []).map(pathKey);
  if (issue.code === "unrecognized_keys" && issue.keys?.[0] !== undefined && path.length === 0) throw unknownKey(issue.keys[0]);
  // A path through a key the schema does not declare (a record schema) would echo the user's key.
  const showable = path.length === 0 || known?.includes(path[0]!) === true;
  const field = path.length === 0 ? "options" : showable ? `option.${path.join(".")}` : "option";
  // A plugin's own message may echo the value it refused (`"<value>" is not a valid ...`).
  throw new InvalidInputError(field, scrub(issue.message));
}

/**
 * The option keys `plugin` needs that `raw` (default: none) does not give, as its schema reports
 * them: `["uri"]` for libvirt with no options. Empty when `raw` is accepted; undefined when the
 * schema refuses `raw` for another reason than missing keys (or cannot run synchronously).
 */
export function missingPluginOptions(plugin: DriverPlugin<StandardSchemaV1>, raw: Readonly<Record<string, unknown>> = {}): string[] | undefined {
  let result: ValidateResult;
  try {
    result = runSchema(plugin.optionsSchema, raw);
  } catch {
    return undefined;
  }
  if (result.ok) return [];
  const missing = new Set<string>();
  const known = declaredKeys(plugin.optionsSchema);
  for (const issue of result.issues) {
    const key = issue.path?.length === 1 ? pathKey(issue.path[0]!) : undefined;
    // A missing key is one the caller did not give; only declared keys are named (never the user's).
    if (key === undefined || Object.hasOwn(raw, key) || (known !== undefined && !known.includes(key))) return undefined;
    missing.add(key);
  }
  return [...missing];
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

/** What is wrong with a manifest's `environments`: a list of uniquely named environment objects. */
function environmentProblems(value: unknown): string[] {
  if (!Array.isArray(value)) return ["environments, when given, must be an array"];
  const problems: string[] = [];
  const seen = new Set<string>();
  value.forEach((e: unknown, i) => {
    const env = (typeof e === "object" && e !== null ? e : {}) as Record<string, unknown>;
    const name = env.name;
    if (typeof name !== "string" || !DRIVER_NAME_RE.test(name)) {
      problems.push(`environments[${i}].name must be 1..63 letters, digits, '.', '_', '-'`);
    } else if (seen.has(name)) {
      problems.push(`environments[${i}].name "${name}" is given twice`);
    } else seen.add(name);
    if (typeof env.description !== "string") problems.push(`environments[${i}].description must be a string`);
    for (const fn of ["unavailable", "conformanceEnvironment"] as const) {
      if (typeof env[fn] !== "function") problems.push(`environments[${i}].${fn} must be a function`);
    }
    const t = env.scenarioTimeoutMs;
    if (t !== undefined && (typeof t !== "number" || !Number.isInteger(t) || t < 1 || t > 2_147_483_647)) {
      problems.push(`environments[${i}].scenarioTimeoutMs, when given, must be a whole number of ms (1..2147483647)`);
    }
    if (env.prepare !== undefined && typeof env.prepare !== "function") {
      problems.push(`environments[${i}].prepare, when given, must be a function`);
    }
  });
  return problems;
}

/** One driver package found by {@link discoverDriverPlugins}. */
export interface DiscoveredDriver {
  /** The package name, e.g. `@virtkit/driver-libvirt`: a spec `loadDriverPlugin` takes. */
  readonly package: string;
  /** The package's version from its package.json. */
  readonly packageVersion?: string;
  /** The package's directory (symlinks resolved). */
  readonly dir: string;
  /** The manifest, when the package loads as a driver plugin. */
  readonly plugin?: DriverPlugin;
  /** Why it does not load, when it does not (`plugin` is then absent). */
  readonly error?: DriverLoadError;
}

/** Options of {@link discoverDriverPlugins}. */
export interface DiscoverDriverPluginsOptions {
  /** Abandons the search; it rejects with `OperationAbortedError`. */
  readonly signal?: AbortSignal;
  /** At most this many package.json files are read (default 5000): a guard against huge trees. */
  readonly maxPackages?: number;
  /** Deadline of each package's import in ms (see {@link LoadDriverPluginOptions.timeoutMs}); one past it is returned with its `error`. */
  readonly timeoutMs?: number;
}

/** The marker a driver package may carry in its package.json (besides its name). */
export const DRIVER_PACKAGE_KEYWORD = "virtkit-driver";

const DRIVER_PACKAGE_NAME_RE = /^(?:@virtkit\/driver-[a-z0-9._-]+|(?:@[a-z0-9-~][a-z0-9-._~]*\/)?virtkit-driver-[a-z0-9._-]+)$/;

/** True when a package.json says (by name, keyword or `virtkit.kind`) that the package may be a driver plugin. */
function mayBeDriverPackage(manifest: Record<string, unknown>): boolean {
  const name = manifest.name;
  if (typeof name === "string" && DRIVER_PACKAGE_NAME_RE.test(name)) return true;
  const keywords = manifest.keywords;
  if (Array.isArray(keywords) && keywords.includes(DRIVER_PACKAGE_KEYWORD)) return true;
  const virtkit = manifest.virtkit;
  return typeof virtkit === "object" && virtkit !== null && (virtkit as { kind?: unknown }).kind === "virtkit-driver";
}

function dependencyNames(manifest: Record<string, unknown>, fields: readonly string[]): string[] {
  const out: string[] = [];
  for (const field of fields) {
    const deps = manifest[field];
    if (typeof deps === "object" && deps !== null) out.push(...Object.keys(deps));
  }
  return out;
}

/** The directory of package `name` as Node would find it from `fromDir` (walking up node_modules). */
function packageDir(name: string, fromDir: string): string | undefined {
  let dir = fromDir;
  for (;;) {
    const candidate = join(dir, "node_modules", name);
    if (existsSync(join(candidate, "package.json"))) return candidate;
    const parent = dirname(dir);
    if (parent === dir) return undefined;
    dir = parent;
  }
}

/** The nearest directory at or above `start` holding a package.json. */
function nearestPackageDir(start: string): string | undefined {
  let dir = resolvePath(start);
  for (;;) {
    if (existsSync(join(dir, "package.json"))) return dir;
    const parent = dirname(dir);
    if (parent === dir) return undefined;
    dir = parent;
  }
}

/**
 * The driver plugins installed for the projects at `paths` (each: a directory in a package, e.g.
 * the user's `cwd` and the CLI's own): the packages of their dependency trees (every dependency
 * kind of the projects themselves, runtime dependencies below them, and the projects themselves)
 * whose package.json marks them as possible drivers (a `@virtkit/driver-*` or `virtkit-driver-*`
 * name, the keyword `virtkit-driver`, or `"virtkit": {"kind": "virtkit-driver"}`), imported and
 * kept when their manifest says `kind: "virtkit-driver"`. A marked package that fails to load is
 * returned with its `error`; nothing that is not installed is returned. Ordered as found
 * (breadth first, `paths` in order), one entry per package name and version.
 */
export async function discoverDriverPlugins(
  paths: readonly string[],
  options: DiscoverDriverPluginsOptions = {},
): Promise<DiscoveredDriver[]> {
  const { signal } = options;
  const maxPackages = options.maxPackages ?? 5000;
  checkTimeout(options.timeoutMs);
  const seenDirs = new Set<string>();
  const seenPackages = new Set<string>();
  const found: DiscoveredDriver[] = [];
  const queue: { dir: string; root: boolean }[] = [];
  for (const path of paths) {
    const dir = nearestPackageDir(path);
    if (dir) queue.push({ dir, root: true });
  }
  let read = 0;
  while (queue.length > 0 && read < maxPackages) {
    if (signal?.aborted) throw new OperationAbortedError("discover driver plugins", { cause: signal.reason });
    const { dir, root } = queue.shift()!;
    let real: string;
    try {
      real = realpathSync(dir);
    } catch {
      continue;
    }
    if (seenDirs.has(real)) continue;
    seenDirs.add(real);
    const manifest = readJson(join(real, "package.json"));
    read++;
    if (!manifest) continue;
    const fields = root
      ? ["dependencies", "devDependencies", "optionalDependencies", "peerDependencies"]
      : ["dependencies", "optionalDependencies", "peerDependencies"];
    for (const dep of dependencyNames(manifest, fields)) {
      const depDir = packageDir(dep, real);
      if (depDir) queue.push({ dir: depDir, root: false });
    }
    const name = typeof manifest.name === "string" ? manifest.name : undefined;
    if (!name || !mayBeDriverPackage(manifest)) continue;
    const version = typeof manifest.version === "string" ? manifest.version : undefined;
    const key = `${name}@${version ?? ""}`;
    if (seenPackages.has(key)) continue;
    seenPackages.add(key);
    const entry: { package: string; packageVersion?: string; dir: string } = { package: name, dir: real };
    if (version !== undefined) entry.packageVersion = version;
    try {
      const file = entryOf(real, manifest, ".", name);
      const url = pathToFileURL(file).href;
      const load = TS_FILE_RE.test(file) ? importTypeScript(url, name, [real]) : import(url);
      const mod = await bounded(load, signal, `load driver ${name}`, options.timeoutMs, `loading the driver plugin ${file}`);
      const candidate = extractManifest(mod);
      // A package named like a driver that exports no driver manifest at all is not a driver.
      if ((candidate as { kind?: unknown } | undefined)?.kind !== "virtkit-driver" && !hasDriverMarker(manifest)) continue;
      found.push({ ...entry, plugin: validatePluginManifest(candidate, name) });
    } catch (e) {
      if (e instanceof OperationAbortedError) throw e;
      const error = e instanceof DriverLoadError ? e : new DriverLoadError(name, `importing failed: ${messageOf(e)}`, { cause: e });
      found.push({ ...entry, error });
    }
  }
  return found;
}

/** An explicit marker (keyword or `virtkit.kind`), as opposed to a name that merely looks like a driver's. */
function hasDriverMarker(manifest: Record<string, unknown>): boolean {
  return mayBeDriverPackage({ ...manifest, name: undefined });
}
