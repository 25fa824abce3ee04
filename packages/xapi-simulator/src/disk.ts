// The bytes of a simulated VDI: sparse 2 MiB blocks (copy-on-write between clones and
// snapshots), read back as raw or as a dynamic VHD of the allocated blocks. The guest's own
// data (SimulatedGuest.writeData) lives in these bytes too, in a small region at the end of the
// disk, so every path that carries a disk (snapshot, revert, copy, migrate_send, export/import)
// carries it without special cases.
import { randomBytes } from "node:crypto";

/** VHD dynamic disks and the simulator's sparse map both use 2 MiB blocks. */
export const BLOCK_SIZE = 2 * 1024 * 1024;
const SECTOR = 512;
/** The guest's key/value data occupies the last 64 KiB of the disk. */
const DATA_REGION = 64 * 1024;
const DATA_MAGIC = "VIRTKIT-SIM-GUEST-DATA\n";
/** Shared zeros for holes; only ever read. */
const ZERO_BLOCK = Buffer.alloc(BLOCK_SIZE);

/**
 * Sparse disk contents. Block buffers are never mutated in place, so clones share them safely.
 * A block holds its bytes up to the last one written (the rest reads as zeros): a 64 KiB boot
 * image costs 64 KiB, not a zero-filled 2 MiB buffer per import.
 */
export class DiskContent {
  private readonly blocks: Map<number, Buffer>;

  constructor(
    readonly size: number,
    blocks?: Map<number, Buffer>,
  ) {
    this.blocks = blocks ? new Map(blocks) : new Map();
  }

  /** A copy sharing every block until one side writes. */
  clone(size = this.size): DiskContent {
    const copy = new DiskContent(size, this.blocks);
    if (size < this.size) for (const i of [...copy.blocks.keys()]) if (i * BLOCK_SIZE >= size) copy.blocks.delete(i);
    return copy;
  }

  /** Bytes actually held (allocated blocks). */
  get allocated(): number {
    return this.blocks.size * BLOCK_SIZE;
  }

  /** Indexes of allocated blocks, ascending. */
  allocatedBlocks(): number[] {
    return [...this.blocks.keys()].sort((a, b) => a - b);
  }

  /** The bytes of one block (zeros when unallocated; never write into the result). */
  block(index: number): Buffer {
    const len = Math.min(BLOCK_SIZE, this.size - index * BLOCK_SIZE);
    const held = this.blocks.get(index);
    if (!held) return len === BLOCK_SIZE ? ZERO_BLOCK : ZERO_BLOCK.subarray(0, len);
    if (held.length >= len) return held.length === len ? held : held.subarray(0, len);
    const full = Buffer.alloc(len);
    held.copy(full);
    return full;
  }

  /** Write bytes at an offset; all-zero blocks stay unallocated. */
  write(offset: number, data: Buffer): void {
    if (offset < 0 || offset + data.length > this.size) throw new RangeError("write beyond the end of the disk");
    let pos = 0;
    while (pos < data.length) {
      const at = offset + pos;
      const index = Math.floor(at / BLOCK_SIZE);
      const within = at - index * BLOCK_SIZE;
      const n = Math.min(BLOCK_SIZE - within, data.length - pos);
      const piece = data.subarray(pos, pos + n);
      const old = this.blocks.get(index);
      if (!old && isZero(piece)) {
        pos += n;
        continue;
      }
      const next = Buffer.alloc(Math.max(old?.length ?? 0, within + n));
      if (old) old.copy(next);
      piece.copy(next, within);
      if (isZero(next)) this.blocks.delete(index);
      else this.blocks.set(index, next);
      pos += n;
    }
  }

  /** Read bytes at an offset. */
  read(offset: number, length: number): Buffer {
    const out = Buffer.alloc(length);
    let pos = 0;
    while (pos < length) {
      const at = offset + pos;
      const index = Math.floor(at / BLOCK_SIZE);
      const within = at - index * BLOCK_SIZE;
      const n = Math.min(BLOCK_SIZE - within, length - pos);
      const b = this.blocks.get(index);
      // A block may end before `within` (bytes past its last write read as zeros).
      if (b && within < b.length) b.copy(out, pos, within, Math.min(b.length, within + n));
      pos += n;
    }
    return out;
  }

