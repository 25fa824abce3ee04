/**
 * `--config virtkit.conformance.json`: a run's settings in one file, validated up front with a
 * usage error (exit 2) that names the file, the key and what is wrong. Flags given on the command
 * line win over the file; the file wins over the flags' defaults.
 *
 * ```json
 * {
 *   "options": { "uri": "qemu:///system" },
 *   "focus": ["^lifecycle\\."], "skip": ["pause"],
 *   "level": "SHOULD",
 *   "scenarioTimeoutMs": 20000, "cleanupTimeoutMs": 60000, "suiteTimeoutMs": 600000,
 *   "parallel": 4, "failFast": true, "seed": 42,
 *   "timeouts": { "migration.live": 60000 }
 * }
 * ```
 * Option values are never repeated in an error (they may be credentials).
 */
import { readFile, stat } from "node:fs/promises";

/** A configuration file is a few KiB; anything past this is not one. */
const MAX_CONFIG_BYTES = 1024 * 1024;
import { Errors } from "@oclif/core";
import type { RunPlan } from "@virtkit/conformance";

/** The settings a config file may hold. */
export interface ConformanceConfig {
  /** Driver options, as an object or as `key=value` strings. */
  readonly options?: readonly string[];
  readonly focus?: readonly string[];
  readonly skip?: readonly string[];
  readonly level?: "MUST" | "SHOULD" | "MAY";
  readonly scenarioTimeoutMs?: number;
  readonly cleanupTimeoutMs?: number;
  readonly suiteTimeoutMs?: number;
  readonly parallel?: number;
  /** Per-scenario deadlines in ms, by scenario id. */
  readonly timeouts?: Readonly<Record<string, number>>;
  readonly failFast?: boolean;
  /** Shuffles the scenario order with this seed. */
  readonly seed?: number;
}

const KEYS = [
  "$schema",
  "options",
  "focus",
  "skip",
  "level",
  "scenarioTimeoutMs",
  "cleanupTimeoutMs",
  "suiteTimeoutMs",
  "parallel",
  "timeouts",
  "failFast",
  "seed",
] as const;

function usage(file: string, message: string): Errors.CLIError {
  return new Errors.CLIError(`invalid --config ${file}: ${message}`, { exit: 2, code: "VIRTKIT_USAGE" });
}

/** Reads and validates a config file; `knownIds` are the scenario ids `timeouts` may name. */
export async function loadConformanceConfig(file: string, knownIds: readonly string[]): Promise<ConformanceConfig> {
  let text: string;
  try {
    // Looked at before it is opened: opening a FIFO waits for a writer for ever.
    const st = await stat(file);
    if (!st.isFile()) throw usage(file, "not a regular file");
    if (st.size > MAX_CONFIG_BYTES) throw usage(file, `larger than ${MAX_CONFIG_BYTES} bytes`);
    text = await readFile(file, "utf8");
  } catch (err) {
    if (err instanceof Errors.CLIError) throw err;
    throw usage(file, `cannot read it (${(err as NodeJS.ErrnoException).code ?? "error"})`);
  }
  let value: unknown;
  try {
    // A byte-order mark (as some Windows editors save UTF-8) is not part of the JSON.
    value = JSON.parse(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text);
  } catch (err) {
    // Node's message may quote the text around the error (an unquoted password): only the place is said.
    throw usage(file, `not valid JSON${jsonErrorPlace(text, err)} (the text is not shown)`);
  }
  return validateConformanceConfig(value, file, knownIds);
}

