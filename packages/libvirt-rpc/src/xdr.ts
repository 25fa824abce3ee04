// XDR (RFC 4506) encoding and decoding, as used by libvirt's RPC protocol.
// Everything is big-endian and padded to 4-byte boundaries.

import { LibvirtProtocolError } from "./errors.js";

const PAD = [0, 3, 2, 1] as const;

function pad(len: number): number {
  return PAD[len & 3] as number;
}

/**
 * Appends XDR values to a growable buffer. A writer is reused across calls (see `reset`), so
 * encoding a request does not allocate unless the buffer has to grow.
 */
export class XdrWriter {
  /** Backing storage; only `[0, length)` is meaningful. */
  buf: Buffer;
  /** Number of bytes written so far. */
  length = 0;

  constructor(initialSize = 4096) {
    this.buf = Buffer.allocUnsafe(initialSize);
  }

  /** Forget the contents, keeping the storage. */
  reset(): void {
    this.length = 0;
  }

  private ensure(extra: number): void {
    const need = this.length + extra;
    if (need <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < need) size *= 2;
    const next = Buffer.allocUnsafe(size);
    this.buf.copy(next, 0, 0, this.length);
    this.buf = next;
  }

  /** A copy of the bytes written so far. */
  toBuffer(): Buffer {
    return Buffer.from(this.buf.subarray(0, this.length));
  }

  /** Signed 32-bit integer. */
  int(v: number): void {
    this.ensure(4);
    this.buf.writeInt32BE(v | 0, this.length);
    this.length += 4;
  }

  /** Unsigned 32-bit integer. */
  uint(v: number): void {
    this.ensure(4);
    this.buf.writeUInt32BE(v >>> 0, this.length);
    this.length += 4;
  }

  /** Signed 64-bit integer. */
  hyper(v: bigint): void {
    this.ensure(8);
    this.buf.writeBigInt64BE(BigInt.asIntN(64, v), this.length);
    this.length += 8;
  }

  /** Unsigned 64-bit integer. */
  uhyper(v: bigint): void {
    this.ensure(8);
    this.buf.writeBigUInt64BE(BigInt.asUintN(64, v), this.length);
    this.length += 8;
  }

  /** IEEE double. */
  double(v: number): void {
    this.ensure(8);
    this.buf.writeDoubleBE(v, this.length);
    this.length += 8;
  }

  /** XDR bool (an int that is 0 or 1). */
  bool(v: boolean): void {
    this.int(v ? 1 : 0);
  }

  /** Fixed-length opaque data (no length prefix). */
  opaqueFixed(data: Uint8Array, size: number): void {
    if (data.length !== size) throw new RangeError(`fixed opaque needs ${size} bytes, got ${data.length}`);
    const padded = size + pad(size);
    this.ensure(padded);
    this.buf.set(data, this.length);
    this.buf.fill(0, this.length + size, this.length + padded);
    this.length += padded;
  }

  /** Variable-length opaque data. */
  opaque(data: Uint8Array): void {
    this.uint(data.length);
    const padded = data.length + pad(data.length);
    this.ensure(padded);
    this.buf.set(data, this.length);
    this.buf.fill(0, this.length + data.length, this.length + padded);
    this.length += padded;
  }

  /** UTF-8 string. */
  string(s: string): void {
    // Reserve the worst case, write in place, then patch the length word.
    const max = s.length * 3;
    this.ensure(4 + max + 3);
    const at = this.length;
    const n = this.buf.write(s, at + 4, "utf8");
    this.buf.writeUInt32BE(n, at);
    const padded = n + pad(n);
    this.buf.fill(0, at + 4 + n, at + 4 + padded);
    this.length = at + 4 + padded;
  }

  /** Optional (`*`) value: a bool discriminant, then the value when present. */
  optional<T>(v: T | null | undefined, enc: (w: XdrWriter, v: T) => void): void {
    if (v === null || v === undefined) {
      this.int(0);
    } else {
      this.int(1);
      enc(this, v);
    }
  }

  /** Optional string (`remote_string`). */
  optString(s: string | null | undefined): void {
    if (s === null || s === undefined) {
      this.int(0);
    } else {
      this.int(1);
      this.string(s);
    }
  }

  /** Variable-length array. */
  array<T>(items: readonly T[], enc: (w: XdrWriter, v: T) => void): void {
    this.uint(items.length);
    for (const item of items) enc(this, item);
  }
}

/**
 * Reads XDR values from a buffer with bounds checks. Any malformed input raises
 * `LibvirtProtocolError`, never a RangeError or a crash.
 */
