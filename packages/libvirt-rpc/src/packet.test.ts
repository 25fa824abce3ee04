import { describe, expect, it } from "vitest";
import { LibvirtProtocolError } from "./errors.js";
import { MessageType, PacketDecoder, REMOTE_PROGRAM, encodePacket, readHeader } from "./packet.js";

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
