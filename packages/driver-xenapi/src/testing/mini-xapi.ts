/**
 * A tiny XAPI endpoint for the client's own tests (not the simulator): it speaks JSON-RPC at
 * /jsonrpc and XML-RPC at /, logs in, answers the handlers a test gives it, and records every
 * request so a test can look at the wire. Tasks finish through `event.from`, as XAPI's do.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { decodeValue, encodeMethodResponse, parseXml, type XapiValue } from "../xml-rpc.js";

/** A handler: return a value, or throw `[code, ...params]` (an array) for a XAPI failure. */
export type MiniHandler = (params: XapiValue[]) => XapiValue | Promise<XapiValue>;

/** Options of {@link startMiniXapi}. */
export interface MiniXapiOptions {
  readonly jsonRpc?: boolean;
  /** Answer every call with HOST_IS_SLAVE [master]. */
  readonly slaveOf?: string;
  readonly password?: string;
}

/** A running mini endpoint. */
export interface MiniXapi {
  readonly url: string;
  readonly address: string;
  readonly handlers: Map<string, MiniHandler>;
  /** Every request: method and params (sessions included), in order. */
  readonly calls: { method: string; params: XapiValue[]; protocol: "json" | "xml" }[];
  /** Invalidates every session. */
  dropSessions(): void;
  /** Creates a task that finishes after `ms` with `result` (an XML value fragment) or `error`. */
  task(ms: number, outcome: { result?: string; error?: string[] }): string;
  close(): Promise<void>;
}

/** Starts a mini XAPI on loopback. */
export async function startMiniXapi(options: MiniXapiOptions = {}): Promise<MiniXapi> {
  const handlers = new Map<string, MiniHandler>();
  const calls: MiniXapi["calls"] = [];
  const sessions = new Set<string>();
  let nextSession = 1;
  let nextTask = 1;
  let eventId = 0;
  const events: { id: number; ref: string; snapshot: Record<string, XapiValue> }[] = [];
  const waiters = new Set<() => void>();
  const notify = () => {
    for (const w of [...waiters]) w();
  };
  const pushTask = (ref: string, snapshot: Record<string, XapiValue>) => {
    events.push({ id: ++eventId, ref, snapshot });
    notify();
  };

  handlers.set("event.from", async ([, , token, timeout]) => {
    const since = Number(token || 0);
    if (token === "") {
      return { events: [], valid_ref_counts: {}, token: String(eventId) };
    }
    const pending = () => events.filter((e) => e.id > since);
    if (pending().length === 0 && Number(timeout) > 0) {
      await new Promise<void>((resolve) => {
        const done = () => {
          waiters.delete(done);
          clearTimeout(t);
          resolve();
        };
        const t = setTimeout(done, Number(timeout) * 1000);
        waiters.add(done);
      });
    }
    const got = pending();
    return {
      events: got.map((e) => ({ id: String(e.id), class: "task", operation: "mod", ref: e.ref, snapshot: e.snapshot })),
      valid_ref_counts: {},
      token: String(got.length > 0 ? got[got.length - 1]!.id : since),
    };
  });
  handlers.set("task.destroy", () => "");
  handlers.set("task.cancel", () => "");

  const dispatch = async (method: string, params: XapiValue[]): Promise<{ ok: true; value: XapiValue } | { ok: false; error: string[] }> => {
    if (options.slaveOf) return { ok: false, error: ["HOST_IS_SLAVE", options.slaveOf] };
    if (method === "session.login_with_password") {
      if (params[1] !== (options.password ?? "secret-pw")) return { ok: false, error: ["SESSION_AUTHENTICATION_FAILED", String(params[0]), "bad"] };
      const ref = `OpaqueRef:session-${nextSession++}-d3adbeef`;
      sessions.add(ref);
      return { ok: true, value: ref };
    }
    if (method === "session.logout") {
      sessions.delete(String(params[0]));
      return { ok: true, value: "" };
    }
    if (!sessions.has(String(params[0]))) return { ok: false, error: ["SESSION_INVALID", String(params[0])] };
    const h = handlers.get(method);
    if (!h) return { ok: false, error: ["MESSAGE_METHOD_UNKNOWN", method] };
    try {
      return { ok: true, value: await h(params) };
    } catch (err) {
      if (Array.isArray(err)) return { ok: false, error: err.map(String) };
      throw err;
    }
  };

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      void (async () => {
        const body = Buffer.concat(chunks).toString("utf8");
        if (req.url === "/jsonrpc" && req.method === "POST") {
          if (options.jsonRpc === false) {
            res.writeHead(404).end();
            return;
          }
          const msg = JSON.parse(body) as { method: string; params: XapiValue[]; id: number };
          calls.push({ method: msg.method, params: msg.params, protocol: "json" });
          const r = await dispatch(msg.method, msg.params);
          const payload = r.ok
            ? { jsonrpc: "2.0", result: r.value, id: msg.id }
            : { jsonrpc: "2.0", error: { code: 1, message: r.error[0], data: r.error.slice(1) }, id: msg.id };
          res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(payload));
          return;
        }
        if (req.url === "/" && req.method === "POST") {
          const root = parseXml(body);
          const call = root.children[0]!;
          const method = call.children.find((c) => c.name === "methodName")!.text;
          const paramsEl = call.children.find((c) => c.name === "params");
          const params = (paramsEl?.children ?? []).map((p) => decodeValue(p.children[0]!));
          calls.push({ method, params, protocol: "xml" });
          const r = await dispatch(method, params);
          const value: XapiValue = r.ok ? { Status: "Success", Value: r.value } : { Status: "Failure", ErrorDescription: r.error };
          res.writeHead(200, { "content-type": "text/xml" }).end(encodeMethodResponse(value));
          return;
        }
        res.writeHead(404).end();
      })();
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    address: `127.0.0.1:${port}`,
    handlers,
    calls,
    dropSessions: () => sessions.clear(),
    task(ms, outcome) {
      const ref = `OpaqueRef:task-${nextTask++}`;
      setTimeout(() => {
        pushTask(ref, {
          status: outcome.error ? "failure" : "success",
          result: outcome.result ?? "",
          error_info: outcome.error ?? [],
        });
      }, ms);
      return ref;
    },
    async close() {
      notify();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
