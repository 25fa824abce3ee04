/**
 * Instance disks through libvirt's storage API: the pool (found or created once per connection,
 * safe against other drivers creating it at the same moment) and the volumes named after an
 * instance. Nova keeps the same concern in its imagebackend; here it is one place so the wire work
 * of a spawn or destroy is easy to see and to keep small.
 */
import { basename, dirname, resolve } from "node:path";
import {
  InsufficientStorageError,
  StorageUnavailableError,
  VirtkitError,
  type ImageMeta,
  type Instance,
  raceSignal,
  sleep,
} from "@virtkit/core";
import {
  VirErrorNumber as E,
  isNoStoragePool,
  isNoStorageVol,
  type CallOptions,
  type StoragePool,
  type StorageVol,
} from "@virtkit/libvirt-rpc";
import { buildDirPoolXml, buildVolumeXml, readPoolFacts, readVolumeTarget, type DiskSpec } from "./domain-xml.js";
import { libvirtMessage, virErrorCode } from "./error-map.js";
import type { LibvirtApi } from "./libvirt-connection.js";

const GiB = 1024 ** 3;
/** virStoragePoolState: VIR_STORAGE_POOL_RUNNING. */
const POOL_RUNNING = 2;
/** Pool types whose volume key is the volume's path (`<target>/<name>`), so no lookup is needed. */
const FILE_POOL_TYPES = new Set(["dir", "fs", "netfs"]);
/** Pause between pool refreshes refused while a volume of the pool is being built. */
const REFRESH_RETRY_MS = 500;
/** How long a refresh is waited for at most, whatever the call's own deadline (a cleanup may have none). */
const REFRESH_WAIT_MAX_MS = 120_000;

/** Suffix of the rescue disk's volume. */
export const RESCUE_SUFFIX = ".rescue";

/** An active pool and what this connection learnt about it once. */
export interface ActivePool {
  readonly pool: StoragePool;
  /** `<target><path>` when the pool is file based (volume path = `${dir}/${name}`). */
  readonly dir: string | undefined;
}

/** Options of {@link InstanceStorage}. */
export interface InstanceStorageOptions {
  /** The pool's name (default `default`; the test hypervisor falls back to `default-pool`). */
  readonly pool?: string;
  /** Directory of the pool when it must be created (default `/var/lib/libvirt/images`). */
  readonly poolPath?: string;
  readonly virtType: string;
  /** Deadline of the shared pool preparation (callers may give up earlier with their own signal). */
  readonly timeoutMs: number;
  readonly log: (level: "info" | "warn" | "debug", message: string, fields?: Record<string, unknown>) => void;
}

/** Names of the volumes the driver creates for an instance. */
export function instanceVolumeNames(uuid: string): { disk: string; rescue: string } {
  return { disk: `${uuid}_disk`, rescue: `${uuid}_disk${RESCUE_SUFFIX}` };
}

/** Pools, volumes and their errors for one driver. */
export class InstanceStorage {
  readonly #options: InstanceStorageOptions;
  /** The active pool, valid for the connection generation it was found on. */
  #active: { readonly pool: ActivePool; readonly api: LibvirtApi; readonly generation: number } | undefined;
  /** The preparation in flight: concurrent spawns share it (single flight). */
  #preparing: Promise<ActivePool> | undefined;

  constructor(options: InstanceStorageOptions) {
    this.#options = options;
  }

  /** The pool's configured name. */
  get poolName(): string {
    return this.#options.pool ?? "default";
  }

  /** Forget the cached pool (it was found inactive or gone); the next call prepares it again. */
  invalidate(): void {
    this.#active = undefined;
  }

  /**
   * The active pool: looked up, defined, built and started when needed, once per connection.
   * Tolerates another driver (or process) doing the same at the same moment: "already exists"
   * means look it up again, "already active" is success. Only an active pool is cached.
   */
  async pool(api: LibvirtApi, call: CallOptions): Promise<ActivePool> {
    const generation = api.reconnectCount ?? 0;
    const cached = this.#active;
    if (cached && cached.api === api && cached.generation === generation) return cached.pool;
    this.#preparing ??= this.#prepare(api).then(
      (pool) => {
        this.#active = { pool, api, generation };
        this.#preparing = undefined;
        return pool;
      },
      (err: unknown) => {
        this.#preparing = undefined;
        throw err;
      },
    );
    return raceSignal(this.#preparing, call.signal);
  }