/** Checks a parsed config; every problem is a usage error naming the key. */
export function validateConformanceConfig(value: unknown, file: string, knownIds: readonly string[]): ConformanceConfig {
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw usage(file, "expected a JSON object");
  const v = value as Record<string, unknown>;
  // A key is named by its position and length, never its text: it may be a pasted secret (as --option).
  const given = Object.keys(v);
  const unknown = given.find((k) => !(KEYS as readonly string[]).includes(k));
  if (unknown !== undefined) {
    throw usage(
      file,
      `unknown key #${given.indexOf(unknown) + 1} (${characters(unknown)}; known: ${KEYS.filter((k) => k !== "$schema").join(", ")})`,
    );
  }
  const out: Record<string, unknown> = {};
  const int = (key: string, min: number, max = Number.MAX_SAFE_INTEGER) => {
    const n = v[key];
    if (n === undefined) return;
    if (typeof n !== "number" || !Number.isInteger(n) || n < min || n > max) {
      throw usage(file, `"${key}" must be an integer from ${min} to ${max}`);
    }
    out[key] = n;
  };
  const patterns = (key: "focus" | "skip") => {
    const p = v[key];
    if (p === undefined) return;
    const list = typeof p === "string" ? [p] : p;
    if (!Array.isArray(list) || !list.every((x): x is string => typeof x === "string")) {
      throw usage(file, `"${key}" must be a regular expression or a list of them`);
    }
    for (const re of list) {
      try {
        new RegExp(re);
      } catch (err) {
        throw usage(file, `"${key}": invalid pattern ${JSON.stringify(re)}: ${(err as Error).message}`);
      }
    }
    out[key] = list;
  };
  if (v.options !== undefined) out.options = optionPairs(v.options, file);
  patterns("focus");
  patterns("skip");
  if (v.level !== undefined) {
    if (v.level !== "MUST" && v.level !== "SHOULD" && v.level !== "MAY") throw usage(file, `"level" must be MUST, SHOULD or MAY`);
    out.level = v.level;
  }
  int("scenarioTimeoutMs", 1);
  int("cleanupTimeoutMs", 1);
  int("suiteTimeoutMs", 1);
  int("parallel", 1, 64);
  int("seed", 0, 2 ** 32 - 1);
  if (v.failFast !== undefined) {
    if (typeof v.failFast !== "boolean") throw usage(file, `"failFast" must be true or false`);
    out.failFast = v.failFast;
  }
  if (v.timeouts !== undefined) {
    if (typeof v.timeouts !== "object" || v.timeouts === null || Array.isArray(v.timeouts)) {
      throw usage(file, `"timeouts" must be an object of scenario id → ms`);
    }
    const timeouts: Record<string, number> = {};
    for (const [i, [id, ms]] of Object.entries(v.timeouts as Record<string, unknown>).entries()) {
      if (!knownIds.includes(id)) {
        throw usage(file, `"timeouts" key #${i + 1} (${characters(id)}) names no scenario (see virtkit conformance list)`);
      }
      if (typeof ms !== "number" || !Number.isInteger(ms) || ms < 1) {
        throw usage(file, `"timeouts"."${id}" must be a positive integer (ms)`);
      }
      timeouts[id] = ms;
    }
    out.timeouts = timeouts;
  }
  return out as ConformanceConfig;
}

function optionPairs(options: unknown, file: string): string[] {
  if (Array.isArray(options)) {
    return options.map((p, i) => {
      if (typeof p !== "string" || !/^[A-Za-z][A-Za-z0-9_.-]*=/.test(p)) {
        throw usage(file, `"options" item #${i + 1} must be a key=value string (the value is not shown)`);
      }
      return p;
    });
  }
  if (typeof options === "object" && options !== null) {
    return Object.entries(options as Record<string, unknown>).map(([k, val], i) => {
      if (!/^[A-Za-z][A-Za-z0-9_.-]*$/.test(k)) throw usage(file, `"options" key #${i + 1}: malformed (${characters(k)})`);
      if (typeof val !== "string" && typeof val !== "number" && typeof val !== "boolean") {
        throw usage(file, `"options" key #${i + 1} (${characters(k)}): the value must be a string, number or boolean (the value is not shown)`);
      }
      return `${k}=${String(val)}`;
    });
  }
  throw usage(file, `"options" must be an object of key → value or a list of key=value strings`);
}

function characters(text: string): string {
  return `${text.length} character${text.length === 1 ? "" : "s"}`;
}

/** ` at line L, column C` when the parser said where (its message is not repeated: it may quote the text). */
function jsonErrorPlace(text: string, err: unknown): string {
  const at = /at position (\d+)/.exec(err instanceof Error ? err.message : "");
  if (!at) return "";
  const before = text.slice(0, Number(at[1]));
  const line = before.split("\n").length;
  return ` at line ${line}, column ${before.length - before.lastIndexOf("\n")}`;
}

/** Option pairs from the file, then the command line's; a key on the command line replaces the file's. */
export function mergeOptionPairs(fromFile: readonly string[] = [], fromFlags: readonly string[] = []): string[] {
  const key = (p: string) => p.slice(0, p.indexOf("="));
  const flagKeys = new Set(fromFlags.map(key));
  return [...fromFile.filter((p) => !flagKeys.has(key(p))), ...fromFlags];
}

/** The `conformance run` flags the settings come from. */
export interface RunFlags {
  readonly driver: string;
  readonly env?: string;
  readonly option?: readonly string[];
  readonly focus?: readonly string[];
  readonly skip?: readonly string[];
  readonly level: "MUST" | "SHOULD" | "MAY";
  readonly "scenario-timeout": number;
  readonly "cleanup-timeout": number;
  readonly "suite-timeout"?: number;
  readonly parallel?: number;
  readonly runner: "vitest" | "direct";
  readonly config?: string;
  readonly "fail-fast"?: boolean;
  readonly shuffle?: boolean;
  readonly seed?: number;
  readonly "allow-empty"?: boolean;
}

