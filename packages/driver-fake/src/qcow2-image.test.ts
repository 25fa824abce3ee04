import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { isQcow2, qcow2Contents, qcow2Of } from "./qcow2-image.js";

/** qemu-img, where qemu-utils is installed (CI installs it for libvirt). */
const qemuImg = (() => {
  try {
    execFileSync("qemu-img", ["--version"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
})();

describe("the qcow2 container of image snapshots", () => {
  it("holds the bytes as the image's contents, zero-padded to whole clusters, across several L2 tables", () => {
    const data = Buffer.alloc(3 * 1024 * 1024 + 5, 7);
    const image = Buffer.from(qcow2Of(data));
    expect(isQcow2(image)).toBe(true);
    const back = qcow2Contents(image);
    expect(back.subarray(0, data.byteLength).equals(data)).toBe(true);
    expect(back.subarray(data.byteLength).every((b) => b === 0)).toBe(true);
    expect(isQcow2(Buffer.from("QFI"))).toBe(false);
  });

  it("reads back only a consistent qcow2 image, as qemu-img check would", () => {
    const good = Buffer.from(qcow2Of(Buffer.from("payload")));
    expect(qcow2Contents(good).subarray(0, 7).toString()).toBe("payload");
    const broken = (change: (b: Buffer) => void) => {
      const b = Buffer.from(good);
      change(b);
      return () => qcow2Contents(b);
    };
    const cluster = 1 << good.readUInt32BE(20);
    const l1At = Number(good.readBigUInt64BE(40));
    const tableAt = Number(good.readBigUInt64BE(48));
    const blockAt = Number(good.readBigUInt64BE(tableAt));
    expect(broken((b) => b.writeUInt32BE(3, 4))).toThrow(/version 3/);
    expect(broken((b) => b.writeBigUInt64BE(BigInt(cluster), 8))).toThrow(/backing file/);
    expect(broken((b) => b.writeUInt16BE(2, blockAt))).toThrow(/refcount 2/);
    expect(broken((b) => b.writeUInt16BE(0, blockAt + 2 * (b.byteLength / cluster - 1)))).toThrow(/refcount 0/);
    expect(broken((b) => b.writeBigUInt64BE(b.readBigUInt64BE(l1At) & ~(1n << 63n), l1At))).toThrow(/COPIED/);
    expect(broken((b) => b.writeUInt32BE(0, 36))).toThrow(/L1 table too small/);
  });

  it.runIf(qemuImg)("passes qemu-img check and converts back to the same bytes", () => {
    const dir = mkdtempSync(join(tmpdir(), "virtkit-qcow2-"));
    try {
      for (const size of [1, 4096, 9 * 1024 * 1024]) {
        const data = Buffer.alloc(size, 3);
        const file = join(dir, `i${size}.qcow2`);
        writeFileSync(file, qcow2Of(data));
        execFileSync("qemu-img", ["check", file], { stdio: "pipe" });
        const info = JSON.parse(execFileSync("qemu-img", ["info", "--output=json", file]).toString()) as { format: string };
        expect(info.format).toBe("qcow2");
        const raw = join(dir, `i${size}.raw`);
        execFileSync("qemu-img", ["convert", "-O", "raw", file, raw]);
        expect(execFileSync("cmp", ["-n", String(size), raw, "-"], { input: data }).length).toBe(0);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