  async #prepare(api: LibvirtApi): Promise<ActivePool> {
    // Shared by every waiting caller, so it runs under its own deadline, not one caller's signal.
    const call: CallOptions = { timeoutMs: this.#options.timeoutMs };
    const name = this.poolName;
    for (let attempt = 0; ; attempt++) {
      let pool = await this.#lookupPool(api, name, call);
      if (!pool && this.#options.virtType === "test") {
        // The test hypervisor has its own built-in pool and cannot create directories.
        pool = await this.#lookupPool(api, "default-pool", call);
        if (!pool) throw new StorageUnavailableError(name, "no such pool on the test hypervisor");
      }
      if (!pool) {
        const dir = this.#options.poolPath ?? "/var/lib/libvirt/images";
        try {
          pool = await api.storagePoolDefineXml(buildDirPoolXml(name, dir), 0, call);
          this.#options.log("info", "defined storage pool", { pool: name, dir });
        } catch (err) {
          // Someone else defined it between our look-up and define: look it up again.
          if (attempt < 3) continue;
          throw new StorageUnavailableError(name, `cannot define it: ${libvirtMessage(err)}`, { cause: err });
        }
        // Creates the directory; failing here is fine when it already exists, start tells.
        await api.storagePoolBuild(pool, 0, call).catch(() => undefined);
      }
      await this.#activate(api, pool, call);
      return { pool, dir: await this.#fileDir(api, pool, call) };
    }
  }

  async #lookupPool(api: LibvirtApi, name: string, call: CallOptions): Promise<StoragePool | undefined> {
    try {
      return await api.storagePoolLookupByName(name, call);
    } catch (err) {
      if (isNoStoragePool(err)) return undefined;
      throw err;
    }
  }

