// Live image snapshots against the REAL private libvirtd with real QEMU (TCG): a running guest
// stays running the whole time (no pause, no save: polled state and lifecycle events agree), the
// image is a standalone qcow2 (`qemu-img info`), the overlay is merged back and removed. A paused
// guest is snapshotted cold, as Nova does. Skipped unless VIRTKIT_LIBVIRT_SOCKET is set.

import { execFileSync } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  InMemoryImageService,
  PowerState,
  type ImageSnapshotMethod,
  type Instance,
  type LifecycleEvent,
} from "@virtkit/core";
import { LibvirtConnection } from "@virtkit/libvirt-rpc";
import { removeScratchPool } from "./testing/scratch-pool.js";
import { afterAll, describe, expect, it } from "vitest";
import { readDomainXml } from "./domain-xml.js";
import { LibvirtDriver } from "./libvirt-driver.js";

const SOCKET = process.env.VIRTKIT_LIBVIRT_SOCKET;
const REASON = "VIRTKIT_LIBVIRT_SOCKET is not set (run `scripts/libvirtd.sh start && eval $(scripts/libvirtd.sh env)`)";

function qemuImgInfo(file: string): { format: string; "backing-filename"?: string; "virtual-size": number } {
  return JSON.parse(execFileSync("qemu-img", ["info", "--output=json", file], { encoding: "utf8" })) as {
    format: string;
    "backing-filename"?: string;
    "virtual-size": number;
  };
}

describe.skipIf(!SOCKET)(`live image snapshots on real QEMU${SOCKET ? "" : ` (skipped: ${REASON})`}`, () => {
  const dir = mkdtempSync(join(tmpdir(), "vk-snap-pool-"));
  const pool = `vk-snap-${process.pid}`;
  afterAll(() => removeScratchPool(SOCKET, pool, dir));

  it("keeps a running guest running, writes a standalone qcow2, merges the overlay back; cold where it must be", async () => {
    const images = new InMemoryImageService();
    const d = new LibvirtDriver({
      uri: "qemu:///system",
      virtType: "qemu",
      pool,
      poolPath: dir,
      imageService: images,
      connectOptions: { socketPath: SOCKET },
      pollIntervalMs: 20,
    });
    await d.initHost("host-snap");
    const uuid = randomUUID();
    const i: Instance = {
      uuid,
      name: `vk-live-${uuid.slice(0, 8)}`,
      projectId: "proj-1",
      userId: "user-1",
      flavor: { name: "m1.nano", memoryMb: 64, vcpus: 1, rootGb: 1 },
      imageMeta: {
        id: "img-live",
        diskFormat: "qcow2",
        containerFormat: "bare",
        properties: { os_type: "linux", hw_disk_bus: "virtio", os_admin_user: "root" },
      },
    };
    const events: LifecycleEvent[] = [];
    const off = d.registerEventListener((e) => {
      if (e.instanceUuid === uuid) events.push(e);
    });
    await d.spawn({ instance: i });
    try {
      expect((await d.getInfo(i)).state).toBe(PowerState.RUNNING);
      const diskBefore = readDomainXml(await domainXml(uuid)).disks[0]?.path;
      expect(diskBefore).toBeDefined();
      events.length = 0;

      // Poll the power state all through the snapshot: a cold one would show SHUTDOWN/PAUSED.
      const seen = new Set<PowerState>();
      let polling = true;
      const poller = (async () => {
        while (polling) {
          seen.add((await d.getInfo(i)).state);
          await new Promise((r) => setTimeout(r, 25));
        }
      })();
      const image = await images.create({ name: "live-1" });
      const methods: [ImageSnapshotMethod, string][] = [];
      try {
        await d.snapshot(i, image.id, { onSnapshotMethod: (m, why) => void methods.push([m, why]) });
      } finally {
        polling = false;
        await poller;
      }
      expect(methods.map(([m]) => m)).toEqual(["live"]);
      expect([...seen]).toEqual([PowerState.RUNNING]);
      // No lifecycle transition at all: the guest was never paused, saved or restarted.
      await new Promise((r) => setTimeout(r, 300));
      expect(events.map((e) => e.transition)).toEqual([]);

      // The guest is back on its own disk; no overlay and no snapshot are left.
      const after = readDomainXml(await domainXml(uuid));
      expect(after.disks[0]?.path).toBe(diskBefore);
      expect(readdirSync(dir).filter((f) => f.includes("_snapshot_"))).toEqual([]);
      expect(await d.listInstanceSnapshots(i)).toEqual([]);

      // A valid, standalone qcow2 of the disk's size, with the inherited properties.
      const rec = await images.get(image.id);
      expect(rec).toMatchObject({ status: "active", diskFormat: "qcow2" });
      expect(rec.properties).toMatchObject({ os_admin_user: "root", hw_disk_bus: "virtio", image_type: "snapshot" });
      const file = join(dir, "..", `vk-snap-check-${uuid}.qcow2`);
      writeFileSync(file, await images.download(image.id));
      try {
        const info = qemuImgInfo(file);
        expect(info.format).toBe("qcow2");
        expect(info["backing-filename"]).toBeUndefined();
        expect(info["virtual-size"]).toBe(2 ** 30);
        execFileSync("qemu-img", ["check", file]);
      } finally {
        rmSync(file, { force: true });
      }

      // With an instance snapshot (internal) present libvirt 9 could not merge the overlay back:
      // cold, and the guest comes back running.
      const internal = await d.createInstanceSnapshot(i, "internal-1");
      const image3 = await images.create({ name: "cold-internal" });
      const methods3: [ImageSnapshotMethod, string][] = [];
      await d.snapshot(i, image3.id, { onSnapshotMethod: (m, why) => void methods3.push([m, why]) });
      expect(methods3).toEqual([["cold", expect.stringContaining("instance snapshots")]]);
      expect((await d.getInfo(i)).state).toBe(PowerState.RUNNING);
      await d.deleteInstanceSnapshot(i, internal.id);

      // A paused guest is copied cold (Nova), and stays paused.
      await d.pause(i);
      const image2 = await images.create({ name: "cold-1" });
      const methods2: ImageSnapshotMethod[] = [];
      await d.snapshot(i, image2.id, { onSnapshotMethod: (m) => void methods2.push(m) });
      expect(methods2).toEqual(["cold"]);
      expect((await d.getInfo(i)).state).toBe(PowerState.PAUSED);
    } finally {
      off();
      await d.destroy(i);
      await d.cleanupHost("host-snap");
    }
  }, 180_000);
});

async function domainXml(uuid: string): Promise<string> {
  await using conn = await LibvirtConnection.open("qemu:///system", { socketPath: SOCKET });
  return await conn.domainGetXmlDesc(await conn.domainLookupByUuid(uuid), 0);
}
