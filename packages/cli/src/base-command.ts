/**
 * The base of every virtkit command: with `--json`, failures print `{"error": {code, message,
 * exit}}` and exit with the error's code (2 for usage errors), instead of oclif's raw error object.
 */
import { Command } from "@oclif/core";

/** Shared error handling. */
export abstract class VirtkitCommand extends Command {
  protected override toErrorJson(err: unknown): { error: { code: string; message: string; exit: number } } {
    const e = err as { code?: unknown; message?: unknown; oclif?: { exit?: unknown } };
    return {
      error: {
        code: typeof e.code === "string" ? e.code : "VIRTKIT_ERROR",
        message: String(e.message ?? err).replace(/\s+/g, " ").trim(),
        exit: exitOf(err),
      },
    };
  }

  override async catch(err: Error & { exitCode?: number }): Promise<unknown> {
    if (this.jsonEnabled()) process.exitCode = exitOf(err);
    return super.catch(err);
  }
}

function exitOf(err: unknown): number {
  const exit = (err as { oclif?: { exit?: unknown } }).oclif?.exit;
  return typeof exit === "number" ? exit : 1;
}
