/**
 * Image snapshots (Nova's `snapshot`): the instance's root disk copied into a standalone image and
 * streamed into the image service with Nova's metadata (core's `snapshotImageMetadata`).
 *
 * Live where the hypervisor allows, as seed 004 does (`live_snapshot` for a running QEMU guest),
 * cold only where it must. Nova's live path mirrors the disk with a block copy; libvirt 9 gives the
 * same point-in-time copy through an external disk-only snapshot, which this client can drive:
 * 1. `virDomainSnapshotCreateXML(DISK_ONLY | ATOMIC [| QUIESCE])`: the guest goes on writing to a
 *    new overlay, the root disk becomes its read-only backing file, frozen at that instant
 *    (filesystems quiesced through the guest agent when the image has one, as Nova does);
 * 2. the frozen disk is cloned into a standalone image (qemu-img convert flattens the chain);
 * 3. the snapshot is deleted: libvirt (>= 9.0) commits the overlay back into the disk and pivots,
 *    removing the overlay. The guest never stops.
 * Cold otherwise (Nova's `_prepare_domain_for_snapshot`): a paused guest is managed-saved so its
 * disk is quiescent, copied, then brought back as it was; a stopped one is copied as it is; and a
 * running guest is saved only where live is impossible (not QEMU, libvirt older than 9.0, a disk
 * that is not a file, instance snapshots present — libvirt 9 cannot merge an external snapshot
 * whose parent is internal — or libvirt refusing the external snapshot).
 */
import { randomUUID } from "node:crypto";
import { dirname, join } from "node:path";
import {
  PowerState,
  TaskState,
  VirtkitError,
  sleep,
  snapshotImageMetadata,
  type DiskFormat,
  type ImageService,
  type ImageSnapshotMethod,
  type Instance,
  type TaskStateCallback,
} from "@virtkit/core";
import { VirErrorNumber as E, type CallOptions, type DomainSnapshot, type StorageVol } from "@virtkit/libvirt-rpc";
import { buildVolumeXml, readDomainXml } from "./domain-xml.js";
import { libvirtMessage, virErrorCode } from "./error-map.js";
import type { Guest } from "./guest.js";
import type { InstanceStorage } from "./instance-storage.js";
import type { LibvirtApi } from "./libvirt-connection.js";
import { escapeXml } from "./xml.js";

/** `virDomainSnapshotCreateFlags` bits used here (libvirt-domain-snapshot.h). */
const SNAPSHOT_CREATE = { DISK_ONLY: 1 << 4, QUIESCE: 1 << 6, ATOMIC: 1 << 7 } as const;

/** libvirt deletes (commits) external disk snapshots from 9.0.0 on. */
const MIN_LIBVIRT_EXTERNAL_DELETE = 9_000_000;

/** What one image snapshot needs. */
export interface ImageSnapshotJob {
  readonly guest: Guest;
  readonly instance: Instance;
  readonly imageId: string;
  readonly images: ImageService;
  readonly storage: InstanceStorage;
  /** The driver's `<domain type>`: only QEMU guests (qemu, kvm) are snapshotted live. */
  readonly virtType: string;
  /** Operator switch (Nova's `workarounds.disable_libvirt_livesnapshot`): never live. */
  readonly disableLive?: boolean;
  /** Nova's `non_inheritable_image_properties`. */
  readonly nonInheritableProperties?: readonly string[];
  readonly onTaskState?: TaskStateCallback;
  /** Told which method is used, and why, before the copy. */
  readonly onMethod?: (method: ImageSnapshotMethod, reason: string) => void;
  /** Starts the guest again after a cold copy (paused when it was paused). */
  readonly restart: (paused: boolean) => Promise<void>;
  /** Ends the guest's console stream before QEMU is stopped for a cold copy. */
  readonly beforeStop?: () => Promise<void>;
  readonly log?: (level: "info" | "warn", message: string, fields?: Record<string, unknown>) => void;
}

/** What the root disk looks like, read from the live definition. */
interface RootDisk {
  readonly path: string;
  readonly format?: string;
  readonly target?: string;
}

