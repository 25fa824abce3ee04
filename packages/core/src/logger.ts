/**
 * Structured logging with secrets redacted by construction: every field goes through
 * {@link redact} before any logger sees it, so a `Secret`, a value under a password-like key or a
 * secret field of an error's cause chain can never reach an output, whichever logger is used.
 */
import { isSecret } from "./secret.js";
import { REDACTED, SECRET_KEY_PATTERN, redactUrisInText } from "./secret-patterns.js";

export { REDACTED, SECRET_KEY_PATTERN };

/** Log levels, lowest first. */
export type LogLevel = "debug" | "info" | "warn" | "error";

const LEVEL_ORDER: Readonly<Record<LogLevel, number>> = { debug: 10, info: 20, warn: 30, error: 40 };

/** Structured fields attached to a log line. */
export type LogFields = Readonly<Record<string, unknown>>;

/** The logger every virtkit component takes. */
export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  /** A logger that adds `fields` to every line. */
  child(fields: LogFields): Logger;
}

/** One log line after redaction. */
export interface LogRecord {
  /** ISO-8601 time. */
  readonly time: string;
  readonly level: LogLevel;
  readonly msg: string;
  /** Bound and call fields, already redacted and JSON-safe. */
  readonly fields: Readonly<Record<string, unknown>>;
}

const MAX_DEPTH = 8;
const MAX_CAUSES = 5;

/**
 * A JSON-safe copy of `value` with secrets removed: `Secret`s and values under keys matching
 * {@link SECRET_KEY_PATTERN} become `***`, and so do the credentials of a URI inside any string,
 * under any key (`https://root:***@xen-1/`, `?token=***`); errors become `{name, code, message, ...fields}`
 * (their own `toJSON` where they have one) with their cause chain treated the same way; bigints
 * become strings, binary data its length, cycles `[Circular]`.
 */
export function redact(value: unknown): unknown {
  return redactValue(value, 0, new WeakSet());
}

function redactValue(value: unknown, depth: number, seen: WeakSet<object>): unknown {
  if (value === null || value === undefined) return value;
  switch (typeof value) {
    case "string":
      return redactUrisInText(value);
    case "boolean":
      return value;
    case "number":
      return Number.isFinite(value) ? value : String(value);
    case "bigint":
      return value.toString();
    case "symbol":
      return value.toString();
    case "function":
      return "[Function]";
  }
  const obj = value as object;
  if (isSecret(obj)) return REDACTED;
  if (seen.has(obj)) return "[Circular]";
  if (depth >= MAX_DEPTH) return "[Truncated]";
  seen.add(obj);
  try {
    if (obj instanceof Error) return redactError(obj, depth, seen, 0);
    if (obj instanceof Date) return Number.isNaN(obj.getTime()) ? "Invalid Date" : obj.toISOString();
    if (ArrayBuffer.isView(obj)) return `[${obj.byteLength} bytes]`;
    if (obj instanceof ArrayBuffer) return `[${obj.byteLength} bytes]`;
    if (Array.isArray(obj)) return obj.map((v) => redactValue(v, depth + 1, seen));
    if (obj instanceof Map) {
      return redactEntries(
        [...obj.entries()].map(([k, v]) => [String(k), v]),
        depth,
        seen,
      );
    }
    if (obj instanceof Set) return [...obj].map((v) => redactValue(v, depth + 1, seen));
    const toJSON = (obj as { toJSON?: unknown }).toJSON;
    if (typeof toJSON === "function") return redactValue(toJSON.call(obj), depth + 1, seen);
    return redactEntries(Object.entries(obj), depth, seen);
  } finally {
    seen.delete(obj);
  }
}

function redactEntries(entries: [string, unknown][], depth: number, seen: WeakSet<object>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of entries) {
    if (v === undefined) continue;
    out[k] = SECRET_KEY_PATTERN.test(k) ? REDACTED : redactValue(v, depth + 1, seen);
  }
  return out;
}

