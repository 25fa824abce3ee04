/**
 * The XAPI client: JSON-RPC (POST /jsonrpc) with XML-RPC (POST /) as the fallback for hosts older
 * than XenServer 7.3, a session logged in once and renewed once on SESSION_INVALID, the pool
 * master followed on HOST_IS_SLAVE, `Async.*` calls awaited through their task with `event.from`
 * (no polling loop), the raw VDI transfers over HTTP, and every call bounded by
 * `{ signal, timeoutMs }`. The password and the session ref never leave this file except on the
 * wire: errors mask session refs and name URLs without their query.
 */
import type { IncomingMessage } from "node:http";
import {
  HypervisorUnavailableError,
  OperationAbortedError,
  OperationTimeoutError,
  timerDelay,
  withDeadline,
  type OperationOptions,
  type Secret,
  raceSignal,
} from "@virtkit/core";
import { HttpTransport } from "./http-transport.js";
import { XapiError, XapiTransportError, isXapiError, maskXapiParams, xapiErrorFrom } from "./xapi-error.js";
import {
  XapiFloat,
  XmlRpcParseError,
  decodeMethodResponse,
  decodeValueFragment,
  encodeMethodCall,
  type XapiValue,
} from "./xml-rpc.js";

/** The wire protocol in use. */
export type XapiProtocol = "json-rpc" | "xml-rpc";

/** A minimal logger (core's Logger fits). */
export interface ClientLogger {
  debug(msg: string, fields?: Readonly<Record<string, unknown>>): void;
  warn(msg: string, fields?: Readonly<Record<string, unknown>>): void;
}

/** `http://` to a host other than this machine's loopback: the password would cross the network in clear. */
export function plainHttpOffHost(url: URL | string): boolean {
  const u = typeof url === "string" ? new URL(url) : url;
  if (u.protocol !== "http:") return false;
  const host = u.hostname.replace(/^\[|\]$/g, "");
  return !(host === "localhost" || host === "::1" || /^127\./.test(host));
}

const CLEAR_TEXT_REFUSED = (host: string): string =>
  `http:// to ${host} would send the XAPI password across the network in clear: use https:// (with insecure=true for a self-signed certificate), or set allowHttp=true if the network is trusted`;

/** Options of a {@link XapiClient}. */
export interface XapiClientOptions {
  /** `https://host` (or `http://127.0.0.1:PORT` for a simulator). */
  readonly url: string;
  readonly username: string;
  readonly password: Secret;
  /** Skip TLS certificate verification; default false (certificates are verified). */
  readonly insecure?: boolean;
  /**
   * Allows `http://` to a host that is not this machine's loopback, the url's or a pool master's a
   * HOST_IS_SLAVE names (the password then crosses the network in clear); default false.
   */
  readonly allowHttp?: boolean;
  /** Default deadline of one call in ms (default 60 s). */
  readonly timeoutMs?: number;
  /** `auto` (default): JSON-RPC, falling back to XML-RPC when the host has no /jsonrpc. */
  readonly protocol?: "auto" | XapiProtocol;
  /** The `originator` given at login (default `virtkit`). */
  readonly originator?: string;
  /** Sockets per host (default 64). */
  readonly maxSockets?: number;
  readonly logger?: ClientLogger;
  /** Runs before every RPC (the conformance environment injects latency here). */
  readonly beforeCall?: (method: string, signal: AbortSignal) => Promise<void>;
}

/** Per-call options. */
export type CallOptions = OperationOptions;

/** One event of `event.from`. */
export interface XapiEvent {
  readonly id: string | number;
  readonly class: string;
  readonly operation: "add" | "mod" | "del";
  readonly ref: string;
  readonly snapshot?: Record<string, XapiValue>;
}

/** What `event.from` answers. */
export interface XapiEventBatch {
  readonly events: readonly XapiEvent[];
  readonly token: string;
}

/** The version string passed at login. */
export const LOGIN_VERSION = "2.x";
const FINAL_TASK_STATES = new Set(["success", "failure", "cancelled"]);
const EVENT_WAIT_SEC = 30;
/** How long finished tasks wait to be destroyed together. */
const DESTROY_BATCH_MS = 200;
/** Finished tasks remembered for a waiter that registers late. */
const FINISHED_KEEP = 2048;

/** True for the empty reference XAPI uses for "none". */
export const isNullRef = (ref: unknown): boolean => typeof ref !== "string" || ref === "" || ref === "OpaqueRef:NULL";

/** A XAPI client for one pool. */
export class XapiClient {
  readonly #options: XapiClientOptions;
  readonly #transport: HttpTransport;
  readonly #timeoutMs: number;
  #base: URL;
  #protocol: XapiProtocol | undefined;
  #session: Promise<string> | undefined;
  /** The session ref once the login resolved (the fast path of every call). */
  #sessionValue: string | undefined;
  /** Every session ref this client held, to mask them wherever they could appear. */
  readonly #sessionRefs: string[] = [];

  /** What no error may show: the session refs, and the password (a broken or hostile host may echo it). */
  #masked(): string[] {
    const pw = this.#options.password.reveal();
    return pw.length > 0 ? [...this.#sessionRefs, pw] : this.#sessionRefs;
  }
  #nextId = 1;
  #rpcUrls: { base: URL | undefined; urls: Map<string, URL> } = { base: undefined, urls: new Map() };
  #closed = false;
  readonly #tasks: EventWatcher;

