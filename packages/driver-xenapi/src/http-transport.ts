/**
 * HTTP(S) for XAPI: the RPCs on the lean keep-alive client of keep-alive-pool.ts, the disk
 * transfers and the RRD on a node:http keep-alive agent; every request bound to an AbortSignal,
 * certificates verified unless the caller said `insecure`. URLs carry a session id in their query
 * for the VDI transfers, so no URL ever goes into an error message: only the path does.
 */
import http from "node:http";
import https from "node:https";
import { KeepAlivePool } from "./keep-alive-pool.js";
import { XapiTransportError } from "./xapi-error.js";

/** What a request answers. */
export interface HttpReply {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: Buffer;
}

/** Options of the transport. */
export interface HttpTransportOptions {
  /** Skip TLS certificate verification (self-signed XenServer certificates); default false. */
  readonly insecure?: boolean;
  /** Sockets kept per origin; default 64. */
  readonly maxSockets?: number;
  /** The largest reply read into memory, in bytes; default {@link DEFAULT_MAX_REPLY_BYTES}. */
  readonly maxReplyBytes?: number;
}

/**
 * 256 MiB: far above what XAPI answers (get_all_records of a pool of thousands of VMs is tens of
 * MiB; disks stream elsewhere), far below what would exhaust the process: a host answering
 * without end is an error, not an out-of-memory.
 */
export const DEFAULT_MAX_REPLY_BYTES = 256 * 1024 * 1024;

function isRetryableReset(err: unknown): boolean {
  const code = (err as { code?: string }).code;
  return code === "ECONNRESET" || code === "EPIPE" || code === "ECONNREFUSED_REUSED";
}

/** A keep-alive HTTP(S) client for one XAPI endpoint family. */
export class HttpTransport {
  readonly #http: http.Agent;
  readonly #https: https.Agent;

  readonly #maxReplyBytes: number;
  readonly #maxSockets: number;
  readonly #insecure: boolean;
  /** The RPC sockets, per origin (see keep-alive-pool.ts). */
  readonly #pools = new Map<string, KeepAlivePool>();
  #closed = false;