  /** The guest's key/value data stored at the end of the disk. */
  readGuestData(): Record<string, string> {
    if (this.size < DATA_REGION) return {};
    const raw = this.read(this.size - DATA_REGION, DATA_REGION);
    const text = raw.toString("utf8");
    if (!text.startsWith(DATA_MAGIC)) return {};
    const end = text.indexOf("\0");
    try {
      return JSON.parse(text.slice(DATA_MAGIC.length, end < 0 ? undefined : end)) as Record<string, string>;
    } catch {
      return {};
    }
  }

  /** Store the guest's key/value data at the end of the disk. */
  writeGuestData(data: Record<string, string>): void {
    if (this.size < DATA_REGION) throw new RangeError("disk too small to hold guest data");
    const bytes = Buffer.from(DATA_MAGIC + JSON.stringify(data), "utf8");
    if (bytes.length >= DATA_REGION) throw new RangeError("guest data too large");
    const region = Buffer.alloc(DATA_REGION);
    bytes.copy(region);
    this.write(this.size - DATA_REGION, region);
  }

  /** The whole disk, chunk by chunk (zeros for holes), as format=raw exports it. */
  *rawChunks(): Generator<Buffer> {
    const count = Math.ceil(this.size / BLOCK_SIZE);
    for (let i = 0; i < count; i++) yield this.block(i);
  }

  /** A dynamic VHD of the allocated blocks, as format=vhd exports it. */
  *vhdChunks(): Generator<Buffer> {
    const entries = Math.ceil(this.size / BLOCK_SIZE);
    const batBytes = roundUp(entries * 4, SECTOR);
    const footer = vhdFooter(this.size);
    const header = vhdDynamicHeader(entries, 512 + 1024);
    const bat = Buffer.alloc(batBytes, 0xff);
    const allocated = this.allocatedBlocks();
    // Each block: a one-sector bitmap (2 MiB / 512 B = 4096 sectors = 512 bytes) then the data.
    let sector = (512 + 1024 + batBytes) / SECTOR;
    for (const i of allocated) {
      bat.writeUInt32BE(sector, i * 4);
      sector += 1 + BLOCK_SIZE / SECTOR;
    }
    yield footer;
    yield header;
    yield bat;
    const bitmap = Buffer.alloc(SECTOR, 0xff);
    for (const i of allocated) {
      yield bitmap;
      const b = this.block(i);
      yield b.length === BLOCK_SIZE ? b : Buffer.concat([b, Buffer.alloc(BLOCK_SIZE - b.length)]);
    }
    yield footer;
  }
}

/**
 * The guest data (SimulatedGuest.writeData) inside an exported image, raw or VHD, as the test
 * environment reads it back from bytes uploaded to an image service.
 */
export function readGuestDataFromImage(bytes: Uint8Array, format: "raw" | "vhd"): Record<string, string> {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (format === "raw") return new DiskContent(buf.length, rawBlocks(buf)).readGuestData();
  return vhdToDisk(buf).readGuestData();
}

function rawBlocks(buf: Buffer): Map<number, Buffer> {
  const blocks = new Map<number, Buffer>();
  for (let i = 0; i * BLOCK_SIZE < buf.length; i++) blocks.set(i, buf.subarray(i * BLOCK_SIZE, Math.min(buf.length, (i + 1) * BLOCK_SIZE)));
  return blocks;
}

