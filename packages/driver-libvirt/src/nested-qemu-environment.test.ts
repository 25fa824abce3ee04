// The nested environment reads a guest's marker out of an uploaded image by its own means
// (qemu-img, debugfs): a real ext4 file system in a real qcow2, made here with mke2fs -d.
import { execFileSync } from "node:child_process";
import { mkdtemp, mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { InMemoryImageService } from "@virtkit/core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readMarkerFromImage, shutdownRecordOf } from "./nested-qemu-environment.js";

const tools = ["qemu-img", "mke2fs", "debugfs"].filter((t) => {
  try {
    execFileSync("sh", ["-c", `command -v ${t} || test -x /usr/sbin/${t} || test -x /sbin/${t}`]);
    return false;
  } catch {
    return true;
  }
});
const SKIP = tools.length > 0 ? ` (skipped: ${tools.join(", ")} not installed)` : "";

describe.skipIf(SKIP !== "")(`reading a marker out of an uploaded image${SKIP}`, () => {
  let dir: string;
  const images = new InMemoryImageService();
  let qcow2Id: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "virtkit-nq-marker-"));
    const root = join(dir, "root");
    await mkdir(root);
    await writeFile(join(root, "virtkit-snap-key"), "first");
    const raw = join(dir, "disk.raw");
    const env = { ...process.env, PATH: `${process.env.PATH ?? ""}:/usr/sbin:/sbin` };
    execFileSync("mke2fs", ["-q", "-F", "-t", "ext4", "-d", root, raw, "16M"], { env });
    execFileSync("qemu-img", ["convert", "-O", "qcow2", raw, join(dir, "disk.qcow2")]);
    const image = await images.create({ name: "snap", status: "queued" });
    qcow2Id = image.id;
    await images.update(image.id, { diskFormat: "qcow2", status: "active" }, await readFile(join(dir, "disk.qcow2")));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("finds what the guest wrote, and says undefined for a marker it never wrote", async () => {
    expect(await readMarkerFromImage(images, qcow2Id, "snap-key")).toBe("first");
    expect(await readMarkerFromImage(images, qcow2Id, "never-written")).toBeUndefined();
  });

  it("refuses an image whose data is not what its record says", async () => {
    const lying = await images.create({ name: "lying", status: "queued" });
    await images.update(lying.id, { diskFormat: "raw", status: "active" }, await readFile(join(dir, "disk.qcow2")));
    await expect(readMarkerFromImage(images, lying.id, "snap-key")).rejects.toThrow(/says raw, qemu-img finds qcow2/);
  });
});

describe("what the guest saw of its reboots and power offs", () => {
  const log = (lastBoot: number, acpiRequests: number, clean: number[]) => ({ lastBoot, acpiRequests, cleanEnds: new Set(clean) });

  it("a running guest's earlier boots ended in reboots, clean when it recorded its own shutdown", () => {
    expect(shutdownRecordOf(log(1, 0, []), new Set(), false)).toEqual({ acpiRequests: 0 });
    expect(shutdownRecordOf(log(2, 1, [1]), new Set(), false)).toEqual({ acpiRequests: 1, lastReboot: "clean" });
    expect(shutdownRecordOf(log(3, 1, [1]), new Set(), false)).toEqual({ acpiRequests: 1, lastReboot: "hard" });
  });

  it("an instance off now: its last power off is how the host saw the run end; ends seen off before stay power offs", () => {
    expect(shutdownRecordOf(log(1, 0, []), new Set(), "hard")).toEqual({ acpiRequests: 0, lastPowerOff: "hard" });
    expect(shutdownRecordOf(log(3, 2, [1, 3]), new Set([2]), "clean")).toEqual({ acpiRequests: 2, lastReboot: "clean", lastPowerOff: "clean" });
    expect(shutdownRecordOf(log(3, 2, [3]), new Set([2]), false)).toEqual({ acpiRequests: 2, lastReboot: "hard", lastPowerOff: "hard" });
    // A run cut off before the guest recorded its boot: the guest's last recorded boot was clean.
    expect(shutdownRecordOf(log(1, 1, [1]), new Set([1]), "hard")).toEqual({ acpiRequests: 1, lastPowerOff: "hard" });
  });
});

describe("the nested environment's scenarios left to the libvirt-qemu column", () => {
  it("are scenarios of the suite that are neither migrations nor admin passwords (what needs two hosts or a booted guest)", async () => {
    const { SCENARIOS } = await import("@virtkit/conformance");
    const { SAME_ON_ONE_HOST } = await import("./nested-qemu-environment.js");
    const ids = new Set(SCENARIOS.map((s) => s.id));
    expect(SAME_ON_ONE_HOST.filter((id) => !ids.has(id))).toEqual([]);
    expect(SAME_ON_ONE_HOST.filter((id) => /^(migration|admin-password|effects)\./.test(id))).toEqual([]);
  });
});