  async #activate(api: LibvirtApi, pool: StoragePool, call: CallOptions): Promise<void> {
    if ((await api.storagePoolGetInfo(pool, call)).state === POOL_RUNNING) return;
    try {
      await api.storagePoolCreate(pool, 0, call);
      this.#options.log("info", "started storage pool", { pool: pool.name });
    } catch (err) {
      // "already active": another creator won the race, which is what we wanted.
      if ((await api.storagePoolGetInfo(pool, call).catch(() => undefined))?.state === POOL_RUNNING) return;
      throw new StorageUnavailableError(pool.name, `cannot start it: ${libvirtMessage(err)}`, { cause: err });
    }
  }

  async #fileDir(api: LibvirtApi, pool: StoragePool, call: CallOptions): Promise<string | undefined> {
    const facts = readPoolFacts(await api.storagePoolGetXmlDesc(pool, 0, call));
    return facts.type !== undefined && FILE_POOL_TYPES.has(facts.type) ? facts.path : undefined;
  }

  /** A handle for a volume of the pool by name, without a round trip where the pool is file based. */
  async #volume(api: LibvirtApi, active: ActivePool, name: string, call: CallOptions): Promise<StorageVol | null> {
    // The daemon finds a volume by pool and name; the key is informational.
    if (active.dir !== undefined) return { pool: active.pool.name, name, key: `${active.dir}/${name}` };
    try {
      return await api.storageVolLookupByName(active.pool, name, call);
    } catch (err) {
      if (isNoStorageVol(err)) return null;
      throw err;
    }
  }

  /** Looks a volume up (a real round trip: for volumes that may or may not be there). */
  async find(api: LibvirtApi, name: string, call: CallOptions): Promise<StorageVol | null> {
    const active = await this.pool(api, call);
    try {
      return await api.storageVolLookupByName(active.pool, name, call);
    } catch (err) {
      if (isNoStorageVol(err)) return null;
      throw this.mapError(err);
    }
  }

  /** Deletes a volume by name; a missing one is already what we want. */
  async delete(api: LibvirtApi, name: string, call: CallOptions): Promise<void> {
    const active = await this.pool(api, call);
    const vol = await this.#volume(api, active, name, call);
    if (!vol) return;
    try {
      await api.storageVolDelete(vol, 0, call);
    } catch (err) {
      if (!isNoStorageVol(err)) throw this.mapError(err);
    }
  }

  /**
   * Deletes the pool's volumes at `paths` (files libvirt created in the pool's directory outside
   * the pool API, such as a snapshot overlay). The pool learns of such files only on a refresh;
   * paths outside a file pool's directory are not the driver's and are left alone.
   */
  async deleteFiles(api: LibvirtApi, paths: readonly string[], call: CallOptions): Promise<void> {
    const active = await this.pool(api, call);
    if (active.dir === undefined) return;
    const dir = resolve(active.dir);
    const names = paths.filter((p) => dirname(resolve(p)) === dir).map((p) => basename(p));
    if (names.length === 0) return;
    await this.#refresh(api, active.pool, call);
    await Promise.all(names.map((name) => this.delete(api, name, call)));
  }

  /**
   * Deletes every volume of the pool whose name starts with `prefix` (an instance's `<uuid>_`), for
   * when the definition that names its files cannot be read.
   */
  async deleteByPrefix(api: LibvirtApi, prefix: string, call: CallOptions): Promise<void> {
    const active = await this.pool(api, call);
    await this.#refresh(api, active.pool, call);
    let vols: StorageVol[];
    try {
      vols = await api.storagePoolListAllVolumes(active.pool, 0, call);
    } catch (err) {
      throw this.mapError(err);
    }
    await Promise.all(vols.filter((v) => v.name.startsWith(prefix)).map((v) => this.delete(api, v.name, call)));
  }

  /**
   * A pool refresh, waited for: libvirt refuses one while a volume of the pool is being built
   * ("has asynchronous jobs running": another instance's disk, an image snapshot's clone), which
   * ends on its own; asked again every REFRESH_RETRY_MS until then or the call's deadline.
   */
  async #refresh(api: LibvirtApi, pool: StoragePool, call: CallOptions): Promise<void> {
    const giveUpAt = Date.now() + REFRESH_WAIT_MAX_MS;
    for (;;) {
      try {
        await api.storagePoolRefresh(pool, 0, call);
        return;
      } catch (err) {
        if (!/asynchronous jobs running/i.test(libvirtMessage(err)) || Date.now() >= giveUpAt) throw this.mapError(err);
        await sleep(REFRESH_RETRY_MS, call.signal, "pool refresh");
      }
    }
  }

  /** The base image `image-<id>` cached in the pool (Nova's _base directory), if there is one. */
  async baseImage(
    api: LibvirtApi,
    imageMeta: ImageMeta,
    call: CallOptions,
  ): Promise<{ path: string; format: string; capacity: number } | undefined> {
    if (imageMeta.id === undefined) return undefined;
    const base = await this.find(api, `image-${imageMeta.id}`, call);
    if (!base) return undefined;
    const [path, info] = await Promise.all([api.storageVolGetPath(base, call), api.storageVolGetInfo(base, call)]);
    return { path, format: imageMeta.diskFormat === "raw" ? "raw" : "qcow2", capacity: Number(info.capacity) };
  }

  /**
   * Creates `<uuid>_disk<suffix>`: qcow2 over the image's base volume when the pool has one. With
   * `replaceLeftover`, a volume of that name is replaced once; without, its existence is a
   * `LeftoverVolumeError` (the caller decides whose it is: spawn boots a disk a destroy kept).
   */
  async createDisk(
    api: LibvirtApi,
    instance: Instance,
    imageMeta: ImageMeta,
    suffix: string,
    call: CallOptions,
    base?: { path: string; format: string; capacity: number },
    replaceLeftover = true,
  ): Promise<DiskSpec> {
    const active = await this.pool(api, call);
    const name = `${instance.uuid}_disk${suffix}`;
    const rootBytes = instance.flavor.rootGb > 0 ? instance.flavor.rootGb * GiB : Math.max(imageMeta.size ?? 0, GiB);
    const xml = buildVolumeXml({
      name,
      capacityBytes: Math.max(rootBytes, base?.capacity ?? 0),
      format: "qcow2",
      ...(base ? { backingPath: base.path, backingFormat: base.format } : {}),
    });
    let vol: StorageVol;
    try {
      vol = await api.storageVolCreateXml(active.pool, xml, 0, call);
    } catch (err) {
      if (!isVolumeExists(err)) throw this.mapError(err);
      if (!replaceLeftover) throw new LeftoverVolumeError(name, { cause: err });
      this.#options.log("info", "replacing a leftover disk volume", { volume: name });
      await this.delete(api, name, call);
      try {
        vol = await api.storageVolCreateXml(active.pool, xml, 0, call);
      } catch (again) {
        throw this.mapError(again);
      }
    }
    const path = active.dir !== undefined && vol.key.startsWith("/") ? vol.key : await api.storageVolGetPath(vol, call);
    return { path, format: "qcow2" };
  }

  /**
   * The disk `<uuid>_disk<suffix>` that exists already (a destroy with `destroyDisks: false` kept
   * it), as the domain XML needs it; undefined when there is none.
   */
  async existingDisk(api: LibvirtApi, instance: Instance, suffix: string, call: CallOptions): Promise<DiskSpec | undefined> {
    const vol = await this.find(api, `${instance.uuid}_disk${suffix}`, call);
    if (!vol) return undefined;
    const target = readVolumeTarget(await api.storageVolGetXmlDesc(vol, 0, call));
    return { path: target.path ?? (await api.storageVolGetPath(vol, call)), format: target.format ?? "qcow2" };
  }

  /**
   * Creates an empty volume `name` of `capacityBytes` in `format` (block migration's destination
   * disk, Nova's pre_live_migration); a leftover of that name is replaced once.
   */
  async createVolume(
    api: LibvirtApi,
    name: string,
    capacityBytes: number,
    format: string,
    call: CallOptions,
  ): Promise<void> {
    const active = await this.pool(api, call);
    const xml = buildVolumeXml({ name, capacityBytes, format });
    try {
      await api.storageVolCreateXml(active.pool, xml, 0, call);
    } catch (err) {
      if (!isVolumeExists(err)) throw this.mapError(err);
      await this.delete(api, name, call);
      try {
        await api.storageVolCreateXml(active.pool, xml, 0, call);
      } catch (again) {
        throw this.mapError(again);
      }
    }
  }

  /**
   * Storage failures that say what they are. An inactive pool also drops the cache, so the next
   * call finds and starts it again.
   */
  mapError(err: unknown): unknown {
    if (err instanceof VirtkitError) return err;
    const code = virErrorCode(err);
    if (code === undefined) return err;
    const message = libvirtMessage(err);
    const pool = this.poolName;
    if (
      code === E.VIR_ERR_NO_STORAGE_POOL ||
      (code === E.VIR_ERR_OPERATION_INVALID && /storage pool .* is not active/i.test(message))
    ) {
      this.invalidate();
      return new StorageUnavailableError(pool, message, { cause: err });
    }
    if (/(not enough|no) (free )?space|insufficient space/i.test(message)) {
      return new InsufficientStorageError(pool, message, { cause: err });
    }
    return err;
  }
}

/**
 * A volume of that name exists already. libvirt's storage driver says STORAGE_VOL_EXIST; its test
 * driver (test:///default) says "storage vol already exists" under OPERATION_FAILED (older
 * releases: INVALID_STORAGE_VOL).
 */
function isVolumeExists(err: unknown): boolean {
  const code = virErrorCode(err);
  if (code === E.VIR_ERR_STORAGE_VOL_EXIST) return true;
  return (
    (code === E.VIR_ERR_OPERATION_FAILED || code === E.VIR_ERR_INVALID_STORAGE_VOL) &&
    libvirtMessage(err).includes("storage vol already exists")
  );
}

/** A volume the driver was about to create exists already (internal: never leaves the driver). */
export class LeftoverVolumeError extends VirtkitError {
  constructor(
    readonly volume: string,
    options?: { cause?: unknown },
  ) {
    super(`volume ${volume} exists already`, options);
  }
}
