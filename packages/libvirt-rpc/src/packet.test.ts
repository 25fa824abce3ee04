import { describe, expect, it, vi } from "vitest";
import { seededRandom } from "./testing/seeded-random.js";
import { LibvirtProtocolError } from "./errors.js";
import { DEFAULT_MAX_PACKET, MessageType, PacketDecoder, REMOTE_PROGRAM, encodePacket, readHeader } from "./packet.js";

const realConcat = Buffer.concat.bind(Buffer);

const header = { prog: REMOTE_PROGRAM, vers: 1, proc: 59, type: MessageType.REPLY, serial: 7, status: 0 };

describe("packet framing", () => {
  it("writes a length that counts itself and a 24-byte header", () => {
    const p = encodePacket(header, Buffer.from([1, 2, 3, 4]));
    expect(p.readUInt32BE(0)).toBe(32);
    expect(readHeader(p)).toEqual(header);
  });

  it("reassembles packets split across chunks and several per chunk", () => {
    const a = encodePacket(header, Buffer.alloc(100, 1));
    const b = encodePacket({ ...header, serial: 8 }, Buffer.alloc(8, 2));
    const all = Buffer.concat([a, b, a]);
    const d = new PacketDecoder();
    const got: number[] = [];
    for (let i = 0; i < all.length; i += 3) d.push(all.subarray(i, i + 3), (p) => got.push(readHeader(p).serial));
    expect(got).toEqual([7, 8, 7]);
    expect(d.pending).toBe(0);
    const d2 = new PacketDecoder();
    const got2: number[] = [];
    d2.push(all, (p) => got2.push(p.length));
    expect(got2).toEqual([a.length, b.length, a.length]);
  });

  it("rejects impossible lengths", () => {
    expect(() => new PacketDecoder().push(Buffer.from([0, 0, 0, 4]), () => undefined)).toThrow(LibvirtProtocolError);
    expect(() => new PacketDecoder(1024).push(Buffer.from([0, 0, 8, 0]), () => undefined)).toThrow(/exceeds/);
    // Over the default 32 MiB limit, detected from the length word alone.
    expect(() => new PacketDecoder().push(Buffer.from([0x04, 0, 0, 0]), () => undefined)).toThrow(/exceeds/);
  });
});

describe("packet decoder cost", () => {
  it("decodes a 32 MiB packet whose length word straddles two reads, then arrives in 64 KiB pieces, copying it once", () => {
    const size = DEFAULT_MAX_PACKET;
    const big = encodePacket({ ...header, type: MessageType.STREAM }, Buffer.alloc(size - 28, 0xab));
    const tail = encodePacket({ ...header, serial: 9 }, Buffer.from([1, 2, 3, 4]));
    const stream = Buffer.concat([big, tail]);
    // 2 bytes of the length word in the first read, the other 2 at the start of the second.
    const pieces = [stream.subarray(0, 2)];
    for (let at = 2; at < stream.length; at += 64 * 1024) pieces.push(stream.subarray(at, at + 64 * 1024));
    const d = new PacketDecoder();
    const got: Buffer[] = [];
    // The work, not the time (a loaded machine stretches time): count the bytes the decoder copies
    // while joining pieces. Linear decoding copies the 32 MiB about once; the quadratic one re-joined
    // everything held on every read (about 16 GiB here) and took tens of seconds.
    let copied = 0;
    const concat = vi.spyOn(Buffer, "concat").mockImplementation(function (list, totalLength) {
      copied += totalLength ?? list.reduce((n, b) => n + b.length, 0);
      return realConcat(list, totalLength);
    });
    try {
      for (const piece of pieces) d.push(piece, (p) => got.push(Buffer.from(p)));
    } finally {
      concat.mockRestore();
    }
    expect(copied, `copied ${copied} bytes to decode ${stream.length}`).toBeLessThanOrEqual(2 * stream.length);
    expect(got.map((p) => p.length)).toEqual([size, tail.length]);
    expect(got[0]?.equals(big)).toBe(true);
    expect(got[1]?.equals(tail)).toBe(true);
    expect(d.pending).toBe(0);
  }, 60_000);

  it("yields the same packets for any split of a stream of packets", () => {
    const seed = Number(process.env.FUZZ_SEED ?? 0xdec0de);
    const next = seededRandom(seed);
    for (let iter = 0; iter < 300; iter++) {
      const packets: Buffer[] = [];
      const count = 1 + Math.floor(next() * 6);
      for (let i = 0; i < count; i++) {
        // Mostly small bodies, sometimes one larger than a typical read.
        const len = next() < 0.15 ? Math.floor(next() * 200_000) : Math.floor(next() * 64);
        const body = Buffer.alloc(len);
        for (let j = 0; j < Math.min(len, 16); j++) body[j] = Math.floor(next() * 256);
        packets.push(encodePacket({ ...header, serial: iter * 10 + i }, body));
      }
      const stream = Buffer.concat(packets);
      const d = new PacketDecoder();
      const got: Buffer[] = [];
      let at = 0;
      while (at < stream.length) {
        // Piece sizes from 0 (empty read) through 1-3 bytes (split length word) to several packets.
        const r = next();
        const n =
          r < 0.05
            ? 0
            : r < 0.4
              ? 1 + Math.floor(next() * 4)
              : r < 0.8
                ? Math.floor(next() * 100)
                : Math.floor(next() * 300_000);
        // Copy each piece, like separate socket reads.
        d.push(Buffer.from(stream.subarray(at, at + n)), (p) => got.push(Buffer.from(p)));
        at += n;
      }
      const where = `seed ${seed}, iteration ${iter}`;
      expect(got.length, where).toBe(packets.length);
      for (let i = 0; i < packets.length; i++) expect(got[i]?.equals(packets[i] as Buffer), where).toBe(true);
      expect(d.pending, where).toBe(0);
    }
  }, 60_000);

  it("reports bytes waiting for the rest of a packet", () => {
    const p = encodePacket(header, Buffer.alloc(100, 7));
    const d = new PacketDecoder();
    const got: Buffer[] = [];
    d.push(p.subarray(0, 1), (x) => got.push(x));
    d.push(p.subarray(1, 3), (x) => got.push(x));
    expect(d.pending).toBe(3);
    d.push(p.subarray(3, 50), (x) => got.push(x));
    expect(d.pending).toBe(50);
    d.push(Buffer.concat([p.subarray(50), p.subarray(0, 2)]), (x) => got.push(Buffer.from(x)));
    expect(got).toHaveLength(1);
    expect(got[0]?.equals(p)).toBe(true);
    expect(d.pending).toBe(2);
  });

  it("rejects an impossible length word split across reads", () => {
    const d = new PacketDecoder(1024);
    d.push(Buffer.from([0]), () => undefined);
    d.push(Buffer.from([0, 8]), () => undefined);
    expect(() => d.push(Buffer.from([0]), () => undefined)).toThrow(/exceeds/);
  });
});
