/**
 * The qcow2 container of the fake's image snapshots: a standalone version 2 image (4 KiB clusters,
 * no backing file) holding given bytes, and the reader of such images. Format plumbing, not driver
 * behaviour: the conformance kit sees only that the bytes are qcow2 (its magic), so the mutation
 * run leaves this file out (stryker.config.mjs); `qcow2-image.test.ts` checks it, with `qemu-img
 * check` where qemu-utils is installed.
 */

const QCOW2_MAGIC = Buffer.from([0x51, 0x46, 0x49, 0xfb]);

/** True when `buf` starts with qcow2's magic `QFI\xfb`. */
export function isQcow2(buf: Buffer): boolean {
  return buf.byteLength >= 4 && buf.subarray(0, 4).equals(QCOW2_MAGIC);
}

const CLUSTER_BITS = 12;
const CLUSTER = 1 << CLUSTER_BITS;
/** 8-byte table entries per cluster (L1, L2 and refcount table), 2-byte refcounts per block. */
const ENTRIES = CLUSTER / 8;
const REFCOUNTS = CLUSTER / 2;
/** Bit 63 of an L1/L2 entry: the cluster's refcount is exactly one (QCOW_OFLAG_COPIED). */
const COPIED = 1n << 63n;
/** The host offset bits of an L1/L2 entry (bits 9 to 55). */
const OFFSET_MASK = 0x00fffffffffffe00n;

/** `data` as the contents of a standalone qcow2 image: header, L1, refcounts, L2 tables, data clusters. */
export function qcow2Of(data: Uint8Array): Uint8Array {
  const n = Math.max(1, Math.ceil(data.byteLength / CLUSTER));
  const l2Count = Math.ceil(n / ENTRIES);
  const l1Clusters = Math.ceil(l2Count / ENTRIES);
  // The refcount blocks count themselves and the table that lists them.
  let blocks = 1;
  let tableClusters = 1;
  for (;;) {
    const total = 1 + l1Clusters + tableClusters + blocks + l2Count + n;
    const needBlocks = Math.ceil(total / REFCOUNTS);
    const needTable = Math.ceil(needBlocks / ENTRIES);
    if (needBlocks <= blocks && needTable <= tableClusters) break;
    blocks = needBlocks;
    tableClusters = needTable;
  }
  const l1At = 1;
  const tableAt = l1At + l1Clusters;
  const blocksAt = tableAt + tableClusters;
  const l2At = blocksAt + blocks;
  const dataAt = l2At + l2Count;
  const total = dataAt + n;
  const out = Buffer.alloc(total * CLUSTER);
  // Header (QCOW version 2): every field big-endian.
  out.set(QCOW2_MAGIC, 0);
  out.writeUInt32BE(2, 4);
  out.writeUInt32BE(CLUSTER_BITS, 20);
  out.writeBigUInt64BE(BigInt(n * CLUSTER), 24);
  out.writeUInt32BE(l2Count, 36);
  out.writeBigUInt64BE(BigInt(l1At * CLUSTER), 40);
  out.writeBigUInt64BE(BigInt(tableAt * CLUSTER), 48);
  out.writeUInt32BE(tableClusters, 56);
  for (let i = 0; i < l2Count; i++) {
    out.writeBigUInt64BE(BigInt((l2At + i) * CLUSTER) | COPIED, l1At * CLUSTER + i * 8);
  }
  for (let i = 0; i < blocks; i++) out.writeBigUInt64BE(BigInt((blocksAt + i) * CLUSTER), tableAt * CLUSTER + i * 8);
  for (let c = 0; c < total; c++) out.writeUInt16BE(1, blocksAt * CLUSTER + c * 2);
  for (let i = 0; i < n; i++) {
    out.writeBigUInt64BE(BigInt((dataAt + i) * CLUSTER) | COPIED, l2At * CLUSTER + i * 8);
  }
  out.set(data, dataAt * CLUSTER);
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
}

/**
 * The guest-visible contents of a version 2 qcow2 image without backing file, encryption, internal
 * snapshots or compression (what {@link qcow2Of} writes), checked as `qemu-img check` would: every
 * cluster in use (header, L1, refcount table and blocks, L2 tables, data) has refcount 1 and every
 * L1/L2 entry says so (the COPIED flag). Anything else throws `RangeError`.
 */
