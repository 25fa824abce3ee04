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
  /** Merged into the existing properties; `null` removes a key. */
  readonly properties?: Readonly<Record<string, string | null>>;
}

/** Image data as a buffer or a stream of chunks. */
export type ImageData = Uint8Array | AsyncIterable<Uint8Array>;

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
 * The metadata Nova's libvirt driver writes on an image snapshot (seed 004,
 * `_create_snapshot_metadata`): active, named, `image_location: snapshot`,
 * `image_state: available`, the owner, kernel/ramdisk ids, os_type, disk format and a bare
 * container unless the source image says otherwise. Every driver uses this so the kit can hold
 * them to one shape.
 */
export function snapshotImageMetadata(
  instance: Instance,
  imageFormat: DiskFormat,
  name: string,
): ImageUpdate & { readonly name: string } {
  const properties: Record<string, string> = {
    image_location: "snapshot",
    image_state: "available",
    owner_id: instance.projectId,
  };
  const kernelId = instance.kernelId ?? instance.imageMeta.properties.kernel_id;
  const ramdiskId = instance.ramdiskId ?? instance.imageMeta.properties.ramdisk_id;
  if (kernelId) properties.kernel_id = kernelId;
  if (ramdiskId) properties.ramdisk_id = ramdiskId;
  const osType = instance.osType ?? instance.imageMeta.properties.os_type;
  if (osType) properties.os_type = osType;
  return {
    name,
    status: "active",
    owner: instance.projectId,
    // Glance forces ami images to keep the ami disk format.
    diskFormat: instance.imageMeta.diskFormat === "ami" ? "ami" : imageFormat,
    containerFormat: instance.imageMeta.containerFormat ?? "bare",
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
export class InMemoryImageService implements ImageService {
  readonly #images = new Map<string, { record: ImageRecord; data: Uint8Array }>();

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
    return this.#entry(id).record;
  }

  async list(options?: OperationOptions): Promise<readonly ImageRecord[]> {
    throwIfAborted("image list", options?.signal);
    return [...this.#images.values()].map((e) => e.record);
  }

  async update(id: string, update: ImageUpdate, data?: ImageData, options?: OperationOptions): Promise<ImageRecord> {
    throwIfAborted("image update", options?.signal);
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
