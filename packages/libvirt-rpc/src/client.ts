// One RPC link to libvirtd: serial numbers, many calls in flight matched to replies by serial,
// error decoding, keepalive, asynchronous messages (events) and stream packet routing.
// It knows nothing about individual procedures beyond their numbers; see `connection.ts`.

import type { Duplex } from "node:stream";
import {
  LibvirtAbortedError,
  LibvirtConnectionClosedError,
  LibvirtError,
  LibvirtProtocolError,
  LibvirtTimeoutError,
  LibvirtVersionSkewError,
} from "./errors.js";
import { VirErrorNumber } from "./error-codes.js";
import { Keepalive, type KeepaliveOptions } from "./keepalive.js";
import {
  DEFAULT_MAX_PACKET,
  HEADER_SIZE,
  KEEPALIVE_PROC_PING,
  KEEPALIVE_PROC_PONG,
  KEEPALIVE_PROGRAM,
  KEEPALIVE_PROTOCOL_VERSION,
  LEN_SIZE,
  MessageStatus,
  MessageType,
  PacketDecoder,
  REMOTE_PROGRAM,
  REMOTE_PROTOCOL_VERSION,
  appendHeader,
  endPacket,
} from "./packet.js";
import { procName } from "./procedures.js";
import type { CallOptions } from "./types.js";
import { readRemoteError } from "./wire.js";
import { XdrReader, XdrWriter } from "./xdr.js";

/** Encodes a procedure's arguments. */
export type Encoder = (w: XdrWriter) => void;
/** Decodes a procedure's return value. */
export type Decoder<T> = (r: XdrReader) => T;

/** Default per-call timeout. */
export const DEFAULT_CALL_TIMEOUT_MS = 60_000;

/** Options of `RpcClient`. */
export interface RpcClientOptions {
  /** Timeout for calls that pass none (default 60 s; 0 disables). */
  defaultTimeoutMs?: number;
  /** Largest packet accepted from the daemon (default 32 MiB). */
  maxPacketBytes?: number;
}

/** Receives the packets of one stream (see `stream.ts`). */
export interface StreamSink {
  /** Serial of the call that opened the stream; set by the client when it sends the call. */
  serial: number;
  /** A STREAM packet arrived (`status` CONTINUE carries data; OK is EOF or a confirm). */
  onStreamPacket(status: number, payload: Buffer): void;
  /** A REPLY arrived for the stream's serial after the call itself completed. */
  onLateReply(status: number, payload: Buffer): void;
  /** The link closed. */
  onClose(err: Error): void;
}

/** A call awaiting its reply. */
class Pending {
  /** Own timer, for a timeout other than the client's default (see `RpcClient.sweep`). */
  timer: NodeJS.Timeout | undefined = undefined;
  onAbort: (() => void) | undefined = undefined;

  constructor(
    readonly serial: number,
    readonly proc: number,
    readonly resolve: (v: unknown) => void,
    readonly reject: (e: Error) => void,
    readonly decode: Decoder<unknown> | null,
    readonly signal: AbortSignal | undefined,
    /** `performance.now()` past which the shared sweep times the call out; Infinity: not swept. */
    readonly deadline: number,
  ) {}
}

/** Handler of asynchronous MESSAGE packets of the remote program (events). */
export type MessageHandler = (proc: number, body: XdrReader) => void;

function timeoutPending(this: void, client: RpcClient, p: Pending, ms: number): void {
  client.settle(p, new LibvirtTimeoutError(procName(p.proc), ms));
}

function sweepDeadlines(this: void, client: RpcClient): void {
  client.sweep();
}

