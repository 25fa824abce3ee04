/**
 * Snapshot images inherit the base image's properties as Nova's compute utils do
 * (`initialize_instance_snapshot_metadata`): an instance booted from the snapshot must find the
 * same guest agent, admin user, disk bus and architecture as its parent, and the same minimum
 * disk and RAM; the non-inheritable properties (signatures, encryption keys, `os_glance*`,
 * Nova's default `cache_in_nova` / `bittorrent`) must not follow. Read from the image service,
 * never from the driver.
 */
import type { ImageMeta, Instance } from "@virtkit/core";
import { check, checkEqual, expectState, PowerState } from "../assertions.js";
import { DEFAULT_BOOT_IMAGE, DEFAULT_FLAVOR } from "../make-test.js";
import type { ScenarioContext } from "../scenario.js";

/** Properties the snapshot must carry, with the values it must carry them with (strings, as Glance keeps them). */
function inheritable(base: ImageMeta): Record<string, string> {
  const bus = base.properties.hw_disk_bus;
  const arch = base.properties.architecture;
  return {
    hw_qemu_guest_agent: "true",
    os_admin_user: "root",
    // The environment's own bus and architecture: the guest must still boot.
    hw_disk_bus: typeof bus === "string" && bus !== "" ? bus : "virtio",
    architecture: typeof arch === "string" && arch !== "" ? arch : "x86_64",
    os_type: "linux",
    virtkit_conformance_marker: "inherited",
  };
}

/** Properties that must not follow the snapshot. */
const NOT_INHERITED: Readonly<Record<string, string>> = {
  cache_in_nova: "true",
  bittorrent: "true",
  img_signature: "c2lnbmF0dXJl",
  img_signature_hash_method: "SHA-256",
  img_signature_key_type: "RSA-PSS",
  img_signature_certificate_uuid: "00000000-0000-4000-8000-000000000001",
  cinder_encryption_key_id: "00000000-0000-4000-8000-000000000002",
  os_glance_importing_to_stores: "file",
};

/** Boots from an image with inheritable and non-inheritable properties, snapshots, reads the image back. */
export async function checkSnapshotInheritsImageProperties(ctx: ScenarioContext): Promise<void> {
  const base = ctx.env.bootImage ?? DEFAULT_BOOT_IMAGE;
  const want = inheritable(base);
  const imageMeta: ImageMeta = {
    ...base,
    minDisk: 1,
    minRam: 32,
    properties: { ...base.properties, ...want, hw_qemu_guest_agent: true, ...NOT_INHERITED },
  };
  // A root disk larger than the image's min_disk: min_disk must then come from the flavor.
  const flavor = ctx.env.flavor ?? DEFAULT_FLAVOR;
  const inst: Instance = await ctx.spawn({ imageMeta, flavor: { ...flavor, rootGb: Math.max(2, flavor.rootGb) } });

  ctx.step("create the queued image");
  const name = `${ctx.prefix}-snap-inherit`;
  const image = await ctx.env.imageService.create({ name, status: "queued" });
  ctx.trackImage(image.id);
  ctx.step("snapshot");
  await ctx.driver.snapshot(inst, image.id, ctx.opts());
  await expectState(ctx, inst, PowerState.RUNNING, "the image snapshot");

  ctx.step("read the image back");
  const got = await ctx.env.imageService.get(image.id);
  checkEqual(got.status, "active", "snapshot image status");
  for (const [key, value] of Object.entries(want)) {
    checkEqual(got.properties[key], value, `inherited image property ${key}`);
  }
  for (const key of Object.keys(NOT_INHERITED)) {
    check(got.properties[key] === undefined, `image property ${key} must not be inherited by a snapshot`);
  }
  if (base.id !== undefined) checkEqual(got.properties.base_image_ref, base.id, "snapshot base_image_ref");
  checkEqual(got.properties.image_type, "snapshot", "snapshot image_type");
  checkEqual(got.properties.instance_uuid, inst.uuid, "snapshot instance_uuid");
  // Nova: min_disk is the larger of the image's and the flavor's root disk; min_ram the image's.
  checkEqual(got.minDisk, Math.max(1, inst.flavor.rootGb), "snapshot min_disk");
  checkEqual(got.minRam, 32, "snapshot min_ram");
}
