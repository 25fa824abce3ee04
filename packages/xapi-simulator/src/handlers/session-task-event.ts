// session.*, task.cancel/destroy and event.from / event.get_current_id.
import { XapiError } from "../errors.js";
import type { LoggedEvent, XapiRecord } from "../database.js";
import type { MessageDef } from "../registry.js";
import { message } from "../registry.js";
import type { XapiClass } from "../schema.js";
import { XAPI_CLASSES, classByName } from "../schema.js";

/** An event as event.from returns it. */
export interface WireEvent {
  id: number;
  timestamp: string;
  class: string;
  operation: "add" | "mod" | "del";
  ref: string;
  snapshot?: XapiRecord;
}

/** event.from's result. */
export interface EventBatch {
  events: WireEvent[];
  valid_ref_counts: Record<string, number>;
  token: string;
}

/** XAPI's token form: the last event id, zero-padded, and a message generation. */
export function formatToken(id: number): string {
  return `${String(id).padStart(20, "0")},${"0".padStart(20, "0")}`;
}

function parseToken(token: string): number {
  if (token === "") return -1;
  const m = /^(\d+)(?:,\d+)?$/.exec(token);
  if (!m) throw new XapiError("EVENT_FROM_TOKEN_PARSE_FAILURE", [token]);
  return Number(m[1]);
}

interface Subscription {
  readonly all: boolean;
  readonly classes: Set<XapiClass>;
  readonly objects: Set<string>;
}

function parseSubscription(classes: readonly string[]): Subscription {
  const sub: Subscription = { all: false, classes: new Set(), objects: new Set() };
  for (const c of classes) {
    if (c === "*") {
      (sub as { all: boolean }).all = true;
      continue;
    }
    const slash = c.indexOf("/");
    const name = slash < 0 ? c : c.slice(0, slash);
    const cls = classByName(name);
    // A class XAPI has but the simulator does not hold never has events here.
    if (!cls) continue;
    if (slash < 0) sub.classes.add(cls);
    else sub.objects.add(`${cls}/${c.slice(slash + 1)}`);
  }
  return sub;
}

function matches(sub: Subscription, cls: XapiClass, ref: string): boolean {
  return sub.all || sub.classes.has(cls) || sub.objects.has(`${cls}/${ref}`);
}

function collect(ctx: Parameters<MessageDef["handler"]>[0], sub: Subscription, since: number): EventBatch {
  const db = ctx.pool.db;
  const events: WireEvent[] = [];
  const subscribed = XAPI_CLASSES.filter((c) => sub.all || sub.classes.has(c) || [...sub.objects].some((o) => o.startsWith(`${c}/`)));
  if (since < 0) {
    // An empty token: the current state of every subscribed object, as "add" events.
    for (const cls of subscribed) {
      for (const [ref, r] of db.all(cls)) {
        if (!matches(sub, cls, ref)) continue;
        events.push({ id: db.currentId, timestamp: "", class: cls.toLowerCase(), operation: "add", ref, snapshot: r });
      }
    }
  } else {
    const latest = new Map<string, LoggedEvent>();
    for (const ev of db.eventsSince(since)) if (matches(sub, ev.cls, ev.ref)) latest.set(`${ev.cls}/${ev.ref}`, ev);
    for (const ev of [...latest.values()].sort((a, b) => a.id - b.id)) {
      const live = db.find(ev.cls, ev.ref);
      if (live) {
        const created = db.createdAt(ev.cls, ev.ref) ?? 0;
        events.push({ id: ev.id, timestamp: ev.timestamp, class: ev.cls.toLowerCase(), operation: created > since ? "add" : "mod", ref: ev.ref, snapshot: live });
      } else {
        events.push({ id: ev.id, timestamp: ev.timestamp, class: ev.cls.toLowerCase(), operation: "del", ref: ev.ref, ...(ev.last ? { snapshot: ev.last } : {}) });
      }
    }
  }
  const counts: Record<string, number> = {};
  for (const cls of subscribed) counts[cls.toLowerCase()] = db.all(cls).size;
  return { events, valid_ref_counts: counts, token: formatToken(db.currentId) };
}

/** session, task and event messages. */
export function sessionTaskEventMessages(): MessageDef[] {
  return [
    message(
      "session",
      "login_with_password",
      [
        ["uname", "string"],
        ["pwd", "string"],
        ["version", "string"],
        ["originator", "string"],
      ],
      "session ref",
      (ctx, [uname, pwd, , originator]) => ctx.pool.world.login(ctx.pool, uname as string, pwd as string, originator as string),
      { noSession: true, defaults: ["", ""] },
    ),
    message("session", "logout", [], "void", (ctx) => ctx.pool.logout(ctx.session)),
    message("task", "cancel", [["task", "task ref"]], "void", (ctx, [ref]) => ctx.pool.world.cancelTask(ctx.pool, ref as string)),
    message("task", "destroy", [["self", "task ref"]], "void", (ctx, [ref]) => {
      ctx.pool.db.get("task", ref as string);
      ctx.pool.db.destroy("task", ref as string);
    }),
    message("event", "get_current_id", [], "int", (ctx) => ctx.pool.db.currentId),
    message(
      "event",
      "from",
      [
        ["classes", "string set"],
        ["token", "string"],
        ["timeout", "float"],
      ],
      "event batch",
      async (ctx, [classes, token, timeout]) => {
        const sub = parseSubscription(classes as string[]);
        const since = parseToken(token as string);
        const first = collect(ctx, sub, since);
        if (first.events.length > 0 || since < 0) return first;
        const deadline = Date.now() + Math.max(0, Number(timeout)) * 1000;
        const db = ctx.pool.db;
        // Wait for a change of a subscribed object, or the timeout, as XAPI does.
        for (;;) {
          const left = deadline - Date.now();
          if (left <= 0) return collect(ctx, sub, since);
          await new Promise<void>((resolve) => {
            const timer = setTimeout(done, left).unref();
            const off = db.onChange(done);
            function done(): void {
              clearTimeout(timer);
              off();
              resolve();
            }
          });
          // XAPI lets a woken event.from sleep before it collects (xapi_event.ml, from_inner:
          // Thread.delay 0.05), so the changes of one operation come back in one batch.
          const batchMs = ctx.pool.world.options.eventBatchMs;
          if (batchMs > 0) await new Promise<void>((r) => setTimeout(r, Math.min(batchMs, Math.max(0, deadline - Date.now()))).unref());
          const batch = collect(ctx, sub, since);
          if (batch.events.length > 0) return batch;
        }
      },
    ),
  ];
}