/** A single libvirt RPC link over a byte stream. */
export class RpcClient {
  private readonly socket: Duplex;
  /** Packets of this tick, encoded back to back and sent as one buffer by {@link flush}. */
  private readonly out = new XdrWriter(64 * 1024);
  private readonly decoder: PacketDecoder;
  private readonly onPacketRange = (buf: Buffer, start: number, end: number): void => this.onPacket(buf, start, end);
  private readonly pending = new Map<number, Pending>();
  private readonly streams = new Map<number, StreamSink>();
  private readonly closeListeners: ((err: Error) => void)[] = [];
  private readonly defaultTimeoutMs: number;
  private readonly maxPacket: number;
  private serial = 0;
  private flushScheduled = false;
  /**
   * One timer for every call on the default timeout: their deadlines come in call order, so the
   * timer only has to be armed for the oldest (see {@link sweep}), instead of one timer per call.
   */
  private sweepTimer: NodeJS.Timeout | undefined;
  /** Calls awaiting a reply on the default timeout; the sweep timer keeps the process alive only then. */
  private swept = 0;
  private pausedBy = new Set<unknown>();
  private keepalive: Keepalive | undefined;
  private closeError: Error | undefined;
  /** Called for every MESSAGE packet of the remote program. */
  onMessage: MessageHandler | undefined;

  constructor(socket: Duplex, options: RpcClientOptions = {}) {
    this.socket = socket;
    this.defaultTimeoutMs = options.defaultTimeoutMs ?? DEFAULT_CALL_TIMEOUT_MS;
    this.maxPacket = options.maxPacketBytes ?? DEFAULT_MAX_PACKET;
    this.decoder = new PacketDecoder(this.maxPacket);
    socket.on("data", (chunk: Buffer) => this.onData(chunk));
    socket.on("error", (err: Error) =>
      this.destroy(new LibvirtConnectionClosedError(`libvirt connection failed: ${err.message}`, { cause: err })),
    );
    socket.on("end", () => this.destroy(new LibvirtConnectionClosedError("libvirt connection closed by the daemon")));
    socket.on("close", () => this.destroy(new LibvirtConnectionClosedError("libvirt connection closed")));
    // A dialer may hand over a paused socket (e.g. after TLS's verdict byte).
    socket.resume();
  }

  /** True once the link is unusable. */
  get closed(): boolean {
    return this.closeError !== undefined;
  }

  /** Why the link closed, if it did. */
  get closeReason(): Error | undefined {
    return this.closeError;
  }

  /** Number of calls awaiting a reply. */
  get inFlight(): number {
    return this.pending.size;
  }

  /** Run `fn` once when the link closes (immediately if it already has). */
  onClose(fn: (err: Error) => void): void {
    if (this.closeError) fn(this.closeError);
    else this.closeListeners.push(fn);
  }

  /**
   * Call a remote procedure. `decode` may be null for procedures without a return value.
   * Rejects with `LibvirtError` (daemon error), `LibvirtVersionSkewError` (VIR_ERR_NO_SUPPORT),
   * `LibvirtTimeoutError`, `LibvirtAbortedError`, `LibvirtConnectionClosedError` or `LibvirtProtocolError`.
   */
  call<T>(proc: number, encode: Encoder | null, decode: Decoder<T> | null, options?: CallOptions): Promise<T> {
    return this.callInternal(proc, encode, decode, options, undefined);
  }

  /** Start a stream call: `sink` receives the stream's packets once the call's reply arrives. */
  callWithStream(proc: number, encode: Encoder | null, sink: StreamSink, options?: CallOptions): Promise<number> {
    return this.callInternal(proc, encode, null, options, sink);
  }

