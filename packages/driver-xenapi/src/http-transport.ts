/**
 * HTTP(S) for XAPI: one keep-alive agent per client, every request bound to an AbortSignal,
 * certificates verified unless the caller said `insecure`. URLs carry a session id in their query
 * for the VDI transfers, so no URL ever goes into an error message: only the path does.
 */
import http from "node:http";
import https from "node:https";
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

  constructor(options: HttpTransportOptions = {}) {
    const maxSockets = options.maxSockets ?? 64;
    this.#maxReplyBytes = options.maxReplyBytes ?? DEFAULT_MAX_REPLY_BYTES;
    this.#http = new http.Agent({ keepAlive: true, maxSockets, keepAliveMsecs: 10_000 });
    this.#https = new https.Agent({
      keepAlive: true,
      maxSockets,
      keepAliveMsecs: 10_000,
      rejectUnauthorized: options.insecure !== true,
    });
  }

  /** An RPC: POSTs a string body to `url` and collects the reply (see {@link request}). */
  rpc(url: URL, body: string, headers: Readonly<Record<string, string>>, signal: AbortSignal): Promise<HttpReply> {
    return this.request("POST", url, body, headers, signal);
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
  return new XapiTransportError(`${url.origin}${url.pathname}: ${code ?? (err as Error).message ?? "request failed"}`, {
    cause: code ? { code } : undefined,
  });
}
