// The messages the simulator answers: name, parameters and result in XAPI's own terms (checked
// against the datamodel by schema.test.ts), and the handler that implements each.
import type { XapiClass } from "./schema.js";
import type { TaskControl } from "./tasks.js";
import type { XapiPool } from "./pool.js";

/** What a handler gets besides its arguments. */
export interface CallContext {
  readonly pool: XapiPool;
  /** The caller's session ref ("" for login). */
  readonly session: string;
  /** "VM.start" (without "Async."). */
  readonly method: string;
  /** The task of an Async call (cancellation, result). */
  readonly task: TaskControl | undefined;
  /** Wait, waking early with TASK_CANCELLED when the task is cancelled. */
  sleep(ms: number): Promise<void>;
}

/** A message implementation. Arguments arrive already checked against the parameter types. */
export type Handler = (ctx: CallContext, args: readonly unknown[]) => unknown;

/** One XAPI message the simulator answers. */
export interface MessageDef {
  readonly cls: XapiClass | "event";
  readonly name: string;
  /** Parameters after session_id, as [name, XAPI type]. */
  readonly params: readonly (readonly [string, string])[];
  /** Values for trailing parameters older clients may leave out (XAPI's defaulted parameters). */
  readonly defaults?: readonly unknown[];
  /** The XAPI result type ("void", "VM ref", ...; "event batch" for event.from). */
  readonly result: string;
  /** session.login_with_password takes no session. */
  readonly noSession?: boolean;
  /** May be called as Async.<cls>.<name>. */
  readonly async?: boolean;
  readonly handler: Handler;
}

/** Shorthand to declare a message. */
export function message(
  cls: XapiClass | "event",
  name: string,
  params: MessageDef["params"],
  result: string,
  handler: Handler,
  extra: Partial<Pick<MessageDef, "defaults" | "noSession" | "async">> = {},
): MessageDef {
  return { cls, name, params, result, handler, ...extra };
}