export class XdrReader {
  /** Current read position. */
  pos: number;

  constructor(
    readonly buf: Buffer,
    start = 0,
    readonly end = buf.length,
  ) {
    this.pos = start;
  }

  /** Bytes left. */
  get remaining(): number {
    return this.end - this.pos;
  }

  private need(n: number, what: string): void {
    if (n < 0 || this.pos + n > this.end) {
      throw new LibvirtProtocolError(`truncated XDR data reading ${what} (need ${n}, have ${this.end - this.pos})`);
    }
  }

  /** Signed 32-bit integer. */
  int(): number {
    this.need(4, "int");
    const v = this.buf.readInt32BE(this.pos);
    this.pos += 4;
    return v;
  }

  /** Unsigned 32-bit integer. */
  uint(): number {
    this.need(4, "uint");
    const v = this.buf.readUInt32BE(this.pos);
    this.pos += 4;
    return v;
  }

  /** Signed 64-bit integer. */
  hyper(): bigint {
    this.need(8, "hyper");
    const v = this.buf.readBigInt64BE(this.pos);
    this.pos += 8;
    return v;
  }

  /** Unsigned 64-bit integer. */
  uhyper(): bigint {
    this.need(8, "unsigned hyper");
    const v = this.buf.readBigUInt64BE(this.pos);
    this.pos += 8;
    return v;
  }

  /** Unsigned 64-bit integer as a JS number (exact up to 2^53; for sizes and counters). */
  uhyperNumber(): number {
    this.need(8, "unsigned hyper");
    const hi = this.buf.readUInt32BE(this.pos);
    const lo = this.buf.readUInt32BE(this.pos + 4);
    this.pos += 8;
    return hi * 0x1_0000_0000 + lo;
  }

  /** IEEE double. */
  double(): number {
    this.need(8, "double");
    const v = this.buf.readDoubleBE(this.pos);
    this.pos += 8;
    return v;
  }

  /** XDR bool; libvirt only ever sends 0 or 1, anything else is garbage. */
  bool(): boolean {
    const v = this.int();
    if (v !== 0 && v !== 1) throw new LibvirtProtocolError(`invalid XDR bool ${v}`);
    return v === 1;
  }

  /** Fixed-length opaque data (a copy). */
  opaqueFixed(size: number): Buffer {
    const padded = size + pad(size);
    this.need(padded, "fixed opaque");
    const out = Buffer.from(this.buf.subarray(this.pos, this.pos + size));
    this.pos += padded;
    return out;
  }

  /** Variable-length opaque data (a copy), at most `max` bytes. */
  opaque(max = 0xffffffff): Buffer {
    const len = this.uint();
    if (len > max) throw new LibvirtProtocolError(`opaque length ${len} exceeds limit ${max}`);
    const padded = len + pad(len);
    this.need(padded, "opaque");
    const out = Buffer.from(this.buf.subarray(this.pos, this.pos + len));
    this.pos += padded;
    return out;
  }

  /** UTF-8 string of at most `max` bytes. */
  string(max = 0xffffffff): string {
    const len = this.uint();
    if (len > max) throw new LibvirtProtocolError(`string length ${len} exceeds limit ${max}`);
    const padded = len + pad(len);
    this.need(padded, "string");
    const s = this.buf.toString("utf8", this.pos, this.pos + len);
    this.pos += padded;
    return s;
  }

  /** Optional (`*`) value. */
  optional<T>(dec: (r: XdrReader) => T): T | null {
    return this.bool() ? dec(this) : null;
  }

  /** Optional string (`remote_string`). */
  optString(max?: number): string | null {
    return this.bool() ? this.string(max) : null;
  }

  /** Variable-length array of at most `max` items. */
  array<T>(dec: (r: XdrReader) => T, max: number): T[] {
    const n = this.uint();
    if (n > max) throw new LibvirtProtocolError(`array length ${n} exceeds limit ${max}`);
    // Each element takes at least 4 bytes, which bounds allocation on hostile input.
    if (n * 4 > this.remaining) throw new LibvirtProtocolError(`array length ${n} exceeds remaining data`);
    const out = new Array<T>(n);
    for (let i = 0; i < n; i++) out[i] = dec(this);
    return out;
  }

  /** Throw unless every byte was consumed. */
  done(what: string): void {
    if (this.pos !== this.end) {
      throw new LibvirtProtocolError(`${this.end - this.pos} trailing bytes after ${what}`);
    }
  }
}