  constructor(options: HttpTransportOptions = {}) {
    const maxSockets = options.maxSockets ?? 64;
    this.#maxSockets = maxSockets;
    this.#insecure = options.insecure === true;
    this.#maxReplyBytes = options.maxReplyBytes ?? DEFAULT_MAX_REPLY_BYTES;
    this.#http = new http.Agent({ keepAlive: true, maxSockets, keepAliveMsecs: 10_000 });
    this.#https = new https.Agent({
      keepAlive: true,
      maxSockets,
      keepAliveMsecs: 10_000,
      rejectUnauthorized: options.insecure !== true,
    });
  }

  /**
   * An RPC: POSTs a string body to `url` and collects the reply, on the lean keep-alive client
   * (same semantics as {@link request}: one retry of a reset on a reused socket, the reply cap).
   * `retry: false` for a call that must not run twice: a reset before any byte of the reply may
   * come from a host that ran the call and dropped the link before answering.
   */
  async rpc(url: URL, body: string, headers: Readonly<Record<string, string>>, signal: AbortSignal, retry = true): Promise<HttpReply> {
    const pool = this.#pool(url);
    let head = `POST ${url.pathname}${url.search} HTTP/1.1\r\nHost: ${url.host}\r\n`;
    for (const [name, value] of Object.entries(headers)) {
      if (/[\r\n]/.test(name) || /[\r\n]/.test(value)) throw new XapiTransportError("a request header carries a line break");
      head += `${name}: ${value}\r\n`;
    }
    head += `Content-Length: ${Buffer.byteLength(body, "utf8")}\r\nConnection: keep-alive\r\n\r\n`;
    try {
      return await pool.exchange(head, body, signal);
    } catch (err) {
      if (!retry || !isRetryableReset(err) || !(err as { reused?: boolean }).reused || signal.aborted) throw wrap(err, url);
      return await pool.exchange(head, body, signal).catch((e: unknown) => {
        throw wrap(e, url);
      });
    }
  }

  #pool(url: URL): KeepAlivePool {
    let pool = this.#pools.get(url.origin);
    if (!pool) {
      if (this.#closed) throw new XapiTransportError(`${url.origin}${url.pathname}: the transport is closed`);
      const tooBig = (): Error => new XapiTransportError(`the reply from ${url.origin}${url.pathname} is larger than ${this.#maxReplyBytes} bytes`);
      pool = new KeepAlivePool({
        tls: url.protocol === "https:",
        // node:net wants an IPv6 literal without its brackets.
        host: url.hostname.startsWith("[") ? url.hostname.slice(1, -1) : url.hostname,
        port: Number(url.port || (url.protocol === "https:" ? 443 : 80)),
        rejectUnauthorized: !this.#insecure,
        maxSockets: this.#maxSockets,
        maxReplyBytes: this.#maxReplyBytes,
        tooBig,
      });
      this.#pools.set(url.origin, pool);
    }
    return pool;
  }

  /** Sends `body` and collects the reply. A reset on a reused keep-alive socket is retried once. */
  async request(
    method: "GET" | "POST" | "PUT",
    url: URL,
    body: Uint8Array | string | undefined,
    headers: Readonly<Record<string, string>>,
    signal: AbortSignal,
  ): Promise<HttpReply> {
    try {
      return await this.#once(method, url, body, headers, signal);
    } catch (err) {
      if (!isRetryableReset(err) || !(err as { reused?: boolean }).reused || signal.aborted) throw wrap(err, url);
      return await this.#once(method, url, body, headers, signal).catch((e: unknown) => {
        throw wrap(e, url);
      });
    }
  }

  /** Opens a streaming request: resolves with the response once its headers arrive. */
  stream(
    method: "GET" | "PUT",
    url: URL,
    headers: Readonly<Record<string, string>>,
    signal: AbortSignal,
    body?: Uint8Array,
  ): Promise<http.IncomingMessage> {
    return new Promise((resolve, reject) => {
      const req = this.#lib(url).request(
        url,
        { method, headers, agent: this.#agent(url), signal },
        (res) => resolve(res),
      );
      req.on("error", (err) => reject(wrap(err, url)));
      req.end(body);
    });
  }

  close(): void {
    this.#closed = true;
    for (const pool of this.#pools.values()) pool.close();
    this.#pools.clear();
    this.#http.destroy();
    this.#https.destroy();
  }

  #lib(url: URL): typeof http | typeof https {
    return url.protocol === "https:" ? https : http;
  }

  #agent(url: URL): http.Agent {
    return url.protocol === "https:" ? this.#https : this.#http;
  }

  #once(
    method: string,
    url: URL,
    body: Uint8Array | string | undefined,
    headers: Readonly<Record<string, string>>,
    signal: AbortSignal,
  ): Promise<HttpReply> {
    return new Promise((resolve, reject) => {
      // A string body stays a string: node:http then sends the head and the body in one write
      // (a Buffer goes out as a second chunk, a writev per request).
      const length = body === undefined ? undefined : typeof body === "string" ? Buffer.byteLength(body, "utf8") : body.byteLength;
      const payload = body;
      const req = this.#lib(url).request(
        {
          ...requestTarget(url),
          method,
          agent: this.#agent(url),
          signal,
          headers: length !== undefined ? { ...headers, "content-length": String(length) } : headers,
        },
        (res) => {
          const chunks: Buffer[] = [];
          let received = 0;
          const declared = Number(res.headers["content-length"] ?? 0);
          const tooBig = (): void => {
            // Said first: destroying the socket makes the request fail with a reset of its own.
            reject(new XapiTransportError(`the reply from ${url.origin}${url.pathname} is larger than ${this.#maxReplyBytes} bytes`));
            res.destroy();
            req.destroy();
          };
          if (declared > this.#maxReplyBytes) return tooBig();
          res.on("data", (c: Buffer) => {
            received += c.length;
            if (received > this.#maxReplyBytes) return tooBig();
            chunks.push(c);
          });
          // One chunk (the usual RPC reply) is used as it is, not copied.
          res.on("end", () =>
            resolve({ status: res.statusCode ?? 0, headers: res.headers, body: chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks) }),
          );
          res.on("error", (err) => reject(err));
          res.on("aborted", () => reject(Object.assign(new Error("the reply was cut off"), { code: "ECONNRESET" })));
        },
      );
      req.on("error", (err) => {
        Object.assign(err, { reused: req.reusedSocket });
        reject(err);
      });
      req.end(payload);
    });
  }
}

/** Where a URL points, as node:http's request options; kept per URL (the RPC URLs are reused for every call). */
const targets = new WeakMap<URL, http.RequestOptions>();
function requestTarget(url: URL): http.RequestOptions {
  let t = targets.get(url);
  if (!t) {
    t = {
      protocol: url.protocol,
      // node:http wants an IPv6 literal without its brackets.
      hostname: url.hostname.startsWith("[") ? url.hostname.slice(1, -1) : url.hostname,
      port: url.port || undefined,
      path: `${url.pathname}${url.search}`,
    };
    targets.set(url, t);
  }
  return t;
}

/** A transport error naming the endpoint (origin and path only) and the socket error code. */
function wrap(err: unknown, url: URL): Error {
  if (err instanceof XapiTransportError) return err;
  if ((err as { name?: string }).name === "AbortError") return err as Error;
  const code = (err as { code?: string }).code;
  // A reply that broke HTTP's rules says which one (the lean client's messages carry no secrets).
  const what = code === "HPE_INVALID" ? `${code}: ${(err as Error).message}` : (code ?? (err as Error).message ?? "request failed");
  return new XapiTransportError(`${url.origin}${url.pathname}: ${what}`, {
    cause: code ? { code } : undefined,
  });
}