  constructor(options: XapiClientOptions) {
    let base: URL;
    try {
      base = new URL(options.url);
    } catch {
      throw new XapiTransportError("the XAPI url is not a URL");
    }
    if (base.protocol !== "http:" && base.protocol !== "https:") {
      throw new XapiTransportError(`the XAPI url must be http(s), not ${base.protocol}`);
    }
    if (base.username || base.password) throw new XapiTransportError("the XAPI url must not carry credentials");
    if (options.allowHttp !== true && plainHttpOffHost(base)) throw new XapiTransportError(CLEAR_TEXT_REFUSED(base.host));
    this.#options = options;
    this.#base = new URL(base.origin);
    this.#protocol = options.protocol === "auto" || options.protocol === undefined ? undefined : options.protocol;
    this.#timeoutMs = options.timeoutMs ?? 60_000;
    this.#transport = new HttpTransport({ insecure: options.insecure, maxSockets: options.maxSockets });
    // The watcher masks its task errors as a reply's are, through this closure (never a public method).
    this.#tasks = new EventWatcher(this, () => this.#masked());
  }

  /** The pool master's origin currently in use (after any HOST_IS_SLAVE redirect). */
  get masterUrl(): string {
    return this.#base.origin;
  }

  /** The protocol negotiated (undefined before the first call). */
  get protocol(): XapiProtocol | undefined {
    return this.#protocol;
  }

