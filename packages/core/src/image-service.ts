import { randomUUID, createHash } from "node:crypto";
import { ImageNotFoundError, InvalidInputError } from "./errors.js";
import type { ContainerFormat, DiskFormat, Instance } from "./model.js";
import type { OperationOptions } from "./operation.js";
import { throwIfAborted } from "./operation.js";

/** Glance's image statuses. */
export type ImageStatus = "queued" | "saving" | "active" | "killed" | "deleted";

/** An image as the image service holds it. */
export interface ImageRecord {
  readonly id: string;
  readonly name: string;
  readonly status: ImageStatus;
  readonly diskFormat?: DiskFormat;
  readonly containerFormat?: ContainerFormat;
  /** Owner project. */
  readonly owner?: string;
  /** Minimum disk in GiB an instance booted from this image needs (Glance's `min_disk`). */
  readonly minDisk?: number;
  /** Minimum RAM in MiB (Glance's `min_ram`). */
  readonly minRam?: number;
  readonly properties: Readonly<Record<string, string>>;
  /** Bytes of image data uploaded (0 until data arrives). */
  readonly size: number;
  /** sha256 of the data, once uploaded. */
  readonly checksum?: string;
  readonly createdAt: string;
  readonly updatedAt: string;
}

/** What a caller may set when creating or updating an image. */
export interface ImageUpdate {
  readonly name?: string;
  readonly status?: ImageStatus;
  readonly diskFormat?: DiskFormat;
  readonly containerFormat?: ContainerFormat;
  readonly owner?: string;
  readonly minDisk?: number;
  readonly minRam?: number;
  /** Merged into the existing properties; `null` removes a key. */
  readonly properties?: Readonly<Record<string, string | null>>;
}

/** Image data as a buffer or a stream of chunks. */
export type ImageData = Uint8Array | AsyncIterable<Uint8Array>;

/**
 * The image service's calls on one image, held by the environment (see
 * {@link ImageServiceControls.hold}).
 */
export interface ImageHold {
  /** Resolves with the method of the first call held. */
  readonly reached: Promise<HeldImageMethod>;
  /** Held calls still waiting: neither released nor ended by their caller's signal. */
  waiting(): number;
  /** Lets the held calls (and every later one) go on. */
  release(): void;
}

/**
 * Environment-side control of an image service, for the conformance kit: it shows what a driver
 * does when an upload or a download is cut short while the image service is still working.
 */
export interface ImageServiceControls {
  /**
   * Holds the calls on `imageId` (`methods`, default all: get, update with its data, download)
   * until `release`. A held call whose caller's signal aborts ends at once with that abort,
   * changing nothing, as a real image service's request would; a call without a signal waits for
   * `release`.
   */
  hold(imageId: string, methods?: readonly HeldImageMethod[]): ImageHold;
}

/** The image service's calls on one image that {@link ImageServiceControls.hold} can hold. */
export type HeldImageMethod = "get" | "update" | "download";

/**
 * Where image snapshots go: Nova's image API (Glance) reduced to what drivers use. The compute
 * service creates the record (`queued`); the driver's `snapshot` updates metadata and uploads data.
 */
export interface ImageService {
  create(update: ImageUpdate & { readonly name: string }, options?: OperationOptions): Promise<ImageRecord>;
  get(id: string, options?: OperationOptions): Promise<ImageRecord>;
  list(options?: OperationOptions): Promise<readonly ImageRecord[]>;
  /** Updates metadata and, with `data`, replaces the image's content. */
  update(id: string, update: ImageUpdate, data?: ImageData, options?: OperationOptions): Promise<ImageRecord>;
  /** The image's content. */
  download(id: string, options?: OperationOptions): Promise<Uint8Array>;
  delete(id: string, options?: OperationOptions): Promise<void>;
}

/**
 * Image properties a snapshot never inherits, whatever the configuration (Nova's
 * `NON_INHERITABLE_IMAGE_PROPERTIES` in `nova/compute/utils.py`): encryption keys and signatures
 * belong to the base image's bytes, not to a copy of the disk.
 */
export const NEVER_INHERITED_IMAGE_PROPERTIES: readonly string[] = Object.freeze([
  "cinder_encryption_key_id",
  "cinder_encryption_key_deletion_policy",
  "img_signature",
  "img_signature_hash_method",
  "img_signature_key_type",
  "img_signature_certificate_uuid",
]);

/** Property prefixes reserved for other services (Nova's `NON_INHERITABLE_IMAGE_NAMESPACES`). */
export const NEVER_INHERITED_IMAGE_NAMESPACES: readonly string[] = Object.freeze(["os_glance"]);

/** Nova's default `[DEFAULT]/non_inheritable_image_properties`. */
export const DEFAULT_NON_INHERITABLE_IMAGE_PROPERTIES: readonly string[] = Object.freeze([
  "cache_in_nova",
  "bittorrent",
]);

