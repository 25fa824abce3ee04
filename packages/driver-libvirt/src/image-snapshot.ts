/**
 * Image snapshots (Nova's `snapshot`): the instance's root disk copied into a standalone image and
 * streamed into the image service with Nova's metadata. Cold, as Nova's `_prepare_domain_for_snapshot`
 * does where a live copy is not possible: a running or paused guest is managed-saved so its disk is
 * quiescent, copied, then brought back as it was.
 */
import { randomUUID } from "node:crypto";
import {
  PowerState,
  TaskState,
  VirtkitError,
  snapshotImageMetadata,
  type DiskFormat,
  type ImageService,
  type Instance,
  type TaskStateCallback,
} from "@virtkit/core";
import type { StorageVol } from "@virtkit/libvirt-rpc";
import { buildVolumeXml, readDomainXml } from "./domain-xml.js";
import type { Guest } from "./guest.js";
import type { InstanceStorage } from "./instance-storage.js";

/** What one image snapshot needs. */
export interface ImageSnapshotJob {
  readonly guest: Guest;
  readonly instance: Instance;
  readonly imageId: string;
  readonly images: ImageService;
  readonly storage: InstanceStorage;
  readonly onTaskState?: TaskStateCallback;
  /** Starts the guest again after the copy (paused when it was paused). */
  readonly restart: (paused: boolean) => Promise<void>;
}

/** Copies the root disk into the image `imageId`; the temporary copy is always removed. */
export async function snapshotToImage(job: ImageSnapshotJob): Promise<void> {
  const { guest, instance, images } = job;
  const { api, call } = guest;
  const image = await images.get(job.imageId, call);
  const root = readDomainXml(await api.domainGetXmlDesc(guest.dom, 0, call)).disks[0];
  if (!root) throw new VirtkitError(`instance ${instance.uuid} has no disk to snapshot`);
  const format: DiskFormat = root.format === "raw" ? "raw" : "qcow2";
  const metadata = snapshotImageMetadata(instance, format, image.name);
  const before = await guest.status();
  await job.onTaskState?.(TaskState.IMAGE_PENDING_UPLOAD, TaskState.IMAGE_SNAPSHOT);

  const cold = before.power === PowerState.RUNNING || before.power === PowerState.PAUSED;
  const { pool } = await job.storage.pool(api, call);
  const src = await api.storageVolLookupByPath(root.path, call);
  const copyName = `${instance.uuid}_snapshot_${randomUUID().slice(0, 8)}`;
  let copy: StorageVol | undefined;
  try {
    if (cold) await api.domainManagedSave(guest.dom, 0, call);
    try {
      // Cloning flattens a qcow2 overlay into a standalone image (qemu-img convert).
      const info = await api.storageVolGetInfo(src, call);
      copy = await api.storageVolCreateXmlFrom(
        pool,
        buildVolumeXml({ name: copyName, capacityBytes: info.capacity, format }),
        src,
        0,
        call,
      );
    } finally {
      if (cold) await job.restart(before.power === PowerState.PAUSED);
    }
    await job.onTaskState?.(TaskState.IMAGE_UPLOADING, TaskState.IMAGE_PENDING_UPLOAD);
    const stream = await api.storageVolDownload(copy, {}, call);
    try {
      await images.update(job.imageId, metadata, stream, call);
    } catch (err) {
      stream.destroy(err instanceof Error ? err : undefined);
      throw err;
    }
  } finally {
    if (copy) await api.storageVolDelete(copy, 0, { timeoutMs: 30_000 }).catch(() => undefined);
  }
}
