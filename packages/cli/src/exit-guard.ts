/**
 * While drivers run in the CLI's own process (the direct runner, `--explore`), a driver's
 * `process.exit(0)` would end the command at once with the driver's code: no report, exit 0, read
 * by CI as a pass. Under the guard `process.exit` throws instead, so the call fails the scenario
 * that made it; and should the process end anyway mid-run (an exit captured before the guard, a
 * native addon), its code is made 1 and stderr says the run did not finish.
 */

/** `process.exit` as it was before any guard: the CLI's own way out (the second Ctrl-C, the grace's end). */
export const exitNow: (code: number) => never = process.exit.bind(process) as (code: number) => never;

/** What a guarded `process.exit` throws. */
export class ExitDuringRunError extends Error {
  override name = "ExitDuringRunError";
  constructor(readonly exitCode: unknown) {
    super(`process.exit(${String(exitCode ?? "")}) was called during the conformance run: refused (it would end the run without a report, as a pass)`);
  }
}

/**
 * Guards `process` until the returned function is called. `onAttempt` hears of every refused exit
 * (the command fails the run for it, whatever the level of the scenario that made it).
 */
export function guardExit(target: NodeJS.Process = process, onAttempt?: (err: ExitDuringRunError) => void): () => void {
  const original = target.exit;
  const refuse = (code?: unknown): never => {
    const err = new ExitDuringRunError(code);
    onAttempt?.(err);
    throw err;
  };
  target.exit = refuse as typeof target.exit;
  const onExit = (code: number): void => {
    target.stderr.write(`virtkit: the process is ending (code ${code}) before the run finished: no report was written\n`);
    if (!target.exitCode) target.exitCode = 1;
  };
  target.on("exit", onExit);
  return () => {
    if (target.exit === (refuse as typeof target.exit)) target.exit = original;
    target.removeListener("exit", onExit);
  };
}

/** One line for an error thrown outside any scenario (its first line, bounded). */
function strayLine(kind: string, err: unknown): string {
  const text = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
  return `${kind}: ${text.split("\n")[0]!.slice(0, 500)}`;
}

/**
 * While drivers run in this process: an uncaught exception or unhandled rejection of their code
 * would end the command with a stack trace and no report. Collected instead (and said at once on
 * stderr), they fail the run through the report's `errors`.
 */
export function collectStrayErrors(target: NodeJS.Process = process): { readonly errors: string[]; release(): void } {
  const errors: string[] = [];
  const onError = (kind: string) => (err: unknown) => {
    const line = strayLine(kind, err);
    errors.push(line);
    target.stderr.write(`virtkit: ${line} (outside any scenario: the run will fail)\n`);
  };
  const onException = onError("uncaught exception");
  const onRejection = onError("unhandled rejection");
  target.on("uncaughtException", onException);
  target.on("unhandledRejection", onRejection);
  return {
    errors,
    release: () => {
      target.removeListener("uncaughtException", onException);
      target.removeListener("unhandledRejection", onRejection);
    },
  };
}