  /** Logs in now (otherwise the first call does). */
  async login(options?: CallOptions): Promise<void> {
    await withDeadline("XAPI login", options, this.#timeoutMs, (signal) => this.#ensureSession(signal));
  }

  /** Calls `method` with the session ref prepended to `args`. */
  call<T = XapiValue>(method: string, args: readonly XapiValue[] = [], options?: CallOptions): Promise<T> {
    return withDeadline(`XAPI ${method}`, options, this.#timeoutMs, (signal) =>
      this.#callWithSession(method, args, signal),
    ) as Promise<T>;
  }

  /**
   * Calls `Async.<method>` and waits for its task through `event.from`; resolves with the task's
   * decoded result. On abort or deadline the task is cancelled (as far as XAPI allows).
   */
  callAsync<T = XapiValue>(method: string, args: readonly XapiValue[] = [], options?: CallOptions): Promise<T> {
    return withDeadline(`XAPI ${method}`, options, this.#timeoutMs, async (signal) => {
      const task = await this.#startTask(method, args, signal);
      return (await this.#tasks.wait(method, task, signal)) as T;
    }) as Promise<T>;
  }

  /**
   * Starts `Async.<method>` and returns its task ref with a promise of the result, so the caller
   * can cancel the task (`task.cancel`) while it runs.
   */
  async startAsync(
    method: string,
    args: readonly XapiValue[],
    options?: CallOptions & {
      /** The task's `progress` (0 to 1) each time the host moves it on, while the task is pending. */
      readonly onTaskProgress?: (fraction: number) => void;
    },
  ): Promise<{ readonly task: string; readonly result: Promise<XapiValue> }> {
    const task = await withDeadline(`XAPI ${method}`, options, this.#timeoutMs, (signal) => this.#startTask(method, args, signal));
    const result = withDeadline(`XAPI ${method}`, options, this.#timeoutMs, (signal) =>
      this.#tasks.wait(method, task, signal, options?.onTaskProgress),
    );
    result.catch(() => undefined);
    return { task, result };
  }

  /**
   * Sends `Async.<method>` and returns its task. The request is not cut off when `signal` fires:
   * XAPI may have started the task already, and a task nobody learns of runs to its end (a VM
   * moved after its caller was told the move was aborted). A task that arrives after the caller
   * gave up is cancelled at once.
   */
  async #startTask(method: string, args: readonly XapiValue[], signal: AbortSignal): Promise<string> {
    await this.#tasks.ready(signal);
    const task = await this.#callWithSession<string>(`Async.${method}`, args, AbortSignal.timeout(timerDelay(this.#timeoutMs)));
    if (signal.aborted) {
      void this.#callWithSession("task.cancel", [task], AbortSignal.timeout(5_000)).catch(() => undefined);
      throw signal.reason instanceof Error ? signal.reason : new Error(`XAPI ${method}: aborted`);
    }
    return task;
  }

  /** `event.from(classes, token, timeout)`. */
  async eventFrom(classes: readonly string[], token: string, timeoutSec: number, options?: CallOptions): Promise<XapiEventBatch> {
    const raw = await this.call<Record<string, XapiValue>>("event.from", [classes, token, new XapiFloat(timeoutSec)], {
      ...options,
      timeoutMs: options?.timeoutMs ?? timeoutSec * 1000 + this.#timeoutMs,
    });
    const events = Array.isArray(raw.events) ? (raw.events as unknown as XapiEvent[]) : [];
    return { events, token: typeof raw.token === "string" ? raw.token : token };
  }

  /**
   * Joins the client's one `event.from` stream (the one Async tasks are awaited through) for more
   * classes, e.g. `["vm"]`: the subscriber gets the baseline before this resolves, then every
   * batch until the returned function is called or the client closes. One subscriber per client.
   */
  watch(subscriber: EventSubscriber, options?: CallOptions): Promise<() => void> {
    return withDeadline("XAPI event.from", options, this.#timeoutMs, (signal) => this.#tasks.subscribe(subscriber, signal));
  }

  /** Writes `data` into a VDI with `PUT /import_raw_vdi` (format raw). */
  async importRawVdi(vdi: string, data: Uint8Array, options?: CallOptions): Promise<void> {
    await withDeadline("XAPI import_raw_vdi", options, this.#timeoutMs, async (signal) => {
      const session = await this.#ensureSession(signal);
      const url = this.#transferUrl("/import_raw_vdi", session, vdi, "raw");
      const reply = await this.#transport
        .request("PUT", url, data, { "content-type": "application/octet-stream" }, signal)
        .catch((err: unknown) => {
          throw this.#unavailable(err, signal);
        });
      if (reply.status !== 200) throw this.#httpFailure("import_raw_vdi", reply.status, reply.body);
    });
  }

  /**
   * Reads a VDI with `GET /export_raw_vdi` in `format` (`vhd`: a sparse dynamic VHD, `raw`: every
   * byte). Resolves once the host answered; the chunks stream as they arrive.
   */
  async exportRawVdi(
    vdi: string,
    format: "raw" | "vhd",
    options?: CallOptions,
  ): Promise<AsyncIterable<Uint8Array> & { close(): void }> {
    const controller = new AbortController();
    const outer = options?.signal;
    const onAbort = () => controller.abort(outer?.reason);
    outer?.addEventListener("abort", onAbort, { once: true });
    const res = await withDeadline("XAPI export_raw_vdi", options, this.#timeoutMs, async (signal) => {
      signal.addEventListener("abort", () => controller.abort(signal.reason), { once: true });
      const session = await this.#ensureSession(signal);
      const url = this.#transferUrl("/export_raw_vdi", session, vdi, format);
      const r = await this.#transport.stream("GET", url, {}, controller.signal).catch((err: unknown) => {
        throw this.#unavailable(err, signal);
      });
      if (r.statusCode !== 200) {
        const body = await collect(r).catch(() => Buffer.alloc(0));
        throw this.#httpFailure("export_raw_vdi", r.statusCode ?? 0, body);
      }
      return r;
    }).finally(() => outer?.removeEventListener("abort", onAbort));
    // The caller's abort closes the body too: an upload cut short while its reader had not begun
    // must not leave the host's response open. `close` does the same for a caller that gives up.
    const close = (): void => {
      res.destroy();
    };
    if (outer?.aborted) close();
    else outer?.addEventListener("abort", close, { once: true });
    res.once("close", () => outer?.removeEventListener("abort", close));
    return Object.assign(streamBody(res), { close });
  }

  /**
   * The raw value last read into each data source of a VM's RRD (`GET /vm_rrd`, rrdtool's XML,
   * `last_ds` by data source name); undefined when the host keeps no RRD for it (404: no domain
   * sampled yet). For DERIVE sources such as `cpu<N>` that value is Xen's cumulative counter
   * (seconds), which no XAPI message returns (VM.query_data_source gives the rate). A redirect
   * to the host running the VM is followed.
   */
  async vmRrdLastValues(vmUuid: string, options?: CallOptions): Promise<ReadonlyMap<string, number> | undefined> {
    return withDeadline("XAPI vm_rrd", options, this.#timeoutMs, async (signal) => {
      const session = await this.#ensureSession(signal);
      let url = new URL("/vm_rrd", this.#base);
      url.searchParams.set("session_id", session);
      url.searchParams.set("uuid", vmUuid);
      for (let hop = 0; ; hop++) {
        const reply = await this.#transport.request("GET", url, undefined, {}, signal).catch((err: unknown) => {
          throw this.#unavailable(err, signal);
        });
        const location = reply.headers.location;
        if ((reply.status === 301 || reply.status === 302 || reply.status === 307) && location && hop < 2) {
          const next = new URL(location, url);
          if (next.protocol !== "https:" && next.protocol !== "http:") throw new XapiTransportError("vm_rrd: redirected off HTTP(S)");
          // The session rides in the query: never in clear text to another machine (as for HOST_IS_SLAVE).
          if (this.#options.allowHttp !== true && plainHttpOffHost(next) && next.search.includes("session_id")) {
            throw new XapiTransportError(
              `vm_rrd: redirected to http://${next.host}, which would send the session across the network in clear (set allowHttp=true if the network is trusted)`,
            );
          }
          // XAPI's redirect to a pool member carries the query (the session) along; the session
          // is added only for the same origin, never handed to a host the redirect alone named.
          if (!next.searchParams.has("session_id") && next.origin === url.origin) next.searchParams.set("session_id", session);
          url = next;
          continue;
        }
        if (reply.status === 404) return undefined;
        if (reply.status !== 200) throw this.#httpFailure("vm_rrd", reply.status, reply.body);
        return parseRrdLastValues(reply.body.toString("utf8"));
      }
    });
  }

  /** Logs out and closes every socket. The client is unusable afterwards. */
  async close(options?: CallOptions): Promise<void> {
    if (this.#closed) return;
    this.#tasks.stop();
    // The finished tasks still waiting for their destroy go before the session does.
    if (this.#sessionValue !== undefined) {
      await withDeadline("XAPI task.destroy", { timeoutMs: 5_000, ...options }, 5_000, () => this.#tasks.flushDestroys()).catch(
        () => undefined,
      );
    }
    const session = this.#session;
    this.#session = undefined;
    this.#sessionValue = undefined;
    if (session) {
      // A login still under way is waited for within the close's deadline only (a host that never
      // answers would hold it for the whole client timeout); the sockets closed below end it.
      const ref = await withDeadline("XAPI close", { timeoutMs: 5_000, ...options }, 5_000, (signal) => raceSignal(session, signal)).catch(
        () => undefined,
      );
      if (ref) {
        await withDeadline("XAPI logout", { timeoutMs: 5_000, ...options }, 5_000, (signal) =>
          this.#rpc("session.logout", [ref], signal),
        ).catch(() => undefined);
      }
    }
    this.#closed = true;
    this.#transport.close();
  }

  /** @internal The call behind `call`, for the task watcher. */
  callRaw<T>(method: string, args: readonly XapiValue[], signal: AbortSignal): Promise<T> {
    return this.#callWithSession<T>(method, args, signal);
  }

  async #callWithSession<T>(method: string, args: readonly XapiValue[], signal: AbortSignal): Promise<T> {
    let relogged = false;
    let redirects = 0;
    for (;;) {
      const session = await this.#ensureSession(signal);
      try {
        return (await this.#rpc(method, [session, ...args], signal)) as T;
      } catch (err) {
        if (isXapiError(err, "SESSION_INVALID") && !relogged) {
          relogged = true;
          this.#dropSession(session);
          this.#options.logger?.warn("XAPI session no longer valid; logging in again", { method });
          continue;
        }
        if (isXapiError(err, "HOST_IS_SLAVE") && redirects < 3) {
          redirects++;
          this.#redirect(err.xapiParams[0]);
          this.#dropSession(session);
          continue;
        }
        throw err;
      }
    }
  }

  #dropSession(ref: string): void {
    // Only the session that failed. A concurrent call may already hold a new one, or be logging in
    // for one (dropping that pending login would orphan its session: never stored, never logged out).
    if (this.#sessionValue !== ref) return;
    this.#sessionValue = undefined;
    this.#session = undefined;
  }

  #ensureSession(signal: AbortSignal): Promise<string> {
    if (this.#closed) return Promise.reject(new HypervisorUnavailableError(this.#base.host, "the XAPI client is closed"));
    // The common case: logged in already, nothing to wait for.
    if (this.#sessionValue !== undefined && this.#session) {
      return signal.aborted ? Promise.reject(signal.reason as Error) : Promise.resolve(this.#sessionValue);
    }
    if (!this.#session) {
      // The login runs under its own deadline, not the first caller's signal, so a cancelled call
      // does not fail the calls waiting on the same login.
      const login = withDeadline("XAPI login", undefined, this.#timeoutMs, (s) => this.#login(s));
      this.#session = login;
      login.then(
        (ref) => {
          if (this.#session === login) this.#sessionValue = ref;
        },
        () => undefined,
      );
      login.catch(() => {
        if (this.#session === login) this.#session = undefined;
      });
    }
    return raceSignal(this.#session, signal);
  }

  async #login(signal: AbortSignal): Promise<string> {
    for (let redirects = 0; ; redirects++) {
      try {
        const ref = await this.#rpc(
          "session.login_with_password",
          [this.#options.username, this.#options.password.reveal(), LOGIN_VERSION, this.#options.originator ?? "virtkit"],
          signal,
        );
        if (typeof ref !== "string" || ref.length === 0) {
          throw new XapiTransportError("session.login_with_password answered no session reference");
        }
        this.#sessionRefs.push(ref);
        return ref;
      } catch (err) {
        if (isXapiError(err, "HOST_IS_SLAVE") && redirects < 3) {
          this.#redirect(err.xapiParams[0]);
          continue;
        }
        throw err;
      }
    }
  }

  #redirect(master: string | undefined): void {
    if (!master) return;
    const next = new URL(this.#base.origin);
    // XAPI names the master by address; a simulator (or a non-default port) gives `address:port`,
    // an IPv6 one `[address]:port`. A bare IPv6 address (more than one colon) has no port.
    const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(master);
    const plain = bracketed || master.split(":").length > 2 ? undefined : /^([^:]+)(?::(\d+))?$/.exec(master);
    const host = bracketed?.[1] ?? plain?.[1] ?? master;
    const port = bracketed?.[2] ?? plain?.[2];
    // URL's setters ignore what is no host or port, which would "follow" to the member itself: the
    // address is parsed whole instead, and refused when it is none (not echoed: a host may put anything there).
    let parsed: URL | undefined;
    try {
      parsed = new URL(`${next.protocol}//${host.includes(":") ? `[${host}]` : host}${port ? `:${port}` : ""}`);
    } catch {
      parsed = undefined;
    }
    if (!parsed || parsed.hostname === "" || parsed.username !== "" || parsed.pathname !== "/" || parsed.search !== "" || parsed.hash !== "") {
      throw new XapiTransportError(`the pool member named its master by something that is no host address (${master.length} characters)`);
    }
    next.hostname = parsed.hostname;
    if (port) next.port = parsed.port;
    // Whoever answers may name any master: the password goes there only as it would to the url.
    if (this.#options.allowHttp !== true && plainHttpOffHost(next)) {
      throw new XapiTransportError(`the pool member redirected to its master ${next.host}, but ${CLEAR_TEXT_REFUSED(next.host)}`);
    }
    this.#options.logger?.debug("XAPI host is a pool member; following the pool master", { master: next.host });
    this.#base = next;
  }

  /** One RPC on the wire; what fails it says nothing a hostile reply put there of the password or a session. */
  async #rpc(method: string, params: readonly XapiValue[], signal: AbortSignal): Promise<XapiValue> {
    try {
      return await this.#rpcOnWire(method, params, signal);
    } catch (err) {
      throw this.#scrubbed(err);
    }
  }

  /**
   * `err`, or when its message or a cause's holds the password or a session ref (a reply that
   * echoed it into a type name, a status text, ...), a transport error saying the same with them
   * masked and no cause (the cause is where the secret is).
   */
  #scrubbed(err: unknown): unknown {
    if (!(err instanceof Error) || err instanceof XapiError) return err;
    const secrets = this.#masked().filter((v) => v.length > 0);
    const texts: string[] = [];
    for (let e: unknown = err, depth = 0; e instanceof Error && depth < 8; e = e.cause, depth++) texts.push(e.message);
    if (!texts.some((t) => secrets.some((v) => t.includes(v)))) return err;
    const mask = (t: string) => secrets.reduce((out, v) => out.split(v).join("***"), t);
    const out = new XapiTransportError(mask(err.message));
    out.name = err.name;
    return out;
  }

  /** One RPC on the wire, JSON-RPC or XML-RPC. */
  async #rpcOnWire(method: string, params: readonly XapiValue[], signal: AbortSignal): Promise<XapiValue> {
    if (this.#options.beforeCall) await this.#options.beforeCall(method, signal);
    if (this.#protocol !== "xml-rpc") {
      const result = await this.#jsonRpc(method, params, signal);
      if (result !== NO_JSON_RPC) return result;
      this.#protocol = "xml-rpc";
      this.#options.logger?.debug("XAPI host has no JSON-RPC endpoint; using XML-RPC");
    }
    return this.#xmlRpc(method, params, signal);
  }

  async #jsonRpc(method: string, params: readonly XapiValue[], signal: AbortSignal): Promise<XapiValue | typeof NO_JSON_RPC> {
    const id = this.#nextId++;
    const body = JSON.stringify({ jsonrpc: "2.0", method, params, id });
    const url = this.#rpcUrl("/jsonrpc");
    const reply = await this.#transport
      .rpc(url, body, { "content-type": "application/json" }, signal, safeToRepeat(method))
      .catch((err: unknown) => {
        throw this.#unavailable(err, signal);
      });
    if (this.#protocol === undefined && (reply.status === 404 || reply.status === 405 || reply.status === 501)) {
      return NO_JSON_RPC;
    }
    if (reply.status !== 200) throw this.#httpFailure(method, reply.status, reply.body);
    let parsed: { result?: XapiValue; error?: { message?: unknown; data?: unknown } | unknown[] | null };
    try {
      parsed = JSON.parse(reply.body.toString("utf8")) as typeof parsed;
    } catch {
      if (this.#protocol === undefined) return NO_JSON_RPC;
      throw new XapiTransportError(`${method}: the host answered something that is not JSON`);
    }
    // JSON, but not a JSON-RPC reply (null, a number, an array): not XAPI.
    if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) {
      if (this.#protocol === undefined) return NO_JSON_RPC;
      throw new XapiTransportError(`${method}: the host answered JSON that is not a JSON-RPC reply`);
    }
    this.#protocol ??= "json-rpc";
    const error = parsed.error;
    if (error !== undefined && error !== null) {
      if (Array.isArray(error)) throw xapiErrorFrom(method, error, this.#masked());
      const data = Array.isArray(error.data) ? (error.data as unknown[]) : [];
      const code = typeof error.message === "string" ? error.message : undefined;
      throw xapiErrorFrom(method, code !== undefined ? [code, ...data] : data, this.#masked());
    }
    return parsed.result ?? "";
  }

  async #xmlRpc(method: string, params: readonly XapiValue[], signal: AbortSignal): Promise<XapiValue> {
    const url = this.#rpcUrl("/");
    const reply = await this.#transport
      .rpc(url, encodeMethodCall(method, params), { "content-type": "text/xml" }, signal, safeToRepeat(method))
      .catch((err: unknown) => {
        throw this.#unavailable(err, signal);
      });
    if (reply.status !== 200) throw this.#httpFailure(method, reply.status, reply.body);
    let value: XapiValue;
    try {
      value = decodeMethodResponse(reply.body.toString("utf8"));
    } catch (err) {
      if (err instanceof XmlRpcParseError) throw new XapiTransportError(`${method}: malformed XML-RPC reply (${err.message})`);
      throw err;
    }
    const v = value as { Status?: unknown; Value?: XapiValue; ErrorDescription?: unknown };
    if (v && typeof v === "object" && v.Status === "Success") return v.Value ?? "";
    if (v && typeof v === "object" && v.Status === "Failure") throw xapiErrorFrom(method, v.ErrorDescription, this.#masked());
    throw new XapiTransportError(`${method}: the XML-RPC reply has no Status`);
  }

  /** The RPC endpoint's URL, made once per master (never carries a session). */
  #rpcUrl(path: "/jsonrpc" | "/"): URL {
    if (this.#rpcUrls.base !== this.#base) this.#rpcUrls = { base: this.#base, urls: new Map() };
    let url = this.#rpcUrls.urls.get(path);
    if (!url) {
      url = new URL(path, this.#base);
      this.#rpcUrls.urls.set(path, url);
    }
    return url;
  }

  #transferUrl(path: string, session: string, vdi: string, format: string): URL {
    const url = new URL(path, this.#base);
    url.searchParams.set("session_id", session);
    url.searchParams.set("vdi", vdi);
    url.searchParams.set("format", format);
    return url;
  }

  #httpFailure(what: string, status: number, body: Buffer): Error {
    // Masked before it is cut and its odd characters blanked: either first would leave a part of
    // a secret (cut at the end, or with a letter blanked) that the mask no longer matches.
    const [head = ""] = maskXapiParams("", [body.toString("utf8", 0, Math.min(body.length, 4_096))], this.#masked());
    const text = head.slice(0, 200).replace(/[^\x20-\x7e]/g, " ").trim();
    const masked = xapiErrorFrom(what, ["HTTP_FAILURE", String(status), text], this.#masked());
    return new XapiTransportError(`${what}: HTTP ${status}`, { cause: masked });
  }

  /** A transport failure as core's error; an abort stays the caller's abort. */
  #unavailable(err: unknown, signal: AbortSignal): Error {
    if (signal.aborted) {
      const reason: unknown = signal.reason;
      if (reason instanceof OperationTimeoutError || reason instanceof OperationAbortedError) return reason;
      return new OperationAbortedError("XAPI call", { cause: reason });
    }
    const reason = err instanceof Error ? err.message : String(err);
    return new HypervisorUnavailableError(this.#base.host, reason, { cause: err });
  }
}

const NO_JSON_RPC = Symbol("no-json-rpc");

/**
 * Whether a call may be sent again after a reset that came before any byte of its reply: reads,
 * the event stream, and calls whose repeat only fails or costs a session (login, logout, task
 * cancel and destroy). Anything else (VM.snapshot, VDI.create, Async.VM.start_on, ...) may have run
 * on a host that dropped the link before answering: sending it again would run it twice.
 */
function safeToRepeat(method: string): boolean {
  return /^(Async\.)?[A-Za-z_]+\.get_/.test(method) || SAFE_TO_REPEAT.has(method);
}
const SAFE_TO_REPEAT = new Set(["event.from", "session.login_with_password", "session.logout", "task.cancel", "task.destroy"]);

/** `last_ds` of every `<ds>` in the head of an rrdtool XML dump (the `<rra>` archives are skipped). */
export function parseRrdLastValues(xml: string): ReadonlyMap<string, number> {
  const head = xml.slice(0, xml.indexOf("<rra>") >= 0 ? xml.indexOf("<rra>") : xml.length);
  const out = new Map<string, number>();
  for (const m of head.matchAll(/<ds>([\s\S]*?)<\/ds>/g)) {
    const body = m[1] ?? "";
    const name = /<name>\s*([^<]*?)\s*<\/name>/.exec(body)?.[1];
    const last = Number(/<last_ds>\s*([^<]*?)\s*<\/last_ds>/.exec(body)?.[1] ?? Number.NaN);
    if (name && Number.isFinite(last)) out.set(name, last);
  }
  if (!/<rrd>/.test(xml)) throw new XapiTransportError("vm_rrd: the host answered something that is not an RRD");
  return out;
}

async function collect(res: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of res) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

async function* streamBody(res: IncomingMessage): AsyncIterable<Uint8Array> {
  let received = 0;
  for await (const c of res) {
    received += (c as Buffer).byteLength;
    yield c as Buffer;
  }
  if (!res.complete) throw new XapiTransportError(`export_raw_vdi: the stream was cut off after ${received} bytes`);
}

interface Waiter {
  resolve(value: XapiValue): void;
  reject(err: unknown): void;
  readonly method: string;
  /** Told the task's progress while it is pending (never after it settled). */
  readonly onProgress?: (fraction: number) => void;
}

/** Receives the events of classes other than `task` from the client's one `event.from` stream. */
export interface EventSubscriber {
  /** The classes wanted besides `task`, e.g. `["vm"]`. */
  readonly classes: readonly string[];
  /**
   * Events in XAPI's order. `baseline`: the current state of every object after a (re)start of the
   * stream (the first one, or after lost events): nothing in it is a change to announce.
   */
  onEvents(events: readonly XapiEvent[], baseline: boolean): void;
  /** A poll failed; the stream retries on its own. */
  onError?(err: unknown): void;
}

/** Resolves after `ms`, or at once when `signal` fires. */
function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
  });
}

/**
 * One `event.from` long poll per client, its own token: it settles the Async tasks awaited (finished
 * tasks are remembered briefly for a waiter that registers after the event went by) and feeds the
 * subscriber (the driver's VM events) from the same stream. One stream, not one per class: a task's
 * end and the VM changes it made arrive in XAPI's order, so the subscriber has seen a VM's new state
 * by the time the task that made it resolves, and each change wakes one poll instead of two.
 */
class EventWatcher {
  #token: Promise<string> | undefined;
  /** Bumped whenever the stream restarts (new subscriber, lost events): batches of an older epoch carry no token. */
  #epoch = 0;
  #subscriber: EventSubscriber | undefined;
  readonly #waiters = new Map<string, Waiter>();
  readonly #finished = new Map<string, Record<string, XapiValue>>();
  #running = false;
  #stopped = false;
  #poll: AbortController | undefined;
  readonly #toDestroy: string[] = [];
  #destroyTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly client: XapiClient,
    /** What no task error may show (the client's session refs and password). */
    private readonly masked: () => string[],
  ) {}

  #classes(): string[] {
    return this.#subscriber ? ["task", ...this.#subscriber.classes] : ["task"];
  }

  /** Makes sure a token exists, so every task created from now on is seen. */
  async ready(signal: AbortSignal): Promise<void> {
    await this.#ensureToken(signal);
  }

  #ensureToken(signal: AbortSignal): Promise<string> {
    if (!this.#token) {
      const epoch = this.#epoch;
      const sub = this.#subscriber;
      const p = this.client.callRaw<Record<string, XapiValue>>("event.from", [this.#classes(), "", new XapiFloat(0)], signal).then((r) => {
        if (sub && epoch === this.#epoch && sub === this.#subscriber) {
          const events = (Array.isArray(r.events) ? r.events : []) as unknown as XapiEvent[];
          sub.onEvents(
            events.filter((ev) => ev.class !== "task"),
            true,
          );
        }
        return typeof r.token === "string" ? r.token : "";
      });
      this.#token = p;
      p.catch(() => {
        if (this.#token === p) this.#token = undefined;
      });
    }
    return this.#token;
  }

  /** Starts the stream over: a new baseline (and a new token) before the next poll. */
  #restart(): void {
    this.#epoch++;
    this.#token = undefined;
    this.#poll?.abort(new Error("the event stream restarts"));
  }

  /** Joins the stream (one subscriber per client); resolves once the baseline was delivered. */
  async subscribe(sub: EventSubscriber, signal: AbortSignal): Promise<() => void> {
    if (this.#stopped) throw new HypervisorUnavailableError("xapi", "the XAPI client was closed");
    if (this.#subscriber) throw new XapiTransportError("the XAPI client's event stream has a subscriber already");
    this.#subscriber = sub;
    this.#restart();
    try {
      await this.#ensureToken(signal);
    } catch (err) {
      if (this.#subscriber === sub) this.#subscriber = undefined;
      throw err;
    }
    this.#loop();
    return () => {
      if (this.#subscriber !== sub) return;
      this.#subscriber = undefined;
      // The poll in flight asks for the subscriber's classes too: let it go unless tasks are awaited.
      if (this.#waiters.size === 0) this.#restart();
    };
  }

  wait(method: string, task: string, signal: AbortSignal, onProgress?: (fraction: number) => void): Promise<XapiValue> {
    const done = this.#finished.get(task);
    if (done) {
      this.#finished.delete(task);
      return this.#settle(method, task, done);
    }
    return new Promise<XapiValue>((resolve, reject) => {
      const onAbort = () => {
        this.#waiters.delete(task);
        // Cancel what we no longer wait for; XAPI refuses for tasks that cannot be cancelled.
        void this.client
          .callRaw("task.cancel", [task], AbortSignal.timeout(5_000))
          .catch(() => undefined);
        reject(signal.reason as Error);
      };
      if (signal.aborted) return onAbort();
      signal.addEventListener("abort", onAbort, { once: true });
      this.#waiters.set(task, {
        method,
        ...(onProgress ? { onProgress } : {}),
        resolve: (v) => {
          signal.removeEventListener("abort", onAbort);
          resolve(v);
        },
        reject: (e) => {
          signal.removeEventListener("abort", onAbort);
          reject(e);
        },
      });
      this.#loop();
    });
  }

  stop(): void {
    this.#stopped = true;
    this.#subscriber = undefined;
    this.#poll?.abort(new Error("the XAPI client is closing"));
    for (const w of this.#waiters.values()) w.reject(new HypervisorUnavailableError("xapi", "the XAPI client was closed"));
    this.#waiters.clear();
  }

  /**
   * Finished tasks are destroyed, as Nova did, so they do not pile up on the host; in bursts
   * (every {@link DESTROY_BATCH_MS} ms, and at close) rather than one by one: each destroy is an
   * event for every `event.from` on tasks in the pool, and a burst wakes them once, not per task.
   */
  #destroyLater(task: string): void {
    this.#toDestroy.push(task);
    if (this.#destroyTimer) return;
    this.#destroyTimer = setTimeout(() => void this.flushDestroys(), DESTROY_BATCH_MS);
    this.#destroyTimer.unref();
  }

  /** Destroys the finished tasks not destroyed yet (failures ignored: XAPI collects old tasks too). */
  async flushDestroys(): Promise<void> {
    clearTimeout(this.#destroyTimer);
    this.#destroyTimer = undefined;
    const batch = this.#toDestroy.splice(0);
    await Promise.all(
      batch.map((task) => this.client.callRaw("task.destroy", [task], AbortSignal.timeout(10_000)).catch(() => undefined)),
    );
  }

  #settle(method: string, task: string, record: Record<string, XapiValue>): Promise<XapiValue> {
    this.#destroyLater(task);
    const status = record.status;
    if (status === "success") {
      try {
        return Promise.resolve(decodeValueFragment(typeof record.result === "string" ? record.result : ""));
      } catch {
        return Promise.reject(new XapiTransportError(`${method}: the task's result is not an XML-RPC value`));
      }
    }
    if (status === "cancelled") return Promise.reject(new XapiError(method, "TASK_CANCELLED", [task]));
    // A task's error_info is the host's text as much as a reply is: masked alike.
    return Promise.reject(xapiErrorFrom(method, record.error_info, this.masked()));
  }

  #wanted(): boolean {
    return !this.#stopped && (this.#waiters.size > 0 || this.#subscriber !== undefined);
  }

  #loop(): void {
    if (this.#running || this.#stopped) return;
    this.#running = true;
    void this.#run().finally(() => {
      this.#running = false;
      if (this.#wanted()) this.#loop();
    });
  }

  async #run(): Promise<void> {
    let failures = 0;
    while (this.#wanted()) {
      const epoch = this.#epoch;
      const poll = new AbortController();
      this.#poll = poll;
      const signal = AbortSignal.any([poll.signal, AbortSignal.timeout((EVENT_WAIT_SEC + 30) * 1000)]);
      try {
        const token = await this.#ensureToken(signal);
        if (epoch !== this.#epoch) continue;
        const r = await this.client.callRaw<Record<string, XapiValue>>(
          "event.from",
          [this.#classes(), token, new XapiFloat(EVENT_WAIT_SEC)],
          signal,
        );
        failures = 0;
        const events = (Array.isArray(r.events) ? r.events : []) as unknown as XapiEvent[];
        // A batch asked for before the stream restarted: its tasks are real, its token and the
        // subscriber's events are not (the new baseline may be newer than their snapshots).
        const current = epoch === this.#epoch;
        if (current && typeof r.token === "string") this.#token = Promise.resolve(r.token);
        const others: XapiEvent[] = [];
        for (const ev of events) {
          if (ev.class !== "task") {
            others.push(ev);
            continue;
          }
          if (!ev.snapshot) continue;
          const status = ev.snapshot.status;
          if (status === "pending") {
            const progress = ev.snapshot.progress;
            // A callback that throws is the caller's problem, not the event stream's.
            if (typeof progress === "number" && Number.isFinite(progress)) {
              try {
                this.#waiters.get(ev.ref)?.onProgress?.(Math.min(1, Math.max(0, progress)));
              } catch {
                // ignored
              }
            }
            continue;
          }
          if (typeof status !== "string" || !FINAL_TASK_STATES.has(status)) continue;
          this.#finish(ev.ref, ev.snapshot);
        }
        if (current && others.length > 0) this.#subscriber?.onEvents(others, false);
      } catch (err) {
        if (this.#stopped) return;
        // Aborted on purpose to start over: not a failure.
        if (epoch !== this.#epoch) continue;
        failures++;
        this.#subscriber?.onError?.(err);
        if (isXapiError(err, "EVENTS_LOST", "SESSION_NOT_REGISTERED", "EVENT_FROM_TOKEN_INVALID")) {
          // Start over (a new baseline) and look at every awaited task directly.
          this.#restart();
          await this.#recheck();
          continue;
        }
        if (failures >= 3) {
          for (const [task, w] of this.#waiters) {
            this.#waiters.delete(task);
            w.reject(err);
          }
          if (!this.#subscriber) return;
        }
        const wait = new AbortController();
        this.#poll = wait;
        await pause(Math.min(2_000, 50 * 2 ** failures), wait.signal);
        // After repeated failures the subscriber gets a fresh baseline (announcing nothing for the gap).
        if (failures >= 3) this.#restart();
        await this.#recheck();
      }
    }
  }

  async #recheck(): Promise<void> {
    if (this.#waiters.size === 0) return;
    await this.ready(AbortSignal.timeout(10_000)).catch(() => undefined);
    for (const task of [...this.#waiters.keys()]) {
      try {
        const rec = await this.client.callRaw<Record<string, XapiValue>>("task.get_record", [task], AbortSignal.timeout(10_000));
        if (typeof rec.status === "string" && FINAL_TASK_STATES.has(rec.status)) this.#finish(task, rec);
      } catch (err) {
        if (isXapiError(err, "HANDLE_INVALID")) {
          const w = this.#waiters.get(task);
          this.#waiters.delete(task);
          w?.reject(err);
        }
      }
    }
  }

  #finish(task: string, record: Record<string, XapiValue>): void {
    const w = this.#waiters.get(task);
    if (w) {
      this.#waiters.delete(task);
      this.#settle(w.method, task, record).then(w.resolve, w.reject);
      return;
    }
    this.#finished.set(task, record);
    if (this.#finished.size > FINISHED_KEEP) {
      const oldest = this.#finished.keys().next().value;
      if (oldest !== undefined) this.#finished.delete(oldest);
    }
  }
}
