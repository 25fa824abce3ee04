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
  QEMU_PROGRAM,
  QEMU_PROTOCOL_VERSION,
  REMOTE_PROGRAM,
  REMOTE_PROTOCOL_VERSION,
  beginPacket,
  finishPacket,
} from "./packet.js";
import { procName, qemuProcName } from "./procedures.js";
import type { CallOptions } from "./types.js";
import { readRemoteError } from "./wire.js";
import { XdrReader, XdrWriter } from "./xdr.js";

/** Encodes a procedure's arguments. */
export type Encoder = (w: XdrWriter) => void;
/** Decodes a procedure's return value. */
export type Decoder<T> = (r: XdrReader) => T;

/** Default per-call timeout. */
export const DEFAULT_CALL_TIMEOUT_MS = 60_000;

/**
 * A timeout as a Node timer holds it: longer than 2^31 - 1 ms a timer fires at once, so a
 * generous deadline is capped there (about 24.8 days), which is no deadline for any real call.
 */
export const timerDelay = (ms: number): number => Math.min(ms, 2_147_483_647);

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

/**
 * A program a call can go to on one link: libvirt's remote program (`REMOTE_PROGRAM`), or its QEMU
 * program (`QEMU_PROGRAM`, `qemu_protocol.x`: guest agent and monitor commands), which shares the
 * link's serials.
 */
export type RpcProgram = number;

interface Pending {
  serial: number;
  /** The program the call went to (remote or QEMU): its reply must come from the same one. */
  program: RpcProgram;
  proc: number;
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
  decode: Decoder<unknown> | null;
  timer: NodeJS.Timeout | undefined;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
}

/** Handler of asynchronous MESSAGE packets of the remote program (events). */
export type MessageHandler = (proc: number, body: XdrReader) => void;

function timeoutPending(this: void, client: RpcClient, p: Pending, ms: number): void {
  client.settle(p, new LibvirtTimeoutError(nameOf(p.program, p.proc), ms));
}

/** A single libvirt RPC link over a byte stream. */
export class RpcClient {
  private readonly socket: Duplex;
  private readonly writer = new XdrWriter(64 * 1024);
  private readonly decoder: PacketDecoder;
  private readonly pending = new Map<number, Pending>();
  private readonly streams = new Map<number, StreamSink>();
  private readonly closeListeners: ((err: Error) => void)[] = [];
  private readonly defaultTimeoutMs: number;
  private readonly maxPacket: number;
  private serial = 0;
  /** Packets of this tick, sent as one buffer by {@link flush} (see {@link queue}). */
  private batch: Buffer[] = [];
  private batchBytes = 0;
  private flushScheduled = false;
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
  call<T>(
    proc: number,
    encode: Encoder | null,
    decode: Decoder<T> | null,
    options?: CallOptions,
    program: RpcProgram = REMOTE_PROGRAM,
  ): Promise<T> {
    return this.callInternal(program, proc, encode, decode, options, undefined);
  }

  /** Start a stream call: `sink` receives the stream's packets once the call's reply arrives. */
  callWithStream(proc: number, encode: Encoder | null, sink: StreamSink, options?: CallOptions): Promise<number> {
    return this.callInternal(REMOTE_PROGRAM, proc, encode, null, options, sink);
  }

  private callInternal<T>(
    program: RpcProgram,
    proc: number,
    encode: Encoder | null,
    decode: Decoder<T> | null,
    options: CallOptions | undefined,
    sink: StreamSink | undefined,
  ): Promise<T> {
    if (this.closeError) {
      return Promise.reject(
        new LibvirtConnectionClosedError(`cannot call ${nameOf(program, proc)}: ${this.closeError.message}`, {
          cause: this.closeError,
        }),
      );
    }
    const signal = options?.signal;
    if (signal?.aborted) return Promise.reject(new LibvirtAbortedError(nameOf(program, proc), signal.reason));
    this.serial = (this.serial + 1) >>> 0 || 1;
    const serial = this.serial;
    let packet: Buffer;
    try {
      const w = this.writer;
      beginPacket(w, program, protocolVersion(program), proc, MessageType.CALL, serial, MessageStatus.OK);
      if (encode) encode(w);
      packet = finishPacket(w, this.maxPacket);
    } catch (err) {
      return Promise.reject(err);
    }
    return new Promise<T>((resolve, reject) => {
      const p: Pending = {
        serial,
        program,
        proc,
        resolve: resolve as (v: unknown) => void,
        reject,
        decode: sink ? () => serial : decode,
        timer: undefined,
        signal,
        onAbort: undefined,
      };
      const timeoutMs = options?.timeoutMs ?? this.defaultTimeoutMs;
      if (timeoutMs > 0 && Number.isFinite(timeoutMs)) {
        p.timer = setTimeout(timeoutPending, timerDelay(timeoutMs), this, p, timeoutMs);
      }
      if (signal) {
        p.onAbort = () => this.settle(p, new LibvirtAbortedError(nameOf(program, proc), signal.reason));
        signal.addEventListener("abort", p.onAbort, { once: true });
      }
      this.pending.set(serial, p);
      if (sink) {
        sink.serial = serial;
        this.streams.set(serial, sink);
      }
      this.queue(packet);
    });
  }

