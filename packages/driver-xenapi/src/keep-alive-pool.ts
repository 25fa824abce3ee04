/**
 * A lean HTTP/1.1 client for XAPI's RPCs: one request at a time on each keep-alive socket (no
 * pipelining), the request head and body in one write, the reply framed by Content-Length or
 * chunked encoding (or read to the end of a socket that closes). node:http's client spends about
 * twice this per call on machinery an RPC does not use (streams, agent queues, per-request
 * events); the calls of a conformance run are mostly this cost. Streaming transfers (VDIs) stay
 * on node:http.
 */
import net from "node:net";
import tls from "node:tls";
import type { IncomingHttpHeaders } from "node:http";

/** A complete reply. */
export interface PoolReply {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: Buffer;
}

/** Options of a {@link KeepAlivePool}. */
export interface KeepAlivePoolOptions {
  readonly tls: boolean;
  readonly host: string;
  readonly port: number;
  /** Verify the server certificate (TLS only). */
  readonly rejectUnauthorized: boolean;
  readonly maxSockets: number;
  readonly maxReplyBytes: number;
  /** Called with the cap when a reply exceeds it (the error to reject with). */
  readonly tooBig: () => Error;
}

/** An error of the socket, with whether the socket had carried an earlier exchange. */
type SocketError = Error & { code?: string; reused?: boolean };

const CRLF_CRLF = Buffer.from("\r\n\r\n");
/** The longest chunk size line accepted (a size and its extensions). */
const MAX_LINE_BYTES = 4096;
/** The longest reply head accepted. */
const MAX_HEAD_BYTES = 64 * 1024;
/** A header name: an RFC 9110 token. */
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/** A header value: visible characters, spaces and tabs only (no NUL, CR, LF or other controls). */
const HEADER_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;

/** Whether `buf` has, between `from` and `to`, an LF not preceded by CR. */
function hasBareLf(buf: Buffer, from: number, to: number): boolean {
  for (let i = buf.indexOf(0x0a, from); i >= 0 && i < to; i = buf.indexOf(0x0a, i + 1)) if (i === 0 || buf[i - 1] !== 0x0d) return true;
  return false;
}

/** Nothing, or only CRLFs: what may trail a reply (node:http skips them too). */
function onlyCrlf(buf: Buffer): boolean {
  for (let i = 0; i < buf.length; i += 2) if (buf[i] !== 0x0d || buf[i + 1] !== 0x0a) return false;
  return true;
}

/** One exchange in progress on a socket. */
interface Exchange {
  resolve(reply: PoolReply): void;
  reject(err: SocketError): void;
}

/** The reply parser of one socket: head, then the body as the head frames it. */
class ReplyParser {
  #buf: Buffer = Buffer.alloc(0);
  #status = 0;
  #headers: IncomingHttpHeaders | undefined;
  /** Body framing: a length, chunked, or to the end of the socket. */
  #mode: "length" | "chunked" | "eof" = "length";
  #remaining = 0;
  #body: Buffer[] = [];
  #received = 0;
  /** In chunked mode: the bytes of the chunk still to read, -1 while a size line is awaited, -2 in the trailers. */
  #chunk = -1;
  /** In chunked mode: a chunk's data is read, its CRLF is awaited. */
  #chunkCrlf = false;
  #keepAlive = true;
  /** How far the head being awaited has been checked (bare LFs, its end). */
  #headScanned = 0;
  /** Bytes seen in all (a reset after the first byte of a reply is never retried). */
  seen = 0;

  constructor(
    private readonly maxReplyBytes: number,
    private readonly tooBig: () => Error,
  ) {}

