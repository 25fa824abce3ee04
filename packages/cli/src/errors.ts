/** Turns a typed virtkit error into ONE clear line and exit 2 (usage: bad driver, bad options). */
import { Errors } from "@oclif/core";

/** Codes that mean the user asked for something wrong. */
const USAGE_CODES = new Set(["VIRTKIT_DRIVER_LOAD_FAILED", "VIRTKIT_INVALID_INPUT"]);

/** Rethrows `err` as a CLIError: usage errors exit 2, an interruption 130, anything else 1; never a stack trace. */
export function toCliError(err: unknown): Errors.CLIError {
  // Already the CLI's own (a report path refused once the run started): its exit code stands.
  if (err instanceof Errors.CLIError) return err;
  const code = typeof err === "object" && err !== null ? (err as { code?: unknown }).code : undefined;
  const message = err instanceof Error ? err.message : String(err);
  const usage = typeof code === "string" && USAGE_CODES.has(code);
  return new Errors.CLIError(message.split("\n")[0] ?? message, {
    exit: usage ? 2 : code === "VIRTKIT_INTERRUPTED" ? 130 : 1,
    code: typeof code === "string" ? code : "VIRTKIT_ERROR",
  });
}
