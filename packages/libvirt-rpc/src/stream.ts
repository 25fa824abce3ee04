// libvirt data streams (VIR_NET_STREAM packets) as Node streams, e.g. for storage volume
// download/upload. Handshake: the call's REPLY opens the stream; data flows as STREAM/CONTINUE;
// the sender ends with an empty STREAM/CONTINUE (libvirtd) or STREAM/OK; the client then sends STREAM/OK ("finish") and the daemon
// confirms with an empty STREAM/OK. Aborting is STREAM/ERROR, also confirmed. Errors arrive as
// STREAM or REPLY packets with status ERROR and a remote_error body.

import { Readable, Writable } from "node:stream";
import type { RpcClient, StreamSink } from "./client.js";
import { LibvirtProtocolError } from "./errors.js";
import { MessageStatus, STREAM_CHUNK_MAX } from "./packet.js";
import { XdrReader } from "./xdr.js";

type ReadState = "open" | "finishing" | "done" | "aborting";

/**
 * The download side of a libvirt stream. Back-pressure: when the consumer stops reading, the whole
 * connection stops reading from the socket, which in turn makes libvirtd stop sending.
 */
export class LibvirtReadStream extends Readable implements StreamSink {
  private state: ReadState = "open";
  /** @internal Set by the client when the call is sent. */
  serial = 0;
  private settle: () => void = () => undefined;
  /**
   * Settles once the daemon has nothing more to send for this stream: its end, the confirmation of
   * an abort, a failure, or the link's close. Never rejects.
   */
  readonly released: Promise<void> = new Promise<void>((resolve) => (this.settle = resolve));

  /** @internal */
  constructor(
    private readonly client: RpcClient,
    private readonly proc: number,
    highWaterMark = 1024 * 1024,
  ) {
    super({ highWaterMark });
  }

  override _read(): void {
    this.client.resumeReading(this);
  }

  /** @internal */
  onStreamPacket(status: number, payload: Buffer): void {
    if (this.state === "aborting") {
      // Drop data still in flight; the confirm (OK or ERROR) ends the abort.
      if (status !== MessageStatus.CONTINUE) this.release();
      return;
    }
    if (status === MessageStatus.CONTINUE && payload.length === 0 && this.state === "open") {
      // libvirtd signals EOF with an empty data packet: send our finish, await its confirmation.
      this.state = "finishing";
      this.client.sendStreamPacket(this.proc, this.serial, MessageStatus.OK);
    } else if (status === MessageStatus.CONTINUE) {
      if (this.state !== "open") return this.fail(new LibvirtProtocolError("stream data after end of stream"));
      // Copy: `payload` is a view into a socket buffer holding other packets too.
      if (!this.push(Buffer.from(payload))) this.client.pauseReading(this);
    } else if (status === MessageStatus.OK) {
      if (this.state === "open") {
        // EOF from the daemon: send our finish and wait for its confirmation.
        this.state = "finishing";
        this.client.sendStreamPacket(this.proc, this.serial, MessageStatus.OK);
      } else if (this.state === "finishing") {
        this.state = "done";
        this.release();
        this.push(null);
      }
    } else {
      this.fail(this.client.remoteError(new XdrReader(payload), this.proc));
    }
  }

  /** @internal */
  onLateReply(status: number, payload: Buffer): void {
    if (this.state === "aborting") {
      // The call's reply arrived after we gave up on it: the daemon's stream exists now, abort it.
      if (status === MessageStatus.OK) this.client.sendStreamPacket(this.proc, this.serial, MessageStatus.ERROR);
      else this.release();
    } else if (status === MessageStatus.ERROR) {
      this.fail(this.client.remoteError(new XdrReader(payload), this.proc));
    } else if (this.state === "finishing") {
      this.state = "done";
      this.release();
      this.push(null);
    }
  }

  /** @internal */
  onClose(err: Error): void {
    this.client.resumeReading(this);
    this.settle();
    // A stream whose reader already stopped listening (or never got it, its open call having
    // failed) must not turn the link's death into an uncaught 'error' event.
    if (this.state !== "done") this.destroy(this.listenerCount("error") > 0 ? err : undefined);
  }

