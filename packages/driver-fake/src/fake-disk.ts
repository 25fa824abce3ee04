/**
 * The fake root disk: a map of file paths to bytes, and its deterministic serialisation (what an
 * image snapshot uploads, raw or in a qcow2 container), so a test can download the image and read
 * the files back.
 */
import { isQcow2, qcow2Contents, qcow2Of } from "./qcow2-image.js";

/** A guest's files: path -> content. Values are never mutated in place (copy on write). */
export type DiskFiles = Map<string, Uint8Array>;

const MAGIC = new TextEncoder().encode("VIRTKIT-FAKE-DISK/1\n");

/**
 * Serialises `files` deterministically: a magic line, then for each path in sorted order its
 * UTF-8 length (u32 BE), the path, the data length (u32 BE) and the data.
 */
export function serializeDisk(files: ReadonlyMap<string, Uint8Array>): Uint8Array {
  const paths = [...files.keys()].sort();
  const encoded = paths.map((p) => Buffer.from(p, "utf8"));
  let size = MAGIC.byteLength;
  for (let i = 0; i < paths.length; i++) size += 8 + encoded[i]!.byteLength + files.get(paths[i]!)!.byteLength;
  const out = Buffer.alloc(size);
  out.set(MAGIC, 0);
  let off = MAGIC.byteLength;
  for (let i = 0; i < paths.length; i++) {
    const name = encoded[i]!;
    const data = files.get(paths[i]!)!;
    off = out.writeUInt32BE(name.byteLength, off);
    out.set(name, off);
    off += name.byteLength;
    off = out.writeUInt32BE(data.byteLength, off);
    out.set(data, off);
    off += data.byteLength;
  }
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
}

/**
 * Parses what {@link serializeDisk} wrote, raw or inside the qcow2 container of {@link diskImage};
 * throws `RangeError` on anything else.
 */
export function parseDisk(bytes: Uint8Array): DiskFiles {
  let buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (isQcow2(buf)) buf = qcow2Contents(buf);
  if (buf.byteLength < MAGIC.byteLength || !buf.subarray(0, MAGIC.byteLength).equals(MAGIC)) {
    throw new RangeError("not a virtkit fake disk image");
  }
  const files: DiskFiles = new Map();
  let off = MAGIC.byteLength;
  while (off < buf.byteLength) {
    if (off + 4 > buf.byteLength) throw new RangeError("truncated fake disk image");
    const nameLen = buf.readUInt32BE(off);
    // No path is empty: a zero length starts the padding to the qcow2 cluster size.
    if (nameLen === 0 && buf.subarray(off).every((b) => b === 0)) break;
    off += 4;
    if (off + nameLen + 4 > buf.byteLength) throw new RangeError("truncated fake disk image");
    const name = buf.toString("utf8", off, off + nameLen);
    off += nameLen;
    const dataLen = buf.readUInt32BE(off);
    off += 4;
    if (off + dataLen > buf.byteLength) throw new RangeError("truncated fake disk image");
    files.set(name, new Uint8Array(buf.subarray(off, off + dataLen)));
    off += dataLen;
  }
  return files;
}

/** Total bytes held by `files` (data only). */
export function diskBytes(files: ReadonlyMap<string, Uint8Array>): number {
  let n = 0;
  for (const v of files.values()) n += v.byteLength;
  return n;
}

/** The disk formats the fake uploads: its serialisation as is, or inside a qcow2 container. */
export type FakeImageFormat = "raw" | "qcow2";

/**
 * The bytes of an image snapshot in `format`: `raw` is the serialisation itself (no image header,
 * as a raw disk has none), `qcow2` the same bytes as the guest-visible contents of a real qcow2
 * image (version 2, 4 KiB clusters, no backing file), which `qemu-img` reads like any other.
 */
export function diskImage(files: ReadonlyMap<string, Uint8Array>, format: FakeImageFormat): Uint8Array {
  const raw = serializeDisk(files);
  return format === "raw" ? raw : qcow2Of(raw);
}
