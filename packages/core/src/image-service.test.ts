import { describe, expect, it } from "vitest";
import { InMemoryImageService, snapshotImageMetadata } from "./image-service.js";
import type { Instance } from "./model.js";

const base: Instance = {
  uuid: "7b0c2a4e-0d6f-4c55-9a55-2f1f0d6b1a01",
  name: "vm-1",
  flavor: { name: "m1.small", memoryMb: 2048, vcpus: 1, rootGb: 20 },
  imageMeta: {
    id: "11111111-2222-4333-8444-555555555555",
    diskFormat: "qcow2",
    containerFormat: "bare",
    minDisk: 10,
    minRam: 512,
    properties: {
      hw_qemu_guest_agent: true,
      os_admin_user: "cloud-user",
      hw_disk_bus: "scsi",
      architecture: "x86_64",
      os_type: "linux",
      hw_vif_model: "e1000",
      // Nova's default non_inheritable_image_properties
      cache_in_nova: "true",
      bittorrent: "true",
      // never inherited
      img_signature: "c2ln",
      img_signature_hash_method: "SHA-256",
      cinder_encryption_key_id: "key-1",
      // os_glance namespace
      os_glance_importing_to_stores: "file",
      // SM_SKIP_KEYS
      block_device_mapping: "[]",
    },
  },
  projectId: "proj-1",
  userId: "user-1",
};

describe("snapshotImageMetadata (Nova's compute utils + _create_snapshot_metadata)", () => {
  it("inherits the base image's properties, minus the non-inheritable ones", () => {
    const m = snapshotImageMetadata(base, "qcow2", "snap-1");
    expect(m.properties).toEqual({
      hw_qemu_guest_agent: "true",
      os_admin_user: "cloud-user",
      hw_disk_bus: "scsi",
      architecture: "x86_64",
      os_type: "linux",
      hw_vif_model: "e1000",
      instance_uuid: base.uuid,
      image_type: "snapshot",
      base_image_ref: base.imageMeta.id,
      user_id: "user-1",
      image_location: "snapshot",
      image_state: "available",
      owner_id: "proj-1",
    });
  });

  it("raises min_disk to the flavor's root disk and keeps min_ram", () => {
    const m = snapshotImageMetadata(base, "qcow2", "snap-1");
    expect(m.minDisk).toBe(20);
    expect(m.minRam).toBe(512);
    const bigImage = snapshotImageMetadata({ ...base, imageMeta: { ...base.imageMeta, minDisk: 40 } }, "raw", "s");
    expect(bigImage.minDisk).toBe(40);
    // Nova: a vhd image takes the flavor's root disk as is.
    const vhd = snapshotImageMetadata(
      { ...base, imageMeta: { ...base.imageMeta, diskFormat: "vhd", minDisk: 40 } },
      "raw",
      "s",
    );
    expect(vhd.minDisk).toBe(20);
    const noRam = snapshotImageMetadata({ ...base, imageMeta: { properties: {} } }, "raw", "s");
    expect(noRam.minRam).toBeUndefined();
  });

  it("takes the operator's non-inheritable list instead of the default, never the fixed ones", () => {
    const m = snapshotImageMetadata(base, "qcow2", "snap-1", { nonInheritableProperties: ["hw_vif_model"] });
    expect(m.properties?.hw_vif_model).toBeUndefined();
    expect(m.properties?.cache_in_nova).toBe("true");
    expect(m.properties?.bittorrent).toBe("true");
    expect(m.properties?.img_signature).toBeUndefined();
    expect(m.properties?.os_glance_importing_to_stores).toBeUndefined();
  });

  it("lets the snapshot's own facts win over inherited ones", () => {
    const inst: Instance = {
      ...base,
      kernelId: "aki-1",
      imageMeta: {
        ...base.imageMeta,
        properties: { image_location: "elsewhere", owner_id: "someone", kernel_id: "aki-0", instance_uuid: "x" },
      },
    };
    const m = snapshotImageMetadata(inst, "qcow2", "s");
    expect(m.properties?.image_location).toBe("snapshot");
    expect(m.properties?.owner_id).toBe("proj-1");
    expect(m.properties?.kernel_id).toBe("aki-1");
    expect(m.properties?.instance_uuid).toBe(base.uuid);
  });

  it("truncates long values to 255 characters as Nova's system metadata does", () => {
    const inst: Instance = { ...base, imageMeta: { properties: { note: "x".repeat(300) } } };
    expect(snapshotImageMetadata(inst, "raw", "s").properties?.note).toHaveLength(255);
  });

  it("is stored by the in-memory image service with min_disk and min_ram", async () => {
    const images = new InMemoryImageService();
    const created = await images.create({ name: "snap-1" });
    const rec = await images.update(created.id, snapshotImageMetadata(base, "qcow2", "snap-1"), new Uint8Array([1]));
    expect(rec.minDisk).toBe(20);
    expect(rec.minRam).toBe(512);
    expect(rec.properties.hw_qemu_guest_agent).toBe("true");
    expect(rec.properties.cache_in_nova).toBeUndefined();
  });
});

describe("InMemoryImageService.hold (the kit's control of a slow image service)", () => {
  it("holds the chosen calls on one image until released; others and other images go on", async () => {
    const images = new InMemoryImageService();
    const a = await images.create({ name: "a" });
    const b = await images.create({ name: "b" });
    const hold = images.hold(a.id, ["update"]);
    expect((await images.get(a.id)).id).toBe(a.id);
    expect((await images.get(b.id)).id).toBe(b.id);
    let done = false;
    const upload = images.update(a.id, { status: "active" }, new Uint8Array([1, 2, 3])).then((r) => ((done = true), r));
    expect(await hold.reached).toBe("update");
    await new Promise((r) => setTimeout(r, 20));
    expect(done).toBe(false);
    expect(hold.waiting()).toBe(1);
    hold.release();
    expect((await upload).size).toBe(3);
    expect(hold.waiting()).toBe(0);
    // Released: later calls pass.
    expect((await images.update(a.id, {}, new Uint8Array([9]))).size).toBe(1);
  });

  it("ends a held call at once when its caller aborts, typed, changing nothing", async () => {
    const images = new InMemoryImageService();
    const a = await images.create({ name: "a" });
    const hold = images.hold(a.id);
    const abort = new AbortController();
    const upload = images.update(a.id, { status: "active" }, new Uint8Array([1]), { signal: abort.signal });
    expect(await hold.reached).toBe("update");
    abort.abort(new Error("stop"));
    await expect(upload).rejects.toMatchObject({ code: "VIRTKIT_OPERATION_ABORTED" });
    expect(hold.waiting()).toBe(0);
    hold.release();
    const rec = await images.get(a.id);
    expect(rec.status).toBe("queued");
    expect(rec.size).toBe(0);
  });

  it("keeps a call without a signal waiting until the release (what a driver that drops its signal leaves behind)", async () => {
    const images = new InMemoryImageService();
    const a = await images.create({ name: "a" });
    const hold = images.hold(a.id);
    const get = images.get(a.id);
    expect(await hold.reached).toBe("get");
    expect(hold.waiting()).toBe(1);
    hold.release();
    await get;
    expect(hold.waiting()).toBe(0);
  });
});
