/**
 * The logging the fake needs: `@virtkit/core`'s `Logger` without `child`, so a core logger, a
 * `MemoryLogger` or any object with the four level methods fits.
 */
import type { LogFields, Logger } from "@virtkit/core";

/** Structured fields of one log line. */
export type FakeLogFields = LogFields;

/** What the fake logs through; it is never given a password (only user names and ids). */
export type FakeLogger = Pick<Logger, "debug" | "info" | "warn" | "error">;

/** The logger of a fake built without one: every line dropped. */
export const SILENT_LOGGER: FakeLogger = Object.freeze({
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
});
