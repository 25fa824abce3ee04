// libvirt RPC packet framing (virnetprotocol): a 4-byte big-endian length that counts itself,
// a 24-byte header (program, version, procedure, type, serial, status), then the XDR payload.

import { LibvirtProtocolError } from "./errors.js";
import { XdrWriter } from "./xdr.js";

/** Program number of the remote (libvirtd) protocol. */
export const REMOTE_PROGRAM = 0x20008086;
/** Version of the remote protocol. */
export const REMOTE_PROTOCOL_VERSION = 1;
/** Program number of libvirt's QEMU-specific protocol (qemu_protocol.x: agent and monitor commands). */
export const QEMU_PROGRAM = 0x20008087;
/** Version of the QEMU protocol. */
export const QEMU_PROTOCOL_VERSION = 1;
/** Program number of the keepalive protocol ("keep"). */
export const KEEPALIVE_PROGRAM = 0x6b656570;
/** Version of the keepalive protocol. */
export const KEEPALIVE_PROTOCOL_VERSION = 1;
/** Keepalive procedures. */
export const KEEPALIVE_PROC_PING = 1;
export const KEEPALIVE_PROC_PONG = 2;

/** virNetMessageType. */
export const MessageType = {
  CALL: 0,
  REPLY: 1,
  MESSAGE: 2,
  STREAM: 3,
  CALL_WITH_FDS: 4,
  REPLY_WITH_FDS: 5,
  STREAM_HOLE: 6,
} as const;

/** virNetMessageStatus. */
export const MessageStatus = {
  OK: 0,
  ERROR: 1,
  CONTINUE: 2,
} as const;

/** Size of the length word. */
export const LEN_SIZE = 4;
/** Size of the serialised header. */
export const HEADER_SIZE = 24;
/**
 * Largest packet libvirt itself accepts (VIR_NET_MESSAGE_MAX, 32 MiB since libvirt 7.x; was 16 MiB).
 * Anything larger is treated as garbage rather than buffered.
 */
export const DEFAULT_MAX_PACKET = 32 * 1024 * 1024;
/** Largest stream data chunk libvirt sends or accepts per packet (VIR_NET_MESSAGE_LEGACY_PAYLOAD_MAX). */
export const STREAM_CHUNK_MAX = 262144;

/** A decoded packet header. */
export interface PacketHeader {
  prog: number;
  vers: number;
  proc: number;
  type: number;
  serial: number;
  status: number;
}

/**
 * Start a packet in `w`: reserves the length word and writes the header.
 * Finish it with `finishPacket`.
 */
export function beginPacket(
  w: XdrWriter,
  prog: number,
  vers: number,
  proc: number,
  type: number,
  serial: number,
  status: number,
): void {
  w.reset();
  w.uint(0);
  w.uint(prog);
  w.uint(vers);
  w.int(proc);
  w.int(type);
  w.uint(serial);
  w.int(status);
}

/** Patch the length word and return a standalone copy of the packet, ready for the socket. */
export function finishPacket(w: XdrWriter, maxPacket = DEFAULT_MAX_PACKET): Buffer {
  if (w.length > maxPacket) {
    throw new RangeError(`packet of ${w.length} bytes exceeds the ${maxPacket}-byte limit`);
  }
  w.buf.writeUInt32BE(w.length, 0);
  return w.toBuffer();
}

/** Encode a whole packet in one go (tests, keepalive). */
export function encodePacket(header: PacketHeader, payload?: Uint8Array): Buffer {
  const w = new XdrWriter(HEADER_SIZE + LEN_SIZE + (payload?.length ?? 0));
  beginPacket(w, header.prog, header.vers, header.proc, header.type, header.serial, header.status);
  if (payload && payload.length > 0) {
    // Raw bytes: stream data is not XDR-padded.
    const at = w.length;
    w.opaqueFixed(payload, payload.length);
    w.length = at + payload.length;
  }
  return finishPacket(w, Number.MAX_SAFE_INTEGER);
}

/** Read the header of a complete packet (`packet` starts at the length word). */
export function readHeader(packet: Buffer): PacketHeader {
  if (packet.length < LEN_SIZE + HEADER_SIZE) {
    throw new LibvirtProtocolError(`packet of ${packet.length} bytes is shorter than a header`);
  }
  return {
    prog: packet.readUInt32BE(4),
    vers: packet.readUInt32BE(8),
    proc: packet.readInt32BE(12),
    type: packet.readInt32BE(16),
    serial: packet.readUInt32BE(20),
    status: packet.readInt32BE(24),
  };
}

/**
 * Splits a byte stream into packets. `push` returns complete packets (each a Buffer that starts at
 * the length word) and throws `LibvirtProtocolError` on an impossible length word.
 * Cost is linear in the bytes received: a partial packet is held as a list of chunks, its length
 * is read once, and the chunks are joined once, when the packet is complete.
 */
export class PacketDecoder {
  private chunks: Buffer[] = [];
  private buffered = 0;
  /** Length of the packet being assembled; 0 until its length word is complete. */
  private need = 0;

  constructor(private readonly maxPacket = DEFAULT_MAX_PACKET) {}

  /** Bytes held waiting for the rest of a packet. */
  get pending(): number {
    return this.buffered;
  }

  /** Feed bytes; calls `onPacket` for each complete packet, in order. */
  push(chunk: Buffer, onPacket: (packet: Buffer) => void): void {
    let data = chunk;
    if (this.buffered > 0) {
      this.chunks.push(chunk);
      this.buffered += chunk.length;
      if (this.need === 0) {
        if (this.buffered < LEN_SIZE) return;
        this.need = this.check(this.readLength());
      }
      if (this.buffered < this.need) return;
      // Held bytes are always fewer than `need`, so the overshoot lies within this chunk.
      const over = this.buffered - this.need;
      const packet = Buffer.concat(this.chunks, this.need);
      this.chunks = [];
      this.buffered = 0;
      this.need = 0;
      onPacket(packet);
      if (over === 0) return;
      data = chunk.subarray(chunk.length - over);
    }
    let off = 0;
    while (data.length - off >= LEN_SIZE) {
      const len = this.check(data.readUInt32BE(off));
      if (data.length - off < len) {
        this.need = len;
        break;
      }
      onPacket(data.subarray(off, off + len));
      off += len;
    }
    if (off < data.length) {
      // Socket chunks are never reused by Node, so holding a view is safe.
      const rest = data.subarray(off);
      this.chunks = [rest];
      this.buffered = rest.length;
    }
  }

  /** The length word of the held bytes, which may be spread over up to four chunks. */
  private readLength(): number {
    let len = 0;
    let got = 0;
    for (const c of this.chunks) {
      for (let i = 0; i < c.length && got < LEN_SIZE; i++, got++) len = len * 256 + (c[i] ?? 0);
      if (got === LEN_SIZE) break;
    }
    return len;
  }

  private check(len: number): number {
    if (len < LEN_SIZE + HEADER_SIZE) {
      throw new LibvirtProtocolError(`packet length ${len} is shorter than the ${LEN_SIZE + HEADER_SIZE}-byte minimum`);
    }
    if (len > this.maxPacket) {
      throw new LibvirtProtocolError(`packet length ${len} exceeds the ${this.maxPacket}-byte limit`);
    }
    return len;
  }
}