function redactError(err: Error, depth: number, seen: WeakSet<object>, causes: number): Record<string, unknown> {
  // toJSON (VirtkitError's) already leaves out `cause` and object-valued fields; plain errors
  // give their name, message and own fields (redacted by key like any object).
  const toJSON = (err as { toJSON?: unknown }).toJSON;
  const base: unknown =
    typeof toJSON === "function"
      ? toJSON.call(err)
      : Object.fromEntries([
          ["name", err.name],
          ["message", err.message],
          ...Object.entries(err).filter(([k]) => k !== "cause" && k !== "stack" && k !== "name" && k !== "message"),
        ]);
  const out = redactEntries(Object.entries(typeof base === "object" && base !== null ? base : {}), depth, seen);
  const cause = (err as { cause?: unknown }).cause;
  if (cause !== undefined && !seen.has(cause as object)) {
    if (causes >= MAX_CAUSES) out.cause = "[Truncated]";
    else if (cause instanceof Error) {
      seen.add(cause);
      out.cause = redactError(cause, depth + 1, seen, causes + 1);
      seen.delete(cause);
    } else out.cause = redactValue(cause, depth + 1, seen);
  }
  return out;
}

/** A shared base: binds fields, filters by level, redacts, then hands a record to `emit`. */
abstract class BaseLogger implements Logger {
  protected constructor(
    protected readonly level: LogLevel,
    protected readonly bindings: LogFields,
  ) {}

  debug(msg: string, fields?: LogFields): void {
    this.log("debug", msg, fields);
  }
  info(msg: string, fields?: LogFields): void {
    this.log("info", msg, fields);
  }
  warn(msg: string, fields?: LogFields): void {
    this.log("warn", msg, fields);
  }
  error(msg: string, fields?: LogFields): void {
    this.log("error", msg, fields);
  }

  abstract child(fields: LogFields): Logger;

  /** Whether a line at `level` would be written. */
  isLevelEnabled(level: LogLevel): boolean {
    return LEVEL_ORDER[level] >= LEVEL_ORDER[this.level];
  }

  protected log(level: LogLevel, msg: string, fields: LogFields | undefined): void {
    if (!this.isLevelEnabled(level)) return;
    const merged = redact({ ...this.bindings, ...fields }) as Record<string, unknown>;
    this.emit({ time: new Date().toISOString(), level, msg: redactUrisInText(String(msg)), fields: merged });
  }

  protected abstract emit(record: LogRecord): void;
}

/** Where {@link JsonLogger} writes: `process.stderr`, a file stream, anything with `write(string)`. */
export interface LogSink {
  write(chunk: string): unknown;
}

/** Options of {@link JsonLogger}. */
export interface JsonLoggerOptions {
  /** Default `process.stderr`. */
  readonly stream?: LogSink;
  /** Lowest level written; default `info`. */
  readonly level?: LogLevel;
  /** Fields on every line. */
  readonly fields?: LogFields;
}

/** Writes one JSON object per line: `{"time","level","msg",...fields}`. */
export class JsonLogger extends BaseLogger {
  readonly #stream: LogSink;

  constructor(options: JsonLoggerOptions = {}) {
    super(options.level ?? "info", options.fields ?? {});
    this.#stream = options.stream ?? process.stderr;
  }

  child(fields: LogFields): JsonLogger {
    return new JsonLogger({ stream: this.#stream, level: this.level, fields: { ...this.bindings, ...fields } });
  }

  protected emit(record: LogRecord): void {
    // The record's own keys win over fields of the same name.
    this.#stream.write(
      `${JSON.stringify({ ...record.fields, time: record.time, level: record.level, msg: record.msg })}\n`,
    );
  }
}

/** Keeps records in memory (shared with its children), for tests and diagnostics. */
export class MemoryLogger extends BaseLogger {
  readonly #records: LogRecord[];

  constructor(options: { readonly level?: LogLevel; readonly fields?: LogFields } = {}, records: LogRecord[] = []) {
    super(options.level ?? "debug", options.fields ?? {});
    this.#records = records;
  }

  /** Every record written through this logger or its children, oldest first. */
  get records(): readonly LogRecord[] {
    return this.#records;
  }

  /** The records as the JSON lines {@link JsonLogger} would write. */
  lines(): string[] {
    return this.#records.map((r) => JSON.stringify({ ...r.fields, time: r.time, level: r.level, msg: r.msg }));
  }

  /** Drops every record. */
  clear(): void {
    this.#records.length = 0;
  }

  child(fields: LogFields): MemoryLogger {
    return new MemoryLogger({ level: this.level, fields: { ...this.bindings, ...fields } }, this.#records);
  }

  protected emit(record: LogRecord): void {
    this.#records.push(record);
  }
}

/** Discards everything. */
export class NullLogger implements Logger {
  debug(_msg: string, _fields?: LogFields): void {}
  info(_msg: string, _fields?: LogFields): void {}
  warn(_msg: string, _fields?: LogFields): void {}
  error(_msg: string, _fields?: LogFields): void {}
  child(_fields: LogFields): NullLogger {
    return this;
  }
}
