/**
 * After a command has written its report and cleaned up, nothing of virtkit's keeps the process
 * alive. A driver under test that leaves a handle open (an interval it never clears, a socket it
 * never closes) would: the CLI would hang after the report with its exit code unsaid. So, once
 * the command is done, an unref'd timer waits a moment; if the process is still alive then, it
 * says on stderr which kinds of handle hold it and exits with the command's code.
 */

/** How long the process may take to empty its event loop on its own before it is ended. */
export const HELD_OPEN_GRACE_MS = 1_000;

/** The process's standard streams are pipes or terminals: their handles are not the driver's. */
const STDIO_KINDS = new Set(["PipeWrap", "TTYWrap"]);
const STDIO_COUNT = 3;

/** Options of {@link exitWhenHeldOpen} (stand-ins in tests). */
export interface HeldOpenOptions {
  readonly graceMs?: number;
  /** The kinds of the resources keeping the loop alive (default `process.getActiveResourcesInfo`). */
  readonly resources?: () => readonly string[];
  readonly write?: (text: string) => void;
  /** The code the command chose (default `process.exitCode`, 0 when unset). */
  readonly code?: () => number;
  readonly exit?: (code: number) => void;
}

/** `["Timeout", "Timeout", "TCPSocketWrap", "PipeWrap"]` → `2 Timeout, 1 TCPSocketWrap` (the standard streams left out). */
export function describeHandles(kinds: readonly string[]): string {
  const counts = new Map<string, number>();
  let stdio = 0;
  for (const kind of kinds) {
    if (STDIO_KINDS.has(kind) && stdio < STDIO_COUNT) {
      stdio += 1;
      continue;
    }
    counts.set(kind, (counts.get(kind) ?? 0) + 1);
  }
  if (counts.size === 0) return "of a kind Node does not name";
  return [...counts].map(([kind, n]) => `${n} ${kind}`).join(", ");
}

/** The command's exit code as `process.exitCode` holds it (a number, a numeric string, or unset). */
function commandCode(): number {
  const code = Number(process.exitCode ?? 0);
  return Number.isInteger(code) ? code : 1;
}

/** Arms the check: call once, when the command is done. Never keeps the process alive itself. */
export function exitWhenHeldOpen(options: HeldOpenOptions = {}): void {
  const resources = options.resources ?? (() => process.getActiveResourcesInfo());
  const write = options.write ?? ((text: string) => process.stderr.write(text));
  const exit = options.exit ?? ((code: number) => process.exit(code));
  const timer = setTimeout(() => {
    const code = (options.code ?? commandCode)();
    write(
      `virtkit: the command is done, but handles left open keep the process alive (${describeHandles(resources())}): ` +
        `the driver under test (or its environment) did not release them in its cleanup; exiting with code ${code}\n`,
    );
    exit(code);
  }, options.graceMs ?? HELD_OPEN_GRACE_MS);
  timer.unref();
}