  private callInternal<T>(
    proc: number,
    encode: Encoder | null,
    decode: Decoder<T> | null,
    options: CallOptions | undefined,
    sink: StreamSink | undefined,
  ): Promise<T> {
    if (this.closeError) {
      return Promise.reject(
        new LibvirtConnectionClosedError(`cannot call ${procName(proc)}: ${this.closeError.message}`, {
          cause: this.closeError,
        }),
      );
    }
    const signal = options?.signal;
    if (signal?.aborted) return Promise.reject(new LibvirtAbortedError(procName(proc), signal.reason));
    this.serial = (this.serial + 1) >>> 0 || 1;
    const serial = this.serial;
    const w = this.out;
    const at = w.length;
    try {
      appendHeader(w, REMOTE_PROGRAM, REMOTE_PROTOCOL_VERSION, proc, MessageType.CALL, serial, MessageStatus.OK);
      if (encode) encode(w);
      endPacket(w, at, this.maxPacket);
    } catch (err) {
      w.length = at; // drop the half-written packet, keep the others of this tick
      return Promise.reject(err);
    }
    this.scheduleFlush();
    const timeoutMs = options?.timeoutMs ?? this.defaultTimeoutMs;
    const timed = timeoutMs > 0 && Number.isFinite(timeoutMs);
    const shared = timed && timeoutMs === this.defaultTimeoutMs;
    const deadline = shared ? performance.now() + timeoutMs : Infinity;
    return new Promise<T>((resolve, reject) => {
      const p = new Pending(
        serial,
        proc,
        resolve as (v: unknown) => void,
        reject,
        sink ? () => serial : decode,
        signal,
        deadline,
      );
      if (shared) {
        // A timer armed for an earlier call of the same timeout fires no later than this one's deadline.
        if (this.sweepTimer === undefined) this.sweepTimer = setTimeout(sweepDeadlines, timeoutMs, this);
        else if (this.swept === 0) this.sweepTimer.ref();
        this.swept++;
      } else if (timed) {
        p.timer = setTimeout(timeoutPending, timeoutMs, this, p, timeoutMs);
      }
      if (signal) {
        p.onAbort = () => this.settle(p, new LibvirtAbortedError(procName(proc), signal.reason));
        signal.addEventListener("abort", p.onAbort, { once: true });
      }
      this.pending.set(serial, p);
      if (sink) {
        sink.serial = serial;
        this.streams.set(serial, sink);
      }
    });
  }

  /**
   * @internal Times out the calls on the default timeout whose deadline passed, then re-arms the
   * timer for the oldest one left. Calls are held in call order, so the walk stops at the first
   * call still in time; calls with their own timer (or none) are skipped.
   */
  sweep(): void {
    this.sweepTimer = undefined;
    const now = performance.now();
    for (const p of this.pending.values()) {
      if (p.deadline === Infinity) continue;
      if (p.deadline > now) {
        this.sweepTimer = setTimeout(sweepDeadlines, Math.ceil(p.deadline - now), this);
        return;
      }
      this.settle(p, new LibvirtTimeoutError(procName(p.proc), this.defaultTimeoutMs));
    }
  }

  /** @internal Complete a pending call with an error (timeout/abort); its late reply is discarded. */
  settle(p: Pending, err: Error): void {
    if (this.pending.get(p.serial) !== p) return;
    this.pending.delete(p.serial);
    this.cleanupPending(p);
    p.reject(err);
  }

  private cleanupPending(p: Pending): void {
    if (p.deadline !== Infinity) {
      // The timer stays armed (re-arming per call is what it saves) but stops holding the process.
      if (--this.swept === 0) this.sweepTimer?.unref();
    } else if (p.timer) {
      clearTimeout(p.timer);
    }
    if (p.onAbort) p.signal?.removeEventListener("abort", p.onAbort);
  }

  /** Send a STREAM packet; returns false when the caller should wait for `whenDrained`. */
  sendStreamPacket(proc: number, serial: number, status: number, data?: Uint8Array): boolean {
    if (this.closeError) return true;
    const w = this.out;
    const at = appendHeader(w, REMOTE_PROGRAM, REMOTE_PROTOCOL_VERSION, proc, MessageType.STREAM, serial, status);
    try {
      if (data && data.length > 0) {
        // Stream payloads are raw bytes, not XDR opaque.
        const end = w.length + data.length;
        w.opaqueFixed(data, data.length);
        w.length = end;
      }
      endPacket(w, at, this.maxPacket);
    } catch (err) {
      w.length = at;
      throw err;
    }
    // Stream data keeps the socket's back-pressure: written now, with whatever is queued before it.
    return this.flush();
  }

