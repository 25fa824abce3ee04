import { DEFAULT_MIGRATION_POLICY, MigrationPreCheckError, type Instance, type MigrationPolicy } from "@virtkit/core";
import type { StoragePool, StorageVol } from "@virtkit/libvirt-rpc";
import { describe, expect, it } from "vitest";
import { FakeLibvirt } from "./testing/fake-libvirt.js";
import { twoHosts } from "./testing/two-hosts.js";

/** The in-memory libvirt, keeping each volume's XML (so overlays keep their backing store). */
class VolumeXmlLibvirt extends FakeLibvirt {
  readonly volumeXml = new Map<string, string>();
  override async storageVolCreateXml(pool: StoragePool, xml: string): Promise<StorageVol> {
    const vol = await super.storageVolCreateXml(pool, xml);
    this.volumeXml.set(vol.name, xml);
    return vol;
  }
  override async storageVolGetXmlDesc(vol: StorageVol): Promise<string> {
    return this.volumeXml.get(vol.name) ?? (await super.storageVolGetXmlDesc(vol));
  }
  override async storageVolDelete(vol: StorageVol): Promise<void> {
    await super.storageVolDelete(vol);
    this.volumeXml.delete(vol.name);
  }
}

const BASE = "image-11111111-2222-4333-8444-555555555555";

const inst = (): Instance => ({
  uuid: "7d1c2b9e-5a4d-4c3b-8a2f-1e0d9c8b7a60",
  name: "vm-1",
  projectId: "proj",
  flavor: { name: "m1", memoryMb: 64, vcpus: 1, rootGb: 1 },
  imageMeta: { id: BASE.slice("image-".length), diskFormat: "qcow2", properties: {} },
});

async function hosts(destHasBase: boolean) {
  const { src, dest, srcFake, dstFake } = await twoHosts(new VolumeXmlLibvirt(), new VolumeXmlLibvirt());
  const pool = srcFake.pool;
  const baseXml = `<volume><name>${BASE}</name><capacity unit='bytes'>${2 ** 30}</capacity></volume>`;
  await srcFake.storageVolCreateXml(pool, baseXml);
  if (destHasBase) await dstFake.storageVolCreateXml(dstFake.pool, baseXml);
  return { src, dest, srcFake, dstFake };
}

const block: MigrationPolicy = { ...DEFAULT_MIGRATION_POLICY, block: true };

describe("block migration of a disk that is an overlay of a base image", () => {
  it("creates the destination disk over the destination's copy of the base, then copies only the overlay", async () => {
    const { src, dest, srcFake, dstFake } = await hosts(true);
    const i = inst();
    await src.spawn({ instance: i });
    expect(srcFake.volumeXml.get(`${i.uuid}_disk`)).toContain(`/pool/${BASE}`);
    const data = await dest.checkCanLiveMigrateDestination(i, { ...(await src.getHostInfo()), hostname: "src" }, block);
    const checked = await src.checkCanLiveMigrateSource(i, data);
    expect(JSON.parse(String(checked.extra.blockDisks))[0]).toMatchObject({
      name: `${i.uuid}_disk`,
      backing: { name: BASE, format: "qcow2" },
    });
    const pre = await dest.preLiveMigration(i, checked);
    const destDisk = dstFake.volumeXml.get(`${i.uuid}_disk`) ?? "";
    expect(destDisk).toContain(`<backingStore><path>/pool/${BASE}</path><format type='qcow2'/></backingStore>`);
    await src.liveMigration(i, pre);
    const perform = srcFake.calls.find((c) => c.method === "domainMigratePerform3Params");
    expect((perform?.args[3] as number) & 128).toBe(128); // NON_SHARED_INC: the overlay only
  });

  it("refuses before anything moves when the destination lacks the base image", async () => {
    const { src, dest, dstFake } = await hosts(false);
    const i = inst();
    await src.spawn({ instance: i });
    const data = await dest.checkCanLiveMigrateDestination(i, { ...(await src.getHostInfo()), hostname: "src" }, block);
    const checked = await src.checkCanLiveMigrateSource(i, data);
    await expect(dest.preLiveMigration(i, checked)).rejects.toBeInstanceOf(MigrationPreCheckError);
    expect(dstFake.volumes.has(`${i.uuid}_disk`)).toBe(false);
  });

  it("drops NON_SHARED_INC when no disk is local (nothing to copy)", async () => {
    const { src, dest, srcFake } = await hosts(true);
    const i = inst();
    await src.spawn({ instance: i });
    const data = await dest.checkCanLiveMigrateDestination(i, { ...(await src.getHostInfo()), hostname: "src" }, block);
    const checked = await src.checkCanLiveMigrateSource(i, data);
    // As if every disk were on storage the hosts share: the source listed none.
    await src.liveMigration(i, { ...checked, extra: { ...checked.extra, blockDisks: "[]" } });
    const perform = srcFake.calls.find((c) => c.method === "domainMigratePerform3Params");
    expect((perform?.args[3] as number) & 128).toBe(0);
    const params = perform?.args[2] as { field: string }[];
    expect(params.some((p) => p.field === "migrate_disks")).toBe(false);
  });
});

describe("shared storage libvirt cannot recognise (trustSharedStorage)", () => {
  async function migrateShared(trust: boolean, probedShared: boolean): Promise<number> {
    const { src, dest, srcFake } = await twoHosts(new VolumeXmlLibvirt(), new VolumeXmlLibvirt(), { trustSharedStorage: trust });
    const i = { ...inst(), imageMeta: { id: "plain", diskFormat: "qcow2", properties: {} } } as Instance;
    await src.spawn({ instance: i });
    const data = await dest.checkCanLiveMigrateDestination(
      i,
      { ...(await src.getHostInfo()), hostname: "src" },
      DEFAULT_MIGRATION_POLICY,
    );
    // What checkCanLiveMigrateSource records when the destination's marker is (not) in this pool.
    await src.liveMigration(i, { ...data, extra: { ...data.extra, sharedStorage: probedShared } });
    const perform = srcFake.calls.find((c) => c.method === "domainMigratePerform3Params");
    return perform?.args[3] as number;
  }

  it("passes VIR_MIGRATE_UNSAFE only with the operator's option and the probe's proof", async () => {
    expect((await migrateShared(true, true)) & 512).toBe(512);
    expect((await migrateShared(true, false)) & 512).toBe(0);
    expect((await migrateShared(false, true)) & 512).toBe(0);
  });
});
