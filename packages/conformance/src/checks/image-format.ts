/**
 * The uploaded image's declared format against its bytes: what a reader of the image (Glance's
 * format inspector, `qemu-img`, a hypervisor booting it) finds must be what the record says, and
 * the format must be the one Nova would upload — the source image's, or the one the environment
 * says its driver always uploads (`imageSnapshotFormat`, e.g. XenAPI's VHD).
 */
import { snapshotImageMetadata, type DiskFormat, type ImageRecord, type Instance } from "@virtkit/core";
import { checkEqual, fail } from "../assertions.js";
import type { ScenarioContext } from "../scenario.js";

/** Formats whose files carry a magic number, so the bytes tell them apart from raw data. */
export type DetectedDiskFormat = "qcow2" | "vhd" | "vhdx" | "vmdk" | "vdi" | "raw";

const ascii = (bytes: Uint8Array, at: number, text: string): boolean =>
  at >= 0 && at + text.length <= bytes.byteLength && Buffer.from(bytes.buffer, bytes.byteOffset + at, text.length).toString("latin1") === text;

/**
 * The format `bytes` are in, by the magic numbers `qemu-img` probes: qcow2 `QFI\xfb` at 0; VHD's
 * `conectix` footer in the last 512 bytes (fixed and dynamic VHD) or its copy at 0 (dynamic VHD);
 * VHDX `vhdxfile`; VMDK `KDMV` or a descriptor; VDI's signature at 64. Anything else is raw.
 */
export function diskFormatOfBytes(bytes: Uint8Array): DetectedDiskFormat {
  if (ascii(bytes, 0, "QFI\xfb")) return "qcow2";
  if (ascii(bytes, bytes.byteLength - 512, "conectix") || ascii(bytes, 0, "conectix")) return "vhd";
  if (ascii(bytes, 0, "vhdxfile")) return "vhdx";
  if (ascii(bytes, 0, "KDMV") || ascii(bytes, 0, "# Disk DescriptorFile")) return "vmdk";
  if (ascii(bytes, 64, "\x7f\x10\xda\xbe")) return "vdi";
  return "raw";
}

/** Declared formats the bytes are checked against (ami/ari/aki are Glance's labels, kept whatever the bytes). */
const CHECKED: ReadonlySet<DiskFormat> = new Set<DiskFormat>(["raw", "qcow2", "vhd", "vhdx", "vmdk", "vdi"]);

/**
 * The image snapshot `image` of `inst`: its declared disk format describes the uploaded bytes, is
 * the format Nova would upload, and a `bare` container holds the disk itself (not a tar archive).
 */
export async function checkUploadedFormat(
  ctx: ScenarioContext,
  inst: Instance,
  image: ImageRecord,
  label: string,
): Promise<void> {
  ctx.step(`read the uploaded bytes (${label})`);
  const bytes = await ctx.env.imageService.download(image.id, ctx.opts());
  const declared = image.diskFormat;
  if (declared === undefined) fail(`the image snapshot of a ${label} instance declares no disk format`);
  const found = diskFormatOfBytes(bytes);
  if (CHECKED.has(declared) && found !== declared) {
    fail(
      `the image snapshot of a ${label} instance says disk format ${JSON.stringify(declared)}, but its ` +
        `${bytes.byteLength} bytes are ${found === "raw" ? "raw data (no image header)" : found}`,
    );
  }
  // Nova: the source's format, unless the driver always uploads one (the ami label Glance keeps).
  const fixed = ctx.env.imageSnapshotFormat;
  const source = inst.imageMeta.diskFormat;
  const expected = fixed ?? source;
  if (expected !== undefined) {
    const want = snapshotImageMetadata(inst, expected, image.name).diskFormat;
    checkEqual(
      declared,
      want,
      `the image snapshot's disk format (${fixed !== undefined ? "the environment says the driver always uploads " + fixed : "the source image is " + String(source)})`,
    );
  }
  if (image.containerFormat === "bare" && ascii(bytes, 257, "ustar")) {
    fail(`the image snapshot of a ${label} instance says container format bare, but its bytes are a tar archive`);
  }
}