/** Keys Nova never copies into system metadata (`SM_SKIP_KEYS`): large structured data. */
const SKIPPED_IMAGE_PROPERTIES = new Set([
  "mappings",
  "block_device_mapping",
  "img_mappings",
  "img_block_device_mapping",
]);

/** Options of {@link snapshotImageMetadata}. */
export interface SnapshotMetadataOptions {
  /**
   * Base-image properties the snapshot does not inherit (Nova's `non_inheritable_image_properties`;
   * default {@link DEFAULT_NON_INHERITABLE_IMAGE_PROPERTIES}). {@link NEVER_INHERITED_IMAGE_PROPERTIES}
   * and the `os_glance*` namespace are dropped whatever this says.
   */
  readonly nonInheritableProperties?: readonly string[];
}

function inheritedProperties(instance: Instance, options: SnapshotMetadataOptions): Record<string, string> {
  const drop = new Set([
    ...(options.nonInheritableProperties ?? DEFAULT_NON_INHERITABLE_IMAGE_PROPERTIES),
    ...NEVER_INHERITED_IMAGE_PROPERTIES,
  ]);
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(instance.imageMeta.properties)) {
    if (value === undefined || SKIPPED_IMAGE_PROPERTIES.has(key) || drop.has(key)) continue;
    if (NEVER_INHERITED_IMAGE_NAMESPACES.some((ns) => key.startsWith(ns))) continue;
    // Glance keeps strings; Nova's system metadata truncates each value to 255 characters.
    out[key] = String(value).slice(0, 255);
  }
  return out;
}

/**
 * The metadata of an image snapshot, as Nova builds it in two steps:
 * - inherited from the base image (`nova/compute/utils.py` `initialize_instance_snapshot_metadata`
 *   over `get_image_from_system_metadata`): every base-image property (`hw_qemu_guest_agent`,
 *   `os_admin_user`, `hw_disk_bus`, `architecture`, ...) minus the non-inheritable ones, `min_ram`,
 *   and `min_disk` raised to the flavor's root disk (`get_system_metadata_from_image`; a vhd
 *   image takes the flavor's); plus `instance_uuid`, `user_id`, `image_type: snapshot` and
 *   `base_image_ref` (`create_image`, compute API);
 * - written by the driver on upload (seed 004, `_create_snapshot_metadata`): active, named,
 *   `image_location: snapshot`, `image_state: available`, the owner, kernel/ramdisk ids, os_type,
 *   the disk format and a bare container unless the source image says otherwise.
 * Every driver uses this, so the kit holds them all to one shape.
 */
export function snapshotImageMetadata(
  instance: Instance,
  imageFormat: DiskFormat,
  name: string,
  options: SnapshotMetadataOptions = {},
): ImageUpdate & { readonly name: string } {
  const meta = instance.imageMeta;
  const properties: Record<string, string> = {
    ...inheritedProperties(instance, options),
    instance_uuid: instance.uuid,
    image_type: "snapshot",
    ...(meta.id ? { base_image_ref: meta.id } : {}),
    ...(instance.userId ? { user_id: instance.userId } : {}),
    image_location: "snapshot",
    image_state: "available",
    owner_id: instance.projectId,
  };
  const kernelId = instance.kernelId ?? meta.properties.kernel_id;
  const ramdiskId = instance.ramdiskId ?? meta.properties.ramdisk_id;
  if (kernelId) properties.kernel_id = kernelId;
  if (ramdiskId) properties.ramdisk_id = ramdiskId;
  const osType = instance.osType ?? meta.properties.os_type;
  if (osType) properties.os_type = osType;
  const rootGb = instance.flavor.rootGb;
  const minDisk = meta.diskFormat === "vhd" ? rootGb : Math.max(meta.minDisk ?? 0, rootGb);
  return {
    name,
    status: "active",
    owner: instance.projectId,
    // Glance forces ami images to keep the ami disk format.
    diskFormat: meta.diskFormat === "ami" ? "ami" : imageFormat,
    containerFormat: meta.containerFormat ?? "bare",
    minDisk,
    ...(meta.minRam !== undefined ? { minRam: meta.minRam } : {}),
    properties,
  };
}