  /** Resolve when the socket's write buffer has drained (or the link closed). */
  whenDrained(): Promise<void> {
    if (this.closeError || !this.socket.writableNeedDrain) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        this.socket.off("drain", done);
        this.socket.off("close", done);
        resolve();
      };
      this.socket.on("drain", done);
      this.socket.on("close", done);
    });
  }

  /** Forget a stream's serial; later packets for it are dropped. */
  unregisterStream(serial: number): void {
    this.streams.delete(serial);
  }

  /** Stop reading from the socket on behalf of `owner` (stream back-pressure). */
  pauseReading(owner: unknown): void {
    if (this.pausedBy.has(owner)) return;
    this.pausedBy.add(owner);
    if (this.pausedBy.size === 1) {
      this.keepalive?.suspend();
      this.socket.pause();
    }
  }

  /** Undo `pauseReading(owner)`. */
  resumeReading(owner: unknown): void {
    if (!this.pausedBy.delete(owner)) return;
    if (this.pausedBy.size === 0) {
      this.keepalive?.resume();
      this.socket.resume();
    }
  }

  /** Start sending keepalive PINGs and detecting a dead peer. */
  startKeepalive(options: KeepaliveOptions): void {
    if (this.keepalive || this.closeError) return;
    this.keepalive = new Keepalive(
      options,
      () => this.sendKeepalive(KEEPALIVE_PROC_PING),
      (idle) =>
        this.destroy(
          new LibvirtConnectionClosedError(
            `libvirt connection is dead: no complete message from the daemon for ${idle} ms (keepalive)`,
          ),
        ),
    );
    this.keepalive.start();
  }

  private sendKeepalive(proc: number): void {
    if (this.closeError) return;
    const w = this.out;
    const at = appendHeader(
      w,
      KEEPALIVE_PROGRAM,
      KEEPALIVE_PROTOCOL_VERSION,
      proc,
      MessageType.MESSAGE,
      0,
      MessageStatus.OK,
    );
    endPacket(w, at);
    this.scheduleFlush();
  }

  /**
   * Sends what was queued in this tick as one buffer in one write. Many calls in flight cost one
   * syscall and one stream write instead of one each (cork + writev costs a write request per
   * packet, measured as a fifth of the client's CPU with 64 calls in flight).
   */
  private scheduleFlush(): void {
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      process.nextTick(flush, this);
    }
  }

  /** @internal Writes the packets queued so far; returns the socket's back-pressure verdict. */
  flush(): boolean {
    this.flushScheduled = false;
    const w = this.out;
    if (w.length === 0) return true;
    // A copy: the writer's storage is reused for the next packets while this write may be pending.
    const bytes = Buffer.allocUnsafe(w.length);
    w.buf.copy(bytes, 0, 0, w.length);
    w.reset();
    if (this.socket.destroyed) return true;
    return this.socket.write(bytes);
  }

  private onData(chunk: Buffer): void {
    if (this.closeError) return;
    try {
      // Liveness is a whole message (keepalive PING/PONG included): bytes of a frame that never
      // completes are not a sign of life.
      if (this.decoder.pushRanges(chunk, this.onPacketRange) > 0) this.keepalive?.touch();
    } catch (err) {
      const protocolError =
        err instanceof LibvirtProtocolError
          ? err
          : new LibvirtProtocolError(`failed to handle a packet from libvirtd: ${(err as Error).message}`, {
              cause: err,
            });
      this.destroy(protocolError);
    }
  }

  /** One packet: `buf[start, end)`, from its length word on. */
  private onPacket(buf: Buffer, start: number, end: number): void {
    const prog = buf.readUInt32BE(start + 4);
    const proc = buf.readInt32BE(start + 12);
    const type = buf.readInt32BE(start + 16);
    const serial = buf.readUInt32BE(start + 20);
    const status = buf.readInt32BE(start + 24);
    if (prog === KEEPALIVE_PROGRAM) {
      if (proc === KEEPALIVE_PROC_PING) this.sendKeepalive(KEEPALIVE_PROC_PONG);
      else if (proc !== KEEPALIVE_PROC_PONG) throw new LibvirtProtocolError(`unknown keepalive procedure ${proc}`);
      return;
    }
    if (prog !== REMOTE_PROGRAM) {
      throw new LibvirtProtocolError(`packet for unknown program 0x${prog.toString(16)}`);
    }
    const vers = buf.readUInt32BE(start + 8);
    if (vers !== REMOTE_PROTOCOL_VERSION) {
      throw new LibvirtProtocolError(`unsupported remote protocol version ${vers}`);
    }
    const body = start + LEN_SIZE + HEADER_SIZE;
    switch (type) {
      case MessageType.REPLY: {
        if (status !== MessageStatus.OK && status !== MessageStatus.ERROR) {
          throw new LibvirtProtocolError(`reply with invalid status ${status}`);
        }
        const p = this.pending.get(serial);
        if (!p) {
          const sink = this.streams.get(serial);
          // Otherwise a late reply to a call that timed out or was aborted: drop it.
          if (sink) sink.onLateReply(status, buf.subarray(body, end));
          return;
        }
        if (p.proc !== proc) {
          throw new LibvirtProtocolError(`reply for serial ${serial} names procedure ${proc}, expected ${p.proc}`);
        }
        this.pending.delete(serial);
        this.cleanupPending(p);
        const r = new XdrReader(buf, body, end);
        let outcome: unknown;
        try {
          if (status === MessageStatus.OK) {
            outcome = p.decode ? p.decode(r) : undefined;
            if (r.pos !== end) r.done(`reply to ${procName(proc)}`);
          } else {
            outcome = this.remoteError(r, proc);
          }
        } catch (err) {
          // A malformed body fails this call, then (rethrown) the whole link.
          this.streams.delete(serial);
          p.reject(err as Error);
          throw err;
        }
        if (status === MessageStatus.OK) {
          p.resolve(outcome);
        } else {
          this.streams.delete(serial);
          p.reject(outcome as Error);
        }
        return;
      }
      case MessageType.MESSAGE: {
        if (status !== MessageStatus.OK) throw new LibvirtProtocolError(`message with invalid status ${status}`);
        this.onMessage?.(proc, new XdrReader(buf, body, end));
        return;
      }
      case MessageType.STREAM: {
        if (status !== MessageStatus.OK && status !== MessageStatus.ERROR && status !== MessageStatus.CONTINUE) {
          throw new LibvirtProtocolError(`stream packet with invalid status ${status}`);
        }
        // Packets for streams we already dropped are harmless leftovers.
        this.streams.get(serial)?.onStreamPacket(status, buf.subarray(body, end));
        return;
      }
      case MessageType.STREAM_HOLE:
        // Only sent when a client asked for sparse streams, which this client never does.
        throw new LibvirtProtocolError("unexpected stream hole packet");
      default:
        throw new LibvirtProtocolError(`packet with unexpected type ${type}`);
    }
  }

  /** Decode a remote_error payload into the right typed error. */
  remoteError(r: XdrReader, proc: number): Error {
    const fields = readRemoteError(r);
    const err = new LibvirtError(fields, procName(proc));
    if (fields.code === VirErrorNumber.VIR_ERR_NO_SUPPORT) return new LibvirtVersionSkewError(procName(proc), err);
    return err;
  }

  /** Close the link: pending calls and streams fail with `err` (default: connection closed). */
  destroy(err: Error = new LibvirtConnectionClosedError("libvirt connection closed by the client")): void {
    if (this.closeError) return;
    this.closeError = err;
    this.keepalive?.stop();
    if (this.sweepTimer) clearTimeout(this.sweepTimer);
    this.sweepTimer = undefined;
    const pending = [...this.pending.values()];
    this.pending.clear();
    for (const p of pending) {
      this.cleanupPending(p);
      p.reject(err);
    }
    const streams = [...this.streams.values()];
    this.streams.clear();
    for (const s of streams) s.onClose(err);
    this.socket.destroy();
    const listeners = this.closeListeners.splice(0);
    for (const fn of listeners) fn(err);
  }
}

function flush(client: RpcClient): void {
  client.flush();
}