  /** @internal Complete a pending call with an error (timeout/abort); its late reply is discarded. */
  settle(p: Pending, err: Error): void {
    if (this.pending.get(p.serial) !== p) return;
    this.pending.delete(p.serial);
    this.cleanupPending(p);
    p.reject(err);
  }

  private cleanupPending(p: Pending): void {
    if (p.timer) clearTimeout(p.timer);
    if (p.signal && p.onAbort) p.signal.removeEventListener("abort", p.onAbort);
  }

  /** Send a STREAM packet; returns false when the caller should wait for `whenDrained`. */
  sendStreamPacket(proc: number, serial: number, status: number, data?: Uint8Array): boolean {
    if (this.closeError) return true;
    const w = this.writer;
    beginPacket(w, REMOTE_PROGRAM, REMOTE_PROTOCOL_VERSION, proc, MessageType.STREAM, serial, status);
    if (data && data.length > 0) {
      // Stream payloads are raw bytes, not XDR opaque.
      const at = w.length;
      w.opaqueFixed(data, data.length);
      w.length = at + data.length;
    }
    // Stream data keeps the socket's back-pressure: written now, after whatever is queued.
    this.flush();
    return this.socket.write(finishPacket(w, this.maxPacket));
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
    // libvirtd may send a stream's first data before the reply to the call that opened it; paused
    // then, the reply would never be read and every call on the link would wait behind it.
    const serial = (owner as Partial<StreamSink>).serial;
    if (serial !== undefined && this.pending.has(serial)) return;
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
    const w = this.writer;
    beginPacket(w, KEEPALIVE_PROGRAM, KEEPALIVE_PROTOCOL_VERSION, proc, MessageType.MESSAGE, 0, MessageStatus.OK);
    this.queue(finishPacket(w));
  }

