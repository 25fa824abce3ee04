// From a decoded call to a result: method lookup, parameter count and types, the session, fault
// switches, and Async.* calls run as tasks. Wire-neutral: the endpoints encode the outcome.
import { XapiError } from "./errors.js";
import { fieldTypes } from "./schema.js";
import type { XapiPool } from "./pool.js";
import type { CallContext, MessageDef } from "./registry.js";
import { TaskControl, createTask, finishTask } from "./tasks.js";
import { coerce, parseType } from "./wire/xapi-type.js";
import { xmlValue } from "./wire/xmlrpc.js";
import type { World } from "./world.js";

/** A call's outcome: a value with its XAPI type, or a XAPI error. */
export type Outcome = { readonly ok: true; readonly value: unknown; readonly type: string } | { readonly ok: false; readonly error: XapiError };

/** The role of the endpoint a call arrived on. */
export interface EndpointRole {
  readonly pool: XapiPool;
  /** Set on a pool member that is not the master: every call answers HOST_IS_SLAVE. */
  readonly masterAddress?: string;
}

/** Resolve after ms; the timer does not keep the process alive. */
export function sleep(ms: number): Promise<void> {
  if (ms <= 0) return Promise.resolve();
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

/** The XML-RPC text XAPI stores in task.result. */
export function taskResult(value: unknown, type: string): string {
  if (type === "void") return "";
  return xmlValue(value, parseType(type), fieldTypes);
}

/** Dispatch one call. */
export async function dispatch(world: World, role: EndpointRole, method: string, params: readonly unknown[]): Promise<Outcome> {
  const started = Date.now();
  let outcome: Outcome;
  try {
    outcome = { ok: true, ...(await run(world, role, method, params)) };
  } catch (e) {
    outcome = { ok: false, error: e instanceof XapiError ? e : new XapiError("INTERNAL_ERROR", [(e as Error).message]) };
  }
  // Method and outcome code only: arguments carry passwords, session refs and agent secrets.
  if (!world.logging) return outcome;
  const where = `${role.pool.layout.name}${role.masterAddress !== undefined ? " (slave)" : ""}`;
  world.log(`${where} ${method} -> ${outcome.ok ? "ok" : outcome.error.code} ${Date.now() - started}ms`);
  return outcome;
}

async function run(world: World, role: EndpointRole, method: string, params: readonly unknown[]): Promise<{ value: unknown; type: string }> {
  if (role.masterAddress !== undefined) throw new XapiError("HOST_IS_SLAVE", [role.masterAddress]);
  const isAsync = method.startsWith("Async.");
  const name = isAsync ? method.slice(6) : method;
  const def = world.registry.get(name);
  if (!def || (isAsync && !def.async)) throw new XapiError("MESSAGE_METHOD_UNKNOWN", [method]);
  const expected = def.params.length + (def.noSession ? 0 : 1);
  const optional = def.defaults?.length ?? 0;
  if (params.length > expected || params.length < expected - optional) {
    throw new XapiError("MESSAGE_PARAMETER_COUNT_MISMATCH", [method, String(expected), String(params.length)]);
  }
  const pool = role.pool;
  let session = "";
  let rest = params;
  if (!def.noSession) {
    session = typeof params[0] === "string" ? params[0] : "";
    pool.checkSession(session);
    rest = params.slice(1);
  }
  const args = def.params.map(([pname, ptype], i) => {
    const v = i < rest.length ? rest[i] : def.defaults?.[i - (def.params.length - optional)];
    return coerce(v, parseType(ptype), pname, fieldTypes);
  });
  const failure = world.faults.takeFailure(name);
  if (!isAsync) {
    if (failure) throw failure;
    const ctx: CallContext = { pool, session, method: name, task: undefined, sleep };
    return { value: (await def.handler(ctx, args)) ?? "", type: def.result };
  }
  return { value: startTask(world, pool, session, name, def, args, failure), type: "task ref" };
}

function startTask(world: World, pool: XapiPool, session: string, name: string, def: MessageDef, args: readonly unknown[], failure: XapiError | undefined): string {
  const ref = createTask(pool.db, `Async.${name}`, pool.master);
  const control = new TaskControl(ref);
  world.tasks.set(ref, control);
  const hang = world.faults.takeHang(name);
  // A hung task stops at its first wait, i.e. inside the operation (the VM shows it in
  // current_operations); a handler that never waits hangs before reporting its result.
  let hangPending = hang;
  const hangNow = async (): Promise<void> => {
    if (!hangPending) return;
    hangPending = false;
    await control.hang((release) => world.faults.onRelease(release));
  };
  const ctx: CallContext = {
    pool,
    session,
    method: name,
    task: control,
    sleep: async (ms) => {
      await hangNow();
      await control.sleep(ms);
    },
  };
  void (async () => {
    try {
      await Promise.resolve();
      if (failure) throw failure;
      control.check();
      const value = await def.handler(ctx, args);
      await hangNow();
      finishTask(pool.db, ref, { result: taskResult(value, def.result) });
    } catch (e) {
      const error = control.cancelled ? new XapiError("TASK_CANCELLED", [ref]) : e instanceof XapiError ? e : new XapiError("INTERNAL_ERROR", [(e as Error).message]);
      finishTask(pool.db, ref, { error });
    } finally {
      world.tasks.delete(ref);
    }
  })();
  return ref;
}
