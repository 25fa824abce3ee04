/**
 * An adapter from pino (or any logger with pino's `(obj, msg)` call shape) to virtkit's
 * {@link Logger}: a service that logs with pino hands its logger to virtkit and gets virtkit's
 * lines in its own output, redacted by the same rules as every virtkit logger. No dependency on
 * pino: the shape is all it needs.
 */
import { redact, type LogFields, type Logger, type LogLevel } from "./logger.js";
import { redactUrisInText } from "./secret-patterns.js";

/** The part of a pino logger the adapter calls (pino's own `Logger` type fits it). */
export interface PinoLike {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
  child(bindings: Record<string, unknown>): PinoLike;
  /** When present, lines below the logger's level are not even redacted. */
  isLevelEnabled?(level: string): boolean;
}

/** virtkit's {@link Logger} writing through a pino logger. */
export class PinoLogger implements Logger {
  readonly #pino: PinoLike;

  constructor(pino: PinoLike) {
    this.#pino = pino;
  }

  debug(msg: string, fields?: LogFields): void {
    this.#log("debug", msg, fields);
  }
  info(msg: string, fields?: LogFields): void {
    this.#log("info", msg, fields);
  }
  warn(msg: string, fields?: LogFields): void {
    this.#log("warn", msg, fields);
  }
  error(msg: string, fields?: LogFields): void {
    this.#log("error", msg, fields);
  }

  /** A pino child with the (redacted) fields bound. */
  child(fields: LogFields): PinoLogger {
    return new PinoLogger(this.#pino.child(redact(fields ?? {}) as Record<string, unknown>));
  }

  #log(level: LogLevel, msg: string, fields: LogFields | undefined): void {
    if (this.#pino.isLevelEnabled && !this.#pino.isLevelEnabled(level)) return;
    this.#pino[level](redact(fields ?? {}) as object, redactUrisInText(String(msg)));
  }
}

/** `pinoLogger(pino())`: virtkit's {@link Logger} over a pino logger. */
export function pinoLogger(pino: PinoLike): PinoLogger {
  return new PinoLogger(pino);
}
