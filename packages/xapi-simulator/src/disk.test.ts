// The sparse disk: blocks hold their bytes up to the last one written, and read back whole.
import { describe, expect, it } from "vitest";
import { BLOCK_SIZE, DiskContent, vhdToDisk } from "./disk.js";

const MiB = 1024 * 1024;

describe("DiskContent", () => {
  it("reads a short write back as a whole block, zeros after it, through raw and VHD", () => {
    const disk = new DiskContent(5 * MiB);
    const boot = Buffer.alloc(64 * 1024, 0x11);
    disk.write(0, boot);
    expect(disk.allocated).toBe(BLOCK_SIZE);
    const block = disk.block(0);
    expect(block.length).toBe(BLOCK_SIZE);
    expect(block.subarray(0, boot.length).equals(boot)).toBe(true);
    expect(block.subarray(boot.length).every((b) => b === 0)).toBe(true);
    const raw = Buffer.concat([...disk.rawChunks()]);
    expect(raw.length).toBe(5 * MiB);
    expect(raw.subarray(0, boot.length).equals(boot)).toBe(true);
    expect(raw.subarray(boot.length).every((b) => b === 0)).toBe(true);
    const back = vhdToDisk(Buffer.concat([...disk.vhdChunks()]));
    expect(back.read(0, 5 * MiB).equals(raw)).toBe(true);
  });

  it("keeps clones apart and writes past a short block's end", () => {
    const disk = new DiskContent(3 * MiB);
    disk.write(100, Buffer.from("first"));
    const copy = disk.clone();
    copy.write(MiB, Buffer.from("later"));
    expect(disk.read(MiB, 5).every((b) => b === 0)).toBe(true);
    expect(copy.read(100, 5).toString()).toBe("first");
    expect(copy.read(MiB, 5).toString()).toBe("later");
    // The last block is shorter than BLOCK_SIZE (3 MiB disk): guest data lands at its very end.
    copy.writeGuestData({ k: "v" });
    expect(copy.readGuestData()).toEqual({ k: "v" });
    expect(copy.block(1).length).toBe(MiB);
    // Zeroing what was written frees the block again.
    disk.write(100, Buffer.alloc(5));
    expect(disk.allocated).toBe(0);
  });
});