  /**
   * Sends `packet` with the others queued in this tick: one buffer, one write. Many calls in
   * flight cost one syscall and one stream write instead of one each (cork + writev costs a write
   * request per packet, measured as a fifth of the client's CPU with 64 calls in flight).
   */
  private queue(packet: Buffer): void {
    this.batch.push(packet);
    this.batchBytes += packet.length;
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      process.nextTick(flush, this);
    }
  }

  /** @internal Writes what {@link queue} collected. */
  flush(): void {
    this.flushScheduled = false;
    const batch = this.batch;
    if (batch.length === 0) return;
    const bytes = batch.length === 1 ? batch[0]! : Buffer.concat(batch, this.batchBytes);
    this.batch = [];
    this.batchBytes = 0;
    if (!this.socket.destroyed) this.socket.write(bytes);
  }

  private onData(chunk: Buffer): void {
    if (this.closeError) return;
    // No keepalive touch here: bytes of a frame that never completes are not a sign of life.
    try {
      this.decoder.push(chunk, (packet) => this.onPacket(packet));
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

  private onPacket(packet: Buffer): void {
    // Liveness is a whole message, keepalive PING/PONG included.
    this.keepalive?.touch();
    const prog = packet.readUInt32BE(4);
    const proc = packet.readInt32BE(12);
    const type = packet.readInt32BE(16);
    const serial = packet.readUInt32BE(20);
    const status = packet.readInt32BE(24);
    if (prog === KEEPALIVE_PROGRAM) {
      if (proc === KEEPALIVE_PROC_PING) this.sendKeepalive(KEEPALIVE_PROC_PONG);
      else if (proc !== KEEPALIVE_PROC_PONG) throw new LibvirtProtocolError(`unknown keepalive procedure ${proc}`);
      return;
    }
    if (prog === QEMU_PROGRAM) {
      this.onQemuPacket(packet, proc, type, serial, status);
      return;
    }
    if (prog !== REMOTE_PROGRAM) {
      throw new LibvirtProtocolError(`packet for unknown program 0x${prog.toString(16)}`);
    }
    if (packet.readUInt32BE(8) !== REMOTE_PROTOCOL_VERSION) {
      throw new LibvirtProtocolError(`unsupported remote protocol version ${packet.readUInt32BE(8)}`);
    }
    const body = LEN_SIZE + HEADER_SIZE;
    switch (type) {
      case MessageType.REPLY:
        this.onReply(packet, REMOTE_PROGRAM, proc, serial, status);
        return;
      case MessageType.MESSAGE: {
        if (status !== MessageStatus.OK) throw new LibvirtProtocolError(`message with invalid status ${status}`);
        this.onMessage?.(proc, new XdrReader(packet, body));
        return;
      }
      case MessageType.STREAM: {
        if (status !== MessageStatus.OK && status !== MessageStatus.ERROR && status !== MessageStatus.CONTINUE) {
          throw new LibvirtProtocolError(`stream packet with invalid status ${status}`);
        }
        // Packets for streams we already dropped are harmless leftovers.
        this.streams.get(serial)?.onStreamPacket(status, packet.subarray(body));
        return;
      }
      case MessageType.STREAM_HOLE:
        // Only sent when a client asked for sparse streams, which this client never does.
        throw new LibvirtProtocolError("unexpected stream hole packet");
      default:
        throw new LibvirtProtocolError(`packet with unexpected type ${type}`);
    }
  }

  /**
   * The QEMU program: this client never subscribes to its monitor events and opens no stream
   * there, so a reply to one of its calls is the only packet it may send.
   */
  private onQemuPacket(packet: Buffer, proc: number, type: number, serial: number, status: number): void {
    if (packet.readUInt32BE(8) !== QEMU_PROTOCOL_VERSION) {
      throw new LibvirtProtocolError(`unsupported QEMU protocol version ${packet.readUInt32BE(8)}`);
    }
    if (type !== MessageType.REPLY) {
      throw new LibvirtProtocolError(`unexpected QEMU program packet of type ${type} (procedure ${proc})`);
    }
    this.onReply(packet, QEMU_PROGRAM, proc, serial, status);
  }

  /** A REPLY packet: completes the pending call with its serial (which must name the same program and procedure). */
  private onReply(packet: Buffer, program: RpcProgram, proc: number, serial: number, status: number): void {
    const body = LEN_SIZE + HEADER_SIZE;
    if (status !== MessageStatus.OK && status !== MessageStatus.ERROR) {
      throw new LibvirtProtocolError(`reply with invalid status ${status}`);
    }
    const p = this.pending.get(serial);
    if (!p) {
      const sink = program === REMOTE_PROGRAM ? this.streams.get(serial) : undefined;
      // Otherwise a late reply to a call that timed out or was aborted: drop it.
      if (sink) sink.onLateReply(status, packet.subarray(body));
      return;
    }
    if (p.proc !== proc || p.program !== program) {
      throw new LibvirtProtocolError(
        `reply for serial ${serial} names ${nameOf(program, proc)}, expected ${nameOf(p.program, p.proc)}`,
      );
    }
    this.pending.delete(serial);
    this.cleanupPending(p);
    const r = new XdrReader(packet, body);
    let outcome: unknown;
    try {
      if (status === MessageStatus.OK) {
        outcome = p.decode ? p.decode(r) : undefined;
        r.done(`reply to ${nameOf(program, proc)}`);
      } else {
        outcome = this.remoteError(r, proc, program);
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
  }

  /** Decode a remote_error payload into the right typed error. */
  remoteError(r: XdrReader, proc: number, program: RpcProgram = REMOTE_PROGRAM): Error {
    const fields = readRemoteError(r);
    const name = nameOf(program, proc);
    const err = new LibvirtError(fields, name);
    if (fields.code === VirErrorNumber.VIR_ERR_NO_SUPPORT) return new LibvirtVersionSkewError(name, err);
    return err;
  }

  /** Close the link: pending calls and streams fail with `err` (default: connection closed). */
  destroy(err: Error = new LibvirtConnectionClosedError("libvirt connection closed by the client")): void {
    if (this.closeError) return;
    this.closeError = err;
    this.keepalive?.stop();
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

/** The protocol version a call to `program` carries. */
function protocolVersion(program: RpcProgram): number {
  return program === QEMU_PROGRAM ? QEMU_PROTOCOL_VERSION : REMOTE_PROTOCOL_VERSION;
}

/** A procedure's name for messages, by its program. */
function nameOf(program: RpcProgram, proc: number): string {
  return program === QEMU_PROGRAM ? qemuProcName(proc) : procName(proc);
}

function flush(client: RpcClient): void {
  client.flush();
}