/** Why a live snapshot is not possible for this guest, or `undefined` when it is. */
async function whyNotLive(
  job: ImageSnapshotJob,
  power: PowerState,
  root: RootDisk,
  call: CallOptions,
): Promise<string | undefined> {
  if (job.disableLive === true) return "live snapshots are disabled by the operator";
  if (job.virtType !== "qemu" && job.virtType !== "kvm") return `virt type ${job.virtType} has no live disk snapshot`;
  // Nova: a stopped guest has nothing to keep running, and a paused one is copied cold.
  if (power !== PowerState.RUNNING) return "the guest is not running";
  if (!root.path.startsWith("/") || root.target === undefined) return "the root disk is not a file";
  const [lib, snapshots] = await Promise.all([
    job.guest.api.connectGetLibVersion(call),
    job.guest.api.domainListAllSnapshots(job.guest.dom, 0, call),
  ]);
  const version = lib.major * 1_000_000 + lib.minor * 1_000 + lib.release;
  if (version < MIN_LIBVIRT_EXTERNAL_DELETE) return "libvirt older than 9.0 cannot merge an external snapshot back";
  // libvirt 9 refuses to delete (merge) an external snapshot whose parent is an internal one.
  if (snapshots.length > 0)
    return "the instance has instance snapshots: libvirt cannot merge a live snapshot past them";
  return undefined;
}

/** External disk-only snapshot XML: `target` moves to `overlay`, every other disk is left alone. */
function externalSnapshotXml(name: string, disks: readonly RootDisk[], root: RootDisk, overlay: string): string {
  const parts = disks.map((d) =>
    d.target === undefined
      ? ""
      : d.target === root.target
        ? `<disk name='${escapeXml(d.target)}' snapshot='external'><driver type='qcow2'/>` +
          `<source file='${escapeXml(overlay)}'/></disk>`
        : `<disk name='${escapeXml(d.target)}' snapshot='no'/>`,
  );
  return (
    `<domainsnapshot><name>${escapeXml(name)}</name>` +
    "<description>virtkit image snapshot in progress (removed when the copy is done)</description>" +
    `<disks>${parts.join("")}</disks></domainsnapshot>`
  );
}

/**
 * Freezes the root disk with an external snapshot; quiesced through the guest agent when the
 * guest has one, and without quiescing if the agent does not answer (Nova: unless the image
 * requires it, `os_require_quiesce`).
 */
async function freezeDisk(
  job: ImageSnapshotJob,
  xml: string,
  agent: boolean,
  call: CallOptions,
): Promise<DomainSnapshot> {
  const { api, dom } = job.guest;
  const flags = SNAPSHOT_CREATE.DISK_ONLY | SNAPSHOT_CREATE.ATOMIC;
  if (agent) {
    try {
      return await api.domainSnapshotCreateXml(dom, xml, flags | SNAPSHOT_CREATE.QUIESCE, call);
    } catch (err) {
      if (call.signal?.aborted) throw err;
      const required = job.instance.imageMeta.properties.os_require_quiesce;
      if (required === true || required === "true" || required === "yes") throw err;
      job.log?.("info", "snapshot without quiescing: the guest agent did not freeze the filesystems", {
        instance: job.instance.uuid,
        err: libvirtMessage(err),
      });
    }
  }
  return api.domainSnapshotCreateXml(dom, xml, flags, call);
}

/** Copies the root disk into the image `imageId`; the temporary copy is always removed. Returns the method used. */
export async function snapshotToImage(job: ImageSnapshotJob, call: CallOptions): Promise<ImageSnapshotMethod> {
  const { guest, instance, images } = job;
  const { api } = guest;
  const image = await images.get(job.imageId, call);
  const facts = readDomainXml(await api.domainGetXmlDesc(guest.dom, 0, call));
  const root = facts.disks[0];
  if (!root) throw new VirtkitError(`instance ${instance.uuid} has no disk to snapshot`);
  const format: DiskFormat = root.format === "raw" ? "raw" : "qcow2";
  const metadata = snapshotImageMetadata(instance, format, image.name, {
    ...(job.nonInheritableProperties !== undefined ? { nonInheritableProperties: job.nonInheritableProperties } : {}),
  });
  const before = await guest.status();
  await job.onTaskState?.(TaskState.IMAGE_PENDING_UPLOAD, TaskState.IMAGE_SNAPSHOT);

  const notLive = await whyNotLive(job, before.power, root, call);
  const { pool } = await job.storage.pool(api, call);
  const src = await api.storageVolLookupByPath(root.path, call);
  const info = await api.storageVolGetInfo(src, call);
  const copyName = `${instance.uuid}_snapshot_${randomUUID().slice(0, 8)}`;
  // Cloning flattens a qcow2 overlay into a standalone image (qemu-img convert).
  const clone = () =>
    api.storageVolCreateXmlFrom(
      pool,
      buildVolumeXml({ name: copyName, capacityBytes: info.capacity, format }),
      src,
      0,
      call,
    );
  let copy: StorageVol | undefined;
  let method: ImageSnapshotMethod = notLive === undefined ? "live" : "cold";
  try {
    if (notLive === undefined) {
      copy = await liveCopy(job, facts.disks, root, facts.hasGuestAgentChannel, clone, call);
      if (copy === undefined) method = "cold";
    }
    if (copy === undefined) {
      const reason = notLive ?? "libvirt refused the external snapshot";
      job.onMethod?.("cold", reason);
      // Nova saves a running or paused guest so its disk is quiescent; a stopped one is copied as is.
      const save = before.power === PowerState.RUNNING || before.power === PowerState.PAUSED;
      if (save) {
        await job.beforeStop?.();
        await api.domainManagedSave(guest.dom, 0, call);
      }
      try {
        copy = await clone();
      } finally {
        if (save) await job.restart(before.power === PowerState.PAUSED);
      }
    }
    await job.onTaskState?.(TaskState.IMAGE_UPLOADING, TaskState.IMAGE_PENDING_UPLOAD);
    const stream = await api.storageVolDownload(copy, {}, call);
    try {
      await images.update(job.imageId, metadata, stream, call);
    } catch (err) {
      // Destroyed without the error: the error is thrown here, and a stream destroyed with one emits
      // it, which crashes the process when nobody listens (an image service that never began to
      // read it, as one whose upload was aborted while it waited).
      stream.destroy();
      throw err;
    }
  } finally {
    if (copy) await api.storageVolDelete(copy, 0, { timeoutMs: 30_000 }).catch(() => undefined);
  }
  return method;
}