  /** Feeds bytes; returns the reply once complete (and whether the socket may be reused). */
  push(data: Buffer): { reply: PoolReply; keepAlive: boolean } | undefined {
    this.seen += data.length;
    this.#buf = this.#buf.length === 0 ? data : Buffer.concat([this.#buf, data]);
    if (!this.#headers) {
      // Only the bytes not looked at yet are searched (a head arriving in many reads is not rescanned).
      const end = this.#buf.indexOf(CRLF_CRLF, Math.max(0, this.#headScanned - 3));
      const to = end < 0 ? this.#buf.length : end + 4;
      // A line may end only in CRLF: a bare LF is refused at once, not waited on until the deadline.
      if (hasBareLf(this.#buf, this.#headScanned, to)) throw protocolError("a line of the reply head ends in a bare LF");
      this.#headScanned = to;
      if (end < 0 || end > MAX_HEAD_BYTES) {
        if (this.#buf.length > MAX_HEAD_BYTES) throw protocolError("reply head larger than 64 KiB");
        return undefined;
      }
      this.#head(this.#buf.toString("latin1", 0, end));
      this.#buf = this.#buf.subarray(end + 4);
      this.#headScanned = 0;
      // An interim reply (100 Continue): the real one follows.
      if (this.#status >= 100 && this.#status < 200) {
        this.#headers = undefined;
        return this.push(Buffer.alloc(0));
      }
    }
    return this.#bodyStep();
  }

  /** The socket ended: a reply read to its end completes, anything else was cut off. */
  end(): PoolReply | undefined {
    if (this.#headers && this.#mode === "eof") return this.#reply();
    return undefined;
  }

  #head(text: string): void {
    const lines = text.split("\r\n");
    const m = /^HTTP\/1\.([01]) (\d{3})(?: .*)?$/.exec(lines[0] ?? "");
    if (!m) throw protocolError("malformed status line");
    this.#status = Number(m[2]);
    const headers: Record<string, string> = {};
    for (let i = 1; i < lines.length; i++) {
      const line = lines[i]!;
      const colon = line.indexOf(":");
      if (colon <= 0) throw protocolError("malformed header line");
      const rawName = line.slice(0, colon);
      // A token only: no space before the colon, no folded continuation line (RFC 9112 5.1, 5.2).
      if (!HEADER_NAME.test(rawName)) throw protocolError("malformed header name");
      const value = line.slice(colon + 1).trim();
      if (!HEADER_VALUE.test(value)) throw protocolError("control character in a header value");
      const name = rawName.toLowerCase();
      headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`;
    }
    this.#headers = headers;
    const connection = (headers.connection ?? "").toLowerCase();
    this.#keepAlive = m[1] === "1" ? !/\bclose\b/.test(connection) : /\bkeep-alive\b/.test(connection);
    const te = (headers["transfer-encoding"] ?? "").toLowerCase();
    const noBody = this.#status === 204 || this.#status === 304 || (this.#status >= 100 && this.#status < 200);
    if (noBody) {
      this.#mode = "length";
      this.#remaining = 0;
    } else if (te !== "") {
      // Both framings at once is the request-smuggling pattern: refused (RFC 9112 6.1).
      if (headers["content-length"] !== undefined) throw protocolError("both transfer-encoding and content-length");
      if (!/(^|,)\s*chunked\s*$/.test(te)) throw protocolError(`unsupported transfer-encoding ${te}`);
      this.#mode = "chunked";
    } else if (headers["content-length"] !== undefined) {
      const n = Number(headers["content-length"]);
      if (!/^\d+$/.test(headers["content-length"]) || !Number.isSafeInteger(n)) throw protocolError("malformed content-length");
      if (n > this.maxReplyBytes) throw this.tooBig();
      this.#mode = "length";
      this.#remaining = n;
    } else {
      this.#mode = "eof";
      this.#keepAlive = false;
    }
  }

  #take(bytes: Buffer): void {
    this.#received += bytes.length;
    if (this.#received > this.maxReplyBytes) throw this.tooBig();
    if (bytes.length > 0) this.#body.push(bytes);
  }

  #bodyStep(): { reply: PoolReply; keepAlive: boolean } | undefined {
    if (this.#mode === "eof") {
      this.#take(this.#buf);
      this.#buf = Buffer.alloc(0);
      return undefined;
    }
    if (this.#mode === "length") {
      const n = Math.min(this.#remaining, this.#buf.length);
      this.#take(this.#buf.subarray(0, n));
      this.#buf = this.#buf.subarray(n);
      this.#remaining -= n;
      if (this.#remaining > 0) return undefined;
      if (!onlyCrlf(this.#buf)) throw protocolError("bytes after the reply (no request was pipelined)");
      return { reply: this.#reply(), keepAlive: this.#keepAlive };
    }
    // Chunked: size line, data, CRLF; a zero size ends it (then trailers up to an empty line). Data
    // is taken as it arrives, so a large chunk in many reads costs linear time, not a re-join per read.
    for (;;) {
      if (this.#chunkCrlf) {
        if (this.#buf.length < 2) return undefined;
        if (this.#buf[0] !== 0x0d || this.#buf[1] !== 0x0a) throw protocolError("malformed chunk");
        this.#buf = this.#buf.subarray(2);
        this.#chunkCrlf = false;
        this.#chunk = -1;
      }
      if (this.#chunk === -1) {
        const eol = this.#buf.indexOf("\r\n");
        if (eol < 0) {
          if (this.#buf.includes(0x0a)) throw protocolError("a chunk size line ends in a bare LF");
          if (this.#buf.length > MAX_LINE_BYTES) throw protocolError("chunk size line too long");
          return undefined;
        }
        const line = this.#buf.toString("latin1", 0, eol);
        if (line.includes("\n")) throw protocolError("a chunk size line ends in a bare LF");
        const sizeText = line.split(";")[0]!.replace(/[ \t]+$/, "");
        if (!/^[0-9a-fA-F]{1,12}$/.test(sizeText)) throw protocolError("malformed chunk size");
        this.#chunk = parseInt(sizeText, 16);
        if (this.#received + this.#chunk > this.maxReplyBytes) throw this.tooBig();
        this.#buf = this.#buf.subarray(eol + 2);
        if (this.#chunk === 0) this.#chunk = -2;
      }
      if (this.#chunk === -2) {
        // Trailers (ignored) end with an empty line.
        const end = this.#buf.indexOf("\r\n") === 0 ? 0 : this.#buf.indexOf(CRLF_CRLF);
        if (end < 0) {
          if (this.#buf.length > 64 * 1024) throw protocolError("chunked trailers larger than 64 KiB");
          return undefined;
        }
        return this.#chunkedDone(end === 0 ? 2 : end + 4);
      }
      const n = Math.min(this.#chunk, this.#buf.length);
      if (n === 0) return undefined;
      this.#take(this.#buf.subarray(0, n));
      this.#buf = this.#buf.subarray(n);
      this.#chunk -= n;
      if (this.#chunk > 0) return undefined;
      this.#chunkCrlf = true;
    }
  }

  #chunkedDone(consumed: number): { reply: PoolReply; keepAlive: boolean } {
    this.#buf = this.#buf.subarray(consumed);
    if (!onlyCrlf(this.#buf)) throw protocolError("bytes after the reply (no request was pipelined)");
    return { reply: this.#reply(), keepAlive: this.#keepAlive };
  }

  #reply(): PoolReply {
    // One piece (the usual RPC reply) is used as it is, not copied.
    const body = this.#body.length === 1 ? this.#body[0]! : Buffer.concat(this.#body);
    return { status: this.#status, headers: this.#headers ?? {}, body };
  }
}

function protocolError(what: string): SocketError {
  return Object.assign(new Error(`HTTP protocol error: ${what}`), { code: "HPE_INVALID" });
}

/** A keep-alive socket of the pool. */
class PooledSocket {
  exchange: Exchange | undefined;
  parser: ReplyParser | undefined;
  /** Exchanges completed on this socket (a reset on a used socket may be retried once). */
  uses = 0;

  constructor(
    readonly socket: net.Socket,
    private readonly pool: KeepAlivePool,
  ) {
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 10_000);
    socket.on("data", (data: Buffer) => this.#data(data));
    socket.on("error", (err: SocketError) => this.#fail(err));
    socket.on("end", () => this.#ended());
    socket.on("close", () => this.#ended());
  }

  #data(data: Buffer): void {
    const parser = this.parser;
    if (!parser || !this.exchange) {
      // The server spoke unasked: this socket is not in a state to be trusted.
      this.socket.destroy();
      return;
    }
    let done: { reply: PoolReply; keepAlive: boolean } | undefined;
    try {
      done = parser.push(data);
    } catch (err) {
      this.#fail(err as SocketError);
      this.socket.destroy();
      return;
    }
    if (!done) return;
    const exchange = this.exchange;
    this.exchange = undefined;
    this.parser = undefined;
    this.uses++;
    if (done.keepAlive) this.pool.release(this);
    else {
      this.pool.forget(this);
      this.socket.destroy();
    }
    exchange.resolve(done.reply);
  }

  #ended(): void {
    const exchange = this.exchange;
    this.pool.forget(this);
    if (!exchange) return;
    const reply = this.parser?.end();
    this.exchange = undefined;
    if (reply) exchange.resolve(reply);
    else {
      const err: SocketError = Object.assign(new Error("socket hang up"), { code: "ECONNRESET" });
      err.reused = this.uses > 0 && (this.parser?.seen ?? 0) === 0;
      exchange.reject(err);
    }
    this.parser = undefined;
    this.socket.destroy();
  }

  #fail(err: SocketError): void {
    const exchange = this.exchange;
    this.exchange = undefined;
    this.pool.forget(this);
    if (exchange) {
      err.reused = this.uses > 0 && (this.parser?.seen ?? 0) === 0;
      exchange.reject(err);
    }
    this.parser = undefined;
  }
}

/** Keep-alive sockets to one origin, at most `maxSockets` busy at once; callers beyond wait in order. */
export class KeepAlivePool {
  readonly #idle: PooledSocket[] = [];
  readonly #all = new Set<PooledSocket>();
  readonly #queue: (() => void)[] = [];
  #closed = false;
  #tlsSession: Buffer | undefined;

  constructor(private readonly options: KeepAlivePoolOptions) {}

  /**
   * Sends `head` (the request line and headers, ending with the blank line) and `body` in one
   * write and resolves with the whole reply. `signal` destroys the socket and rejects.
   */
  async exchange(head: string, body: string | Uint8Array | undefined, signal: AbortSignal): Promise<PoolReply & { reused: boolean }> {
    if (signal.aborted) throw abortError(signal);
    const sock = await this.#acquire(signal);
    if (signal.aborted) {
      this.release(sock);
      throw abortError(signal);
    }
    const reused = sock.uses > 0;
    return new Promise<PoolReply & { reused: boolean }>((resolve, reject) => {
      const onAbort = (): void => {
        sock.exchange = undefined;
        this.forget(sock);
        sock.socket.destroy();
        reject(abortError(signal));
      };
      signal.addEventListener("abort", onAbort, { once: true });
      sock.parser = new ReplyParser(this.options.maxReplyBytes, this.options.tooBig);
      sock.exchange = {
        resolve: (reply) => {
          signal.removeEventListener("abort", onAbort);
          resolve({ ...reply, reused });
        },
        reject: (err) => {
          signal.removeEventListener("abort", onAbort);
          reject(err);
        },
      };
      sock.socket.ref();
      if (body === undefined) sock.socket.write(head, "latin1");
      else if (typeof body === "string") sock.socket.write(head + body, "utf8");
      else sock.socket.write(Buffer.concat([Buffer.from(head, "latin1"), body]));
    });
  }

  #acquire(signal: AbortSignal): Promise<PooledSocket> {
    if (this.#closed) return Promise.reject(Object.assign(new Error("the transport is closed"), { code: "ECONNABORTED" }));
    for (;;) {
      const sock = this.#idle.pop();
      if (!sock) break;
      // Still connecting is fine (a socket given back by a call aborted before it wrote).
      if (!sock.socket.destroyed && (sock.socket.readyState === "open" || sock.socket.readyState === "opening")) {
        return Promise.resolve(sock);
      }
      this.forget(sock);
      sock.socket.destroy();
    }
    if (this.#all.size < this.options.maxSockets) return Promise.resolve(this.#open());
    return new Promise<PooledSocket>((resolve, reject) => {
      const go = (): void => {
        signal.removeEventListener("abort", onAbort);
        this.#acquire(signal).then(resolve, reject);
      };
      const onAbort = (): void => {
        const i = this.#queue.indexOf(go);
        if (i >= 0) this.#queue.splice(i, 1);
        reject(abortError(signal));
      };
      signal.addEventListener("abort", onAbort, { once: true });
      this.#queue.push(go);
    });
  }

  #open(): PooledSocket {
    const { host, port } = this.options;
    let socket: net.Socket;
    if (this.options.tls) {
      const t = tls.connect({
        host,
        port,
        servername: net.isIP(host) === 0 ? host : undefined,
        rejectUnauthorized: this.options.rejectUnauthorized,
        // Resumed from the last handshake, as https.Agent does: a new socket to a real host skips a full one.
        session: this.#tlsSession,
      });
      t.on("session", (session: Buffer) => (this.#tlsSession = session));
      // As https.Agent does: a socket that failed forgets the session it may have resumed.
      t.on("error", () => (this.#tlsSession = undefined));
      socket = t;
    } else socket = net.connect({ host, port });
    const sock = new PooledSocket(socket, this);
    this.#all.add(sock);
    return sock;
  }

  /** @internal A socket done with its exchange and kept alive. */
  release(sock: PooledSocket): void {
    if (this.#closed) {
      this.forget(sock);
      sock.socket.destroy();
      return;
    }
    // An idle socket does not hold the process open.
    sock.socket.unref();
    this.#idle.push(sock);
    this.#queue.shift()?.();
  }

  /** @internal A socket that can no longer be used. */
  forget(sock: PooledSocket): void {
    if (!this.#all.delete(sock)) return;
    const i = this.#idle.indexOf(sock);
    if (i >= 0) this.#idle.splice(i, 1);
    this.#queue.shift()?.();
  }

  close(): void {
    this.#closed = true;
    for (const s of [...this.#all]) s.socket.destroy();
    this.#all.clear();
    this.#idle.length = 0;
    for (const go of this.#queue.splice(0)) go();
  }
}

function abortError(signal: AbortSignal): Error {
  return Object.assign(new Error("the request was aborted", { cause: signal.reason }), { name: "AbortError" });
}