/** The settings of a run: `--config` first, flags given on the command line over it. */
export interface RunSettings {
  readonly spec: string;
  readonly environment?: string;
  readonly options: readonly string[];
  readonly focus: readonly string[];
  readonly skip: readonly string[];
  readonly level: "MUST" | "SHOULD" | "MAY";
  readonly scenarioTimeoutMs: number;
  readonly cleanupTimeoutMs: number;
  readonly suiteTimeoutMs?: number;
  /** Absent: the environment's default (see `fairParallel`). */
  readonly parallel?: number;
  readonly runner: "vitest" | "direct";
  readonly seed?: number;
  readonly timeouts?: Readonly<Record<string, number>>;
  readonly failFast: boolean;
  readonly allowEmpty: boolean;
}

/**
 * Merges `--config` (when given) with the flags. `explicit(name)` says whether a flag was given on
 * the command line (oclif's `setFromDefault` is false); a defaulted flag yields to the file.
 * `--shuffle` without `--seed` draws a seed, which the report's notes show so the order can be repeated.
 */
export async function runSettings(
  flags: RunFlags,
  explicit: (name: keyof RunFlags) => boolean,
  knownIds: readonly string[],
): Promise<RunSettings> {
  const cfg = flags.config !== undefined ? await loadConformanceConfig(flags.config, knownIds) : {};
  const pick = <K extends keyof RunFlags, T>(name: K, fromFile: T | undefined, flag: T): T =>
    explicit(name) || fromFile === undefined ? flag : fromFile;
  const shuffle = flags.shuffle === true || flags.seed !== undefined;
  const seed = flags.seed ?? cfg.seed ?? (shuffle ? Math.floor(Math.random() * 2 ** 31) : undefined);
  const suiteTimeoutMs = flags["suite-timeout"] ?? cfg.suiteTimeoutMs;
  return {
    spec: flags.driver,
    ...(flags.env !== undefined ? { environment: flags.env } : {}),
    options: mergeOptionPairs(cfg.options, flags.option),
    // Patterns add up: the file's and the command line's.
    focus: [...(cfg.focus ?? []), ...(flags.focus ?? [])],
    skip: [...(cfg.skip ?? []), ...(flags.skip ?? [])],
    level: pick("level", cfg.level, flags.level),
    scenarioTimeoutMs: pick("scenario-timeout", cfg.scenarioTimeoutMs, flags["scenario-timeout"]),
    cleanupTimeoutMs: pick("cleanup-timeout", cfg.cleanupTimeoutMs, flags["cleanup-timeout"]),
    ...(suiteTimeoutMs !== undefined ? { suiteTimeoutMs } : {}),
    ...(flags.parallel !== undefined || cfg.parallel !== undefined ? { parallel: flags.parallel ?? cfg.parallel } : {}),
    runner: flags.runner,
    ...(seed !== undefined ? { seed } : {}),
    ...(cfg.timeouts !== undefined ? { timeouts: cfg.timeouts } : {}),
    failFast: flags["fail-fast"] === true || cfg.failFast === true,
    allowEmpty: flags["allow-empty"] === true,
  };
}

/** The human view of a `--dry-run` plan. */
export function renderPlan(plan: RunPlan): string {
  const label = { run: "run", refuse: "refusal check", unsupported: "unsupported", skip: "skip" } as const;
  const w = Math.max(2, ...plan.scenarios.map((s) => s.id.length));
  const lines = [
    `virtkit conformance (dry run): ${plan.driver.name}${plan.driver.version ? ` ${plan.driver.version}` : ""}, level ${plan.level}; nothing was run`,
    "",
    ...plan.scenarios.map(
      (s, i) =>
        `${String(i + 1).padStart(String(plan.scenarios.length).length)}. ${s.id.padEnd(w)}  [${s.level}]  ${label[s.action]}${s.reason ? `: ${s.reason}` : ""}`,
    ),
  ];
  const count = (a: keyof typeof label) => plan.scenarios.filter((s) => s.action === a).length;
  lines.push(
    "",
    `${plan.scenarios.length} scenarios: ${count("run")} would run, ${count("refuse")} refusal checks, ${count("unsupported")} unsupported, ${count("skip")} skipped by the environment`,
  );
  if (plan.notes.length > 0) lines.push("", "Notes:", ...plan.notes.map((n) => `  - ${n}`));
  return lines.join("\n");
}
