import { describe, expect, it } from "vitest";
import { LibvirtProtocolError } from "./errors.js";
import { XdrReader, XdrWriter } from "./xdr.js";

describe("XDR", () => {
  it("round-trips every primitive with big-endian layout and 4-byte padding", () => {
    const w = new XdrWriter(8);
    w.int(-2);
    w.uint(0xfffffffe);
    w.hyper(-5n);
    w.uhyper(0xffff_ffff_ffff_fffen);
    w.double(1.5);
    w.bool(true);
    w.string("héllo");
    w.opaque(Buffer.from([1, 2, 3]));
    w.opaqueFixed(Buffer.alloc(16, 7), 16);
    w.optString(null);
    w.optString("x");
    w.array([1, 2, 3], (ww, v) => ww.int(v));
    const buf = w.toBuffer();
    expect(buf.length % 4).toBe(0);
    expect(buf.subarray(0, 4)).toEqual(Buffer.from([0xff, 0xff, 0xff, 0xfe]));
    const r = new XdrReader(buf);
    expect(r.int()).toBe(-2);
    expect(r.uint()).toBe(0xfffffffe);
    expect(r.hyper()).toBe(-5n);
    expect(r.uhyper()).toBe(0xffff_ffff_ffff_fffen);
    expect(r.double()).toBe(1.5);
    expect(r.bool()).toBe(true);
    expect(r.string()).toBe("héllo");
    expect([...r.opaque()]).toEqual([1, 2, 3]);
    expect(r.opaqueFixed(16)).toEqual(Buffer.alloc(16, 7));
    expect(r.optString()).toBeNull();
    expect(r.optString()).toBe("x");
    expect(r.array((rr) => rr.int(), 10)).toEqual([1, 2, 3]);
    r.done("test");
  });

  it("pads strings with zero bytes", () => {
    const w = new XdrWriter();
    w.string("abcde");
    expect(w.toBuffer()).toEqual(Buffer.from([0, 0, 0, 5, 97, 98, 99, 100, 101, 0, 0, 0]));
  });

  it("grows its buffer", () => {
    const w = new XdrWriter(4);
    const big = "x".repeat(10000);
    w.string(big);
    expect(new XdrReader(w.toBuffer()).string()).toBe(big);
  });

  it.each([
    ["truncated int", Buffer.from([0, 0, 1]), (r: XdrReader) => r.int()],
    ["truncated hyper", Buffer.alloc(7), (r: XdrReader) => r.uhyper()],
    ["string longer than data", Buffer.from([0, 0, 0, 9, 1, 2]), (r: XdrReader) => r.string()],
    ["string over limit", Buffer.from([0, 0, 1, 0]), (r: XdrReader) => r.string(16)],
    ["array over limit", Buffer.from([0, 0, 0, 9]), (r: XdrReader) => r.array((rr) => rr.int(), 4)],
    ["array longer than data", Buffer.from([0x10, 0, 0, 0]), (r: XdrReader) => r.array((rr) => rr.int(), 1e9)],
    ["bad bool", Buffer.from([0, 0, 0, 2]), (r: XdrReader) => r.bool()],
    ["bad optional", Buffer.from([0, 0, 0, 7]), (r: XdrReader) => r.optString()],
  ])("rejects %s with LibvirtProtocolError", (_name, bytes, read) => {
    expect(() => read(new XdrReader(bytes))).toThrow(LibvirtProtocolError);
  });

  it("reports trailing bytes", () => {
    const r = new XdrReader(Buffer.alloc(8));
    r.int();
    expect(() => r.done("reply")).toThrow(/trailing/);
  });
});