export function qcow2Contents(buf: Buffer): Buffer {
  if (buf.byteLength < 72) throw new RangeError("truncated qcow2 header");
  if (buf.readUInt32BE(4) !== 2) throw new RangeError(`qcow2 version ${buf.readUInt32BE(4)} (the fake writes 2)`);
  if (buf.readBigUInt64BE(8) !== 0n) throw new RangeError("qcow2 image with a backing file");
  const bits = buf.readUInt32BE(20);
  if (bits < 9 || bits > 21) throw new RangeError(`qcow2 cluster bits ${bits}`);
  if (buf.readUInt32BE(32) !== 0) throw new RangeError("encrypted qcow2 image");
  if (buf.readUInt32BE(60) !== 0) throw new RangeError("qcow2 image with internal snapshots");
  const cluster = 2 ** bits;
  const perTable = cluster / 8;
  const size = Number(buf.readBigUInt64BE(24));
  const l1Size = buf.readUInt32BE(36);
  const l1At = Number(buf.readBigUInt64BE(40));
  const tableAt = Number(buf.readBigUInt64BE(48));
  const tableClusters = buf.readUInt32BE(56);
  const clusters = Math.ceil(buf.byteLength / cluster);
  if (l1Size < Math.ceil(size / cluster / perTable)) throw new RangeError("qcow2 L1 table too small for the disk");
  const u64 = (at: number): bigint => {
    if (at + 8 > buf.byteLength) throw new RangeError("truncated qcow2 image");
    return buf.readBigUInt64BE(at);
  };
  const clusterAt = (offset: number): number => {
    if (offset % cluster !== 0 || offset / cluster >= clusters) throw new RangeError(`qcow2 offset ${offset} outside the image`);
    return offset / cluster;
  };
  // Refcount of every cluster, from the refcount table (16-bit refcounts in version 2).
  const refcount = (c: number): number => {
    const perBlock = cluster / 2;
    const block = Number(u64(tableAt + Math.floor(c / perBlock) * 8));
    return block === 0 ? 0 : buf.readUInt16BE(clusterAt(block) * cluster + (c % perBlock) * 2);
  };
  const used: number[] = [0];
  for (let i = 0; i < tableClusters; i++) used.push(clusterAt(tableAt) + i);
  for (let i = 0; i * 8 < tableClusters * cluster; i++) {
    const block = Number(u64(tableAt + i * 8));
    if (block !== 0) used.push(clusterAt(block));
  }
  for (let i = 0; i * perTable < l1Size; i++) used.push(clusterAt(l1At) + i);
  /** The host offset of an L1/L2 entry, 0 when unallocated; an allocated one must carry the COPIED flag. */
  const target = (entry: bigint, what: string): number => {
    const at = Number(entry & OFFSET_MASK);
    if (at !== 0 && (entry & COPIED) === 0n) throw new RangeError(`qcow2 ${what} entry without the COPIED flag`);
    return at;
  };
  const out = Buffer.alloc(size);
  for (let l1 = 0; l1 < l1Size; l1++) {
    const l2At = target(u64(l1At + l1 * 8), "L1");
    if (l2At === 0) continue;
    used.push(clusterAt(l2At));
    for (let j = 0; j < perTable; j++) {
      const raw = u64(l2At + j * 8);
      if ((raw & (1n << 62n)) !== 0n) throw new RangeError("compressed qcow2 clusters are not supported");
      const at = target(raw, "L2");
      const guest = (l1 * perTable + j) * cluster;
      if (at === 0) continue;
      if (guest >= size) throw new RangeError("qcow2 L2 entry past the end of the disk");
      used.push(clusterAt(at));
      buf.copy(out, guest, at, at + Math.min(cluster, size - guest));
    }
  }
  for (const c of used) {
    const n = refcount(c);
    if (n !== 1) throw new RangeError(`qcow2 cluster ${c} in use has refcount ${n}, not 1`);
  }
  if (new Set(used).size !== used.length) throw new RangeError("qcow2 cluster used twice");
  return out;
}