async function collect(data: ImageData, signal: AbortSignal | undefined): Promise<Uint8Array> {
  if (data instanceof Uint8Array) return data;
  const chunks: Uint8Array[] = [];
  for await (const chunk of data) {
    throwIfAborted("image upload", signal);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

/** An in-memory image service: the default for tests, examples and the fake driver. */
export class InMemoryImageService implements ImageService, ImageServiceControls {
  readonly #images = new Map<string, { record: ImageRecord; data: Uint8Array }>();
  readonly #holds = new Map<string, HeldCalls>();

  hold(imageId: string, methods: readonly HeldImageMethod[] = ["get", "update", "download"]): ImageHold {
    const held = new HeldCalls(methods);
    this.#holds.set(imageId, held);
    return {
      reached: held.reached,
      waiting: () => held.waiting,
      release: () => {
        if (this.#holds.get(imageId) === held) this.#holds.delete(imageId);
        held.release();
      },
    };
  }

  /** Waits while `id` is held; the caller's abort ends the wait typed. */
  async #passHold(method: HeldImageMethod, id: string, signal: AbortSignal | undefined): Promise<void> {
    const held = this.#holds.get(id);
    if (held) await held.pass(method, signal);
    throwIfAborted(`image ${method}`, signal);
  }

  async create(update: ImageUpdate & { readonly name: string }, options?: OperationOptions): Promise<ImageRecord> {
    throwIfAborted("image create", options?.signal);
    if (typeof update.name !== "string" || update.name.length === 0 || update.name.length > 255) {
      throw new InvalidInputError("image.name", "must be 1 to 255 characters");
    }
    const now = new Date().toISOString();
    const record: ImageRecord = {
      id: randomUUID(),
      name: update.name,
      status: update.status ?? "queued",
      diskFormat: update.diskFormat,
      containerFormat: update.containerFormat,
      owner: update.owner,
      properties: mergeProperties({}, update.properties),
      size: 0,
      createdAt: now,
      updatedAt: now,
    };
    this.#images.set(record.id, { record, data: new Uint8Array(0) });
    return record;
  }

  async get(id: string, options?: OperationOptions): Promise<ImageRecord> {
    throwIfAborted("image get", options?.signal);
    await this.#passHold("get", id, options?.signal);
    return this.#entry(id).record;
  }

  async list(options?: OperationOptions): Promise<readonly ImageRecord[]> {
    throwIfAborted("image list", options?.signal);
    return [...this.#images.values()].map((e) => e.record);
  }

  async update(id: string, update: ImageUpdate, data?: ImageData, options?: OperationOptions): Promise<ImageRecord> {
    throwIfAborted("image update", options?.signal);
    await this.#passHold("update", id, options?.signal);
    const entry = this.#entry(id);
    const bytes = data === undefined ? entry.data : await collect(data, options?.signal);
    const record: ImageRecord = {
      ...entry.record,
      ...definedOnly(update),
      properties: mergeProperties(entry.record.properties, update.properties),
      size: bytes.byteLength,
      checksum: data === undefined ? entry.record.checksum : createHash("sha256").update(bytes).digest("hex"),
      updatedAt: new Date().toISOString(),
    };
    this.#images.set(id, { record, data: bytes });
    return record;
  }

  async download(id: string, options?: OperationOptions): Promise<Uint8Array> {
    throwIfAborted("image download", options?.signal);
    await this.#passHold("download", id, options?.signal);
    return this.#entry(id).data;
  }

  async delete(id: string, options?: OperationOptions): Promise<void> {
    throwIfAborted("image delete", options?.signal);
    this.#entry(id);
    this.#images.delete(id);
  }

  #entry(id: string): { record: ImageRecord; data: Uint8Array } {
    const e = this.#images.get(id);
    if (!e) throw new ImageNotFoundError(id);
    return e;
  }
}

/** The calls held on one image: each waits for the release or its own caller's abort. */
class HeldCalls {
  waiting = 0;
  readonly reached: Promise<HeldImageMethod>;
  #reach!: (method: HeldImageMethod) => void;
  #released = false;
  readonly #wakers = new Set<() => void>();

  constructor(readonly methods: readonly HeldImageMethod[]) {
    this.reached = new Promise<HeldImageMethod>((resolve) => (this.#reach = resolve));
  }

  release(): void {
    this.#released = true;
    for (const wake of [...this.#wakers]) wake();
  }

  pass(method: HeldImageMethod, signal: AbortSignal | undefined): Promise<void> {
    if (this.#released || !this.methods.includes(method)) return Promise.resolve();
    this.#reach(method);
    if (signal?.aborted) return Promise.resolve();
    this.waiting++;
    return new Promise<void>((resolve) => {
      const wake = (): void => {
        this.#wakers.delete(wake);
        signal?.removeEventListener("abort", wake);
        this.waiting--;
        resolve();
      };
      this.#wakers.add(wake);
      signal?.addEventListener("abort", wake, { once: true });
    });
  }
}

function definedOnly(update: ImageUpdate): Partial<ImageRecord> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(update)) if (v !== undefined && k !== "properties") out[k] = v;
  return out as Partial<ImageRecord>;
}

function mergeProperties(
  base: Readonly<Record<string, string>>,
  patch: Readonly<Record<string, string | null>> | undefined,
): Record<string, string> {
  const out: Record<string, string> = { ...base };
  for (const [k, v] of Object.entries(patch ?? {})) {
    if (v === null) delete out[k];
    else out[k] = v;
  }
  return out;
}