/**
 * The live copy: freeze, clone, merge back. `undefined` when libvirt refuses the external
 * snapshot as unsupported (the caller then goes cold, as Nova does on VIR_ERR_CONFIG_UNSUPPORTED).
 */
async function liveCopy(
  job: ImageSnapshotJob,
  disks: readonly RootDisk[],
  root: RootDisk,
  agent: boolean,
  clone: () => Promise<StorageVol>,
  call: CallOptions,
): Promise<StorageVol | undefined> {
  const { api } = job.guest;
  const name = `virtkit-image-${randomUUID()}`;
  const overlay = join(dirname(root.path), `${job.instance.uuid}_snapshot_overlay_${name.slice(-8)}.qcow2`);
  let snap: DomainSnapshot;
  try {
    snap = await freezeDisk(job, externalSnapshotXml(name, disks, root, overlay), agent, call);
  } catch (err) {
    const code = virErrorCode(err);
    if (
      code === E.VIR_ERR_CONFIG_UNSUPPORTED ||
      code === E.VIR_ERR_OPERATION_UNSUPPORTED ||
      code === E.VIR_ERR_NO_SUPPORT
    ) {
      job.log?.("warn", "live snapshot refused by libvirt, taking a cold one", { err: libvirtMessage(err) });
      return undefined;
    }
    throw err;
  }
  job.onMethod?.("live", "external disk snapshot: the guest keeps running");
  try {
    return await clone();
  } finally {
    // Merge the overlay back whatever happened: with its own deadline, the caller's may be spent.
    await mergeBack(api, snap, job, overlay);
  }
}

/** Merge attempts before the guest is left on the overlay, and the pause before each retry. */
const MERGE_RETRY_DELAYS_MS = [1_000, 4_000] as const;
/** The whole merge, retries included: the caller's deadline may be spent, this one is its own. */
const MERGE_DEADLINE_MS = 300_000;

async function mergeBack(api: LibvirtApi, snap: DomainSnapshot, job: ImageSnapshotJob, overlay: string): Promise<void> {
  const deadline = Date.now() + MERGE_DEADLINE_MS;
  for (let attempt = 0; ; attempt++) {
    try {
      await api.domainSnapshotDelete(snap, 0, { timeoutMs: Math.max(1_000, deadline - Date.now()) });
      return;
    } catch (err) {
      const code = virErrorCode(err);
      // Gone already: merged by an earlier attempt whose reply was lost, or the domain was removed.
      if (code === E.VIR_ERR_NO_DOMAIN_SNAPSHOT || code === E.VIR_ERR_NO_DOMAIN) return;
      const pause = MERGE_RETRY_DELAYS_MS[attempt];
      // A busy daemon (another job holds the domain, the commit timed out) often lets a second try through.
      if (pause !== undefined && Date.now() + pause < deadline) {
        job.log?.("info", "merging the live snapshot's overlay back failed; trying again", {
          instance: job.instance.uuid,
          attempt: attempt + 1,
          err: libvirtMessage(err),
        });
        await sleep(pause);
        continue;
      }
      // The guest runs on the overlay, its data whole; the chain is one longer until an operator
      // deletes the snapshot, and destroy removes the overlay with the instance. Loud, and the
      // snapshot itself still succeeded.
      job.log?.("warn", "could not merge the live snapshot's overlay back; the guest runs on it", {
        instance: job.instance.uuid,
        snapshot: snap.name,
        overlay,
        err: libvirtMessage(err),
      });
      return;
    }
  }
}