  private fail(err: Error): void {
    this.state = "done";
    this.release();
    // Not yet read (its consumer still waiting, e.g. on an image service): an 'error' event nobody
    // listens to would crash the process. Destroyed without it, a later read still fails (premature close).
    this.destroy(this.listenerCount("error") > 0 ? err : undefined);
  }

  private release(): void {
    this.client.unregisterStream(this.serial);
    this.client.resumeReading(this);
    this.settle();
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    if (this.state === "open" || this.state === "finishing") {
      // Consumer gave up early: tell the daemon, and keep swallowing packets until it confirms.
      this.state = "aborting";
      this.client.resumeReading(this);
      this.client.sendStreamPacket(this.proc, this.serial, MessageStatus.ERROR);
    }
    cb(err);
  }
}

type WriteState = "open" | "finishing" | "done" | "aborting";

/** The upload side of a libvirt stream. `end()` performs the finish handshake; errors destroy it. */
export class LibvirtWriteStream extends Writable implements StreamSink {
  private state: WriteState = "open";
  private finalCallback: ((err?: Error | null) => void) | undefined;
  private pendingError: Error | undefined;
  /** @internal Set by the client when the call is sent. */
  serial = 0;

  /** @internal */
  constructor(
    private readonly client: RpcClient,
    private readonly proc: number,
    highWaterMark = 1024 * 1024,
  ) {
    super({ highWaterMark });
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, cb: (err?: Error | null) => void): void {
    if (this.pendingError) return cb(this.pendingError);
    if (this.client.closed) return cb(this.client.closeReason);
    let ok = true;
    for (let off = 0; off < chunk.length; off += STREAM_CHUNK_MAX) {
      ok = this.client.sendStreamPacket(
        this.proc,
        this.serial,
        MessageStatus.CONTINUE,
        chunk.subarray(off, Math.min(chunk.length, off + STREAM_CHUNK_MAX)),
      );
    }
    if (ok) cb();
    else void this.client.whenDrained().then(() => cb(this.pendingError ?? this.client.closeReason));
  }

  override _final(cb: (err?: Error | null) => void): void {
    if (this.pendingError) return cb(this.pendingError);
    this.state = "finishing";
    this.finalCallback = cb;
    this.client.sendStreamPacket(this.proc, this.serial, MessageStatus.OK);
  }

  /** @internal */
  onStreamPacket(status: number, payload: Buffer): void {
    if (status === MessageStatus.ERROR) {
      this.fail(this.client.remoteError(new XdrReader(payload), this.proc));
    } else if (status === MessageStatus.OK) {
      this.confirm();
    } else if (this.state !== "aborting") {
      this.fail(new LibvirtProtocolError("daemon sent data on an upload stream"));
    }
  }

  /** @internal */
  onLateReply(status: number, payload: Buffer): void {
    if (this.state === "aborting") {
      if (status === MessageStatus.OK) this.client.sendStreamPacket(this.proc, this.serial, MessageStatus.ERROR);
      else this.client.unregisterStream(this.serial);
    } else if (status === MessageStatus.ERROR) {
      this.fail(this.client.remoteError(new XdrReader(payload), this.proc));
    } else {
      this.confirm();
    }
  }

  /** @internal */
  onClose(err: Error): void {
    if (this.state === "done") return;
    this.fail(err);
  }

  private confirm(): void {
    const wasFinishing = this.state === "finishing";
    this.state = "done";
    this.client.unregisterStream(this.serial);
    if (wasFinishing) {
      const cb = this.finalCallback;
      this.finalCallback = undefined;
      cb?.();
    }
  }

  private fail(err: Error): void {
    if (this.state === "aborting") {
      this.state = "done";
      this.client.unregisterStream(this.serial);
      return;
    }
    this.state = "done";
    this.pendingError = err;
    this.client.unregisterStream(this.serial);
    const cb = this.finalCallback;
    this.finalCallback = undefined;
    if (cb) cb(err);
    else this.destroy(this.listenerCount("error") > 0 ? err : undefined);
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    if (this.state === "open" || this.state === "finishing") {
      this.state = "aborting";
      this.client.sendStreamPacket(this.proc, this.serial, MessageStatus.ERROR);
    }
    cb(err);
  }
}