/** Parse a dynamic VHD (as vhdChunks writes it) back into disk contents. */
export function vhdToDisk(buf: Buffer): DiskContent {
  if (buf.length < 512 + 1024 || buf.toString("latin1", 0, 8) !== "conectix") throw new Error("not a VHD");
  const size = Number(buf.readBigUInt64BE(48));
  const header = Number(buf.readBigUInt64BE(16));
  if (buf.toString("latin1", header, header + 8) !== "cxsparse") throw new Error("not a dynamic VHD");
  const bat = Number(buf.readBigUInt64BE(header + 16));
  const entries = buf.readUInt32BE(header + 28);
  const blockSize = buf.readUInt32BE(header + 32);
  if (blockSize !== BLOCK_SIZE) throw new Error("unexpected VHD block size");
  const disk = new DiskContent(size);
  for (let i = 0; i < entries; i++) {
    const sector = buf.readUInt32BE(bat + i * 4);
    if (sector === 0xffffffff) continue;
    const start = sector * SECTOR + SECTOR;
    const len = Math.min(BLOCK_SIZE, size - i * BLOCK_SIZE);
    disk.write(i * BLOCK_SIZE, buf.subarray(start, start + len));
  }
  return disk;
}

function isZero(b: Buffer): boolean {
  return b.equals(ZERO_BLOCK.subarray(0, b.length));
}

function roundUp(n: number, to: number): number {
  return Math.ceil(n / to) * to;
}

function checksum(buf: Buffer): number {
  let sum = 0;
  for (const byte of buf) sum = (sum + byte) >>> 0;
  return ~sum >>> 0;
}

/** CHS geometry as the VHD specification computes it. */
function geometry(size: number): number {
  let total = Math.floor(size / SECTOR);
  if (total > 65535 * 16 * 255) total = 65535 * 16 * 255;
  let spt: number;
  let heads: number;
  let cth: number;
  if (total >= 65535 * 16 * 63) {
    spt = 255;
    heads = 16;
    cth = Math.floor(total / spt);
  } else {
    spt = 17;
    cth = Math.floor(total / spt);
    heads = Math.max(4, Math.floor((cth + 1023) / 1024));
    if (cth >= heads * 1024 || heads > 16) {
      spt = 31;
      heads = 16;
      cth = Math.floor(total / spt);
    }
    if (cth >= heads * 1024) {
      spt = 63;
      heads = 16;
      cth = Math.floor(total / spt);
    }
  }
  const cylinders = Math.floor(cth / heads);
  return ((cylinders & 0xffff) << 16) | ((heads & 0xff) << 8) | (spt & 0xff);
}

const VHD_EPOCH = Date.UTC(2000, 0, 1) / 1000;

function vhdFooter(size: number): Buffer {
  const f = Buffer.alloc(512);
  f.write("conectix", 0, "latin1");
  f.writeUInt32BE(2, 8); // features: reserved bit always set
  f.writeUInt32BE(0x00010000, 12); // format version 1.0
  f.writeBigUInt64BE(512n, 16); // dynamic header follows the footer copy
  f.writeUInt32BE(Math.max(0, Math.floor(Date.now() / 1000 - VHD_EPOCH)) >>> 0, 24);
  f.write("tap\0", 28, "latin1"); // creator application: blktap, as XenServer writes it
  f.writeUInt32BE(0x00010000, 32);
  f.write("Lnux", 36, "latin1");
  f.writeBigUInt64BE(BigInt(size), 40);
  f.writeBigUInt64BE(BigInt(size), 48);
  f.writeUInt32BE(geometry(size) >>> 0, 56);
  f.writeUInt32BE(3, 60); // dynamic disk
  randomBytes(16).copy(f, 68);
  f.writeUInt32BE(checksum(f), 64);
  return f;
}

function vhdDynamicHeader(entries: number, batOffset: number): Buffer {
  const h = Buffer.alloc(1024);
  h.write("cxsparse", 0, "latin1");
  h.writeBigUInt64BE(0xffffffffffffffffn, 8);
  h.writeBigUInt64BE(BigInt(batOffset), 16);
  h.writeUInt32BE(0x00010000, 24);
  h.writeUInt32BE(entries, 28);
  h.writeUInt32BE(BLOCK_SIZE, 32);
  h.writeUInt32BE(checksum(h), 36);
  return h;
}
