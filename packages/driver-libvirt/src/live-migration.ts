/**
 * Live migration for the libvirt driver (Nova's `nova/virt/libvirt/migration.py` plus the driver's
 * check/pre/post/rollback steps): pre-checks, the shared-storage probe through the storage API,
 * PERFORM3_PARAMS with Nova's flags, progress, abort and force-complete.
 */
import { randomUUID } from "node:crypto";
import {
  InvalidStateError,
  LiveMigrationFailedError,
  MigrationPreCheckError,
  PowerState,
  VirtkitError,
  powerStateName,
  sleep,
  validateUuid,
  withDeadline,
  type HostInfo,
  type Instance,
  type LiveMigrationOptions,
  type MigrateData,
  type MigrationHostFacts,
  type MigrationPlan,
  type MigrationPolicy,
  type OperationOptions,
} from "@virtkit/core";
import { DomainJobType, Flags, type CallOptions, type TypedParam } from "@virtkit/libvirt-rpc";
import { buildVolumeXml, readDomainXml } from "./domain-xml.js";
import { libvirtMessage, mapLibvirtError, type ErrorContext } from "./error-map.js";
import type { Guest } from "./guest.js";
import type { InstanceStorage } from "./instance-storage.js";
import type { LibvirtApi } from "./libvirt-connection.js";
import { VIR_MIGRATE, planMigration } from "./migration-flags.js";
import { liveMigrationUri, migrateUri } from "./migration-uri.js";

/** A disk a block migration copies: created empty on the destination first. */
interface BlockDisk {
  readonly name: string;
  readonly capacityBytes: number;
  readonly format: string;
}

/** The block migration disks the source listed in the migrate data (validated: it crossed hosts). */
function blockDisksOf(data: MigrateData): BlockDisk[] {
  const raw = data.extra.blockDisks;
  if (!data.policy.block || typeof raw !== "string") return [];
  let list: unknown;
  try {
    list = JSON.parse(raw);
  } catch {
    return [];
  }
  if (!Array.isArray(list)) return [];
  return list.filter(
    (d): d is BlockDisk =>
      typeof d === "object" &&
      d !== null &&
      typeof (d as BlockDisk).name === "string" &&
      /^[A-Za-z0-9._-]+$/.test((d as BlockDisk).name) &&
      Number.isSafeInteger((d as BlockDisk).capacityBytes) &&
      (d as BlockDisk).capacityBytes >= 0 &&
      typeof (d as BlockDisk).format === "string" &&
      /^[a-z0-9]+$/.test((d as BlockDisk).format),
  );
}

/** What the migration steps need from the driver. */
export interface MigrationHost {
  readonly virtType: string;
  readonly liveMigrationScheme: string | undefined;
  readonly liveMigrationUriTemplate: string | undefined;
  /** Nova's `live_migration_inbound_addr`: the address other hosts send migration data to. */
  readonly liveMigrationInboundAddr: string | undefined;
  readonly storage: InstanceStorage;
  /** The compute host name given to `initHost` ("" before). */
  hostName(): string;
  /** Refuses what the driver does not declare (typed `UnsupportedOperationError`). */
  requireMigration(policy?: MigrationPolicy): void;
  /** Runs a step under the caller's deadline with errors mapped (the driver's `#run`). */
  run<T>(
    operation: string,
    instance: Instance | undefined,
    options: OperationOptions | undefined,
    fn: (api: LibvirtApi, call: CallOptions) => Promise<T>,
  ): Promise<T>;
  api(signal: AbortSignal): Promise<LibvirtApi>;
  guest(api: LibvirtApi, instance: Instance, call: CallOptions): Promise<Guest>;
  getHostInfo(call: CallOptions): Promise<HostInfo>;
  /** Destroys, undefines and (with `disks`) deletes the volumes of an instance, tolerantly. */
  remove(api: LibvirtApi, instance: Instance, call: CallOptions, disks: boolean): Promise<void>;
  hostContext(instance: Instance, operation: string): ErrorContext;
  log(level: "info" | "warn", message: string, fields?: Record<string, unknown>): void;
  readonly longTimeoutMs: number;
}

/** The migration steps of one driver. */
export class LiveMigrations {
  /** VIR_MIGRATE_* bitmask of each migration this driver is running, by instance uuid. */
  readonly #active = new Map<string, number>();

  constructor(private readonly host: MigrationHost) {}

  #facts(facts?: MigrationHostFacts): MigrationHostFacts {
    const qemu = this.host.virtType === "qemu" || this.host.virtType === "kvm";
    return { virtType: this.host.virtType, postCopySupported: qemu, ...facts };
  }

  plan(policy: MigrationPolicy, facts?: MigrationHostFacts): MigrationPlan {
    this.host.requireMigration(policy);
    return planMigration(policy, this.#facts(facts));
  }

  async checkDestination(
    instance: Instance,
    sourceHost: HostInfo,
    policy: MigrationPolicy,
    options?: OperationOptions,
  ): Promise<MigrateData> {
    const plan = this.plan(policy);
    const h = this.host;
    return h.run("check can live migrate destination", instance, options, async (api, call) => {
      const dest = await h.getHostInfo(call);
      if (dest.hostname === sourceHost.hostname) {
        throw new MigrationPreCheckError(`the destination ${dest.hostname} is the source host`);
      }
      if (instance.flavor.vcpus > dest.vcpus) {
        throw new MigrationPreCheckError(
          `${dest.hostname} has ${dest.vcpus} vCPUs, the flavor needs ${instance.flavor.vcpus}`,
        );
      }
      if (instance.flavor.memoryMb > dest.memoryMb) {
        throw new MigrationPreCheckError(
          `${dest.hostname} has ${dest.memoryMb} MiB of memory, the flavor needs ${instance.flavor.memoryMb}`,
        );
      }
      if (sourceHost.cpuArch !== dest.cpuArch) {
        throw new MigrationPreCheckError(`CPU architecture ${sourceHost.cpuArch} cannot move to ${dest.cpuArch}`);
      }
      // Nova's shared-storage probe, through the storage API: the source looks for this marker.
      const { pool } = await h.storage.pool(api, call);
      const marker = `.virtkit-shared-${randomUUID()}`;
      await api.storageVolCreateXml(pool, buildVolumeXml({ name: marker, capacityBytes: 0, format: "raw" }), 0, call);
      const name = h.hostName() || dest.hostname;
      const destUri = liveMigrationUri(name, {
        virtType: h.virtType,
        ...(h.liveMigrationScheme ? { scheme: h.liveMigrationScheme } : {}),
        ...(h.liveMigrationUriTemplate ? { template: h.liveMigrationUriTemplate } : {}),
      });
      return {
        sourceHost: sourceHost.hostname,
        destHost: dest.hostname,
        policy,
        plan,
        extra: {
          destUri,
          // Nova's target_connect_addr: only when the destination names its inbound address.
          ...(h.liveMigrationInboundAddr ? { targetConnectAddr: h.liveMigrationInboundAddr } : {}),
          sharedMarker: marker,
          destPool: pool.name,
          virtType: h.virtType,
        },
      };
    });
  }

  async checkSource(instance: Instance, data: MigrateData, options?: OperationOptions): Promise<MigrateData> {
    this.host.requireMigration();
    const h = this.host;
    return h.run("check can live migrate source", instance, options, async (api, call) => {
      const guest = await h.guest(api, instance, call);
      const status = await guest.status();
      if (status.power !== PowerState.RUNNING && status.power !== PowerState.PAUSED) {
        throw new MigrationPreCheckError(
          `instance ${instance.uuid} is ${powerStateName(status.power)}, live migration needs it running`,
        );
      }
      // The marker was written by the destination: only a refresh lets this pool see it.
      const { pool } = await h.storage.pool(api, call);
      await api.storagePoolRefresh(pool, 0, call).catch(() => undefined);
      const marker = String(data.extra.sharedMarker ?? "");
      const shared = marker !== "" && (await h.storage.find(api, marker, call)) !== null;
      if (data.policy.block && shared) {
        throw new MigrationPreCheckError("block migration requested but the hosts share storage");
      }
      if (!data.policy.block && !shared) {
        throw new MigrationPreCheckError("the hosts do not share storage: use block migration");
      }
      // Block migration copies into disks that must already exist on the destination (libvirt will
      // not pre-create them for NON_SHARED_INC): say which, with their size and format.
      const blockDisks = data.policy.block ? await this.#localDisks(api, guest, pool.name, call) : [];
      return {
        ...data,
        extra: {
          ...data.extra,
          sharedStorage: shared,
          ...(data.policy.block ? { blockDisks: JSON.stringify(blockDisks) } : {}),
        },
      };
    });
  }

  /** The instance's disks that live in this host's pool (what a block migration copies). */
  async #localDisks(api: LibvirtApi, guest: Guest, pool: string, call: CallOptions): Promise<BlockDisk[]> {
    const out: BlockDisk[] = [];
    for (const disk of readDomainXml(await api.domainGetXmlDesc(guest.dom, 0, call)).disks) {
      const vol = await api.storageVolLookupByPath(disk.path, call).catch(() => undefined);
      if (!vol || vol.pool !== pool) continue;
      const info = await api.storageVolGetInfo(vol, call);
      out.push({ name: vol.name, capacityBytes: Number(info.capacity), format: disk.format ?? "qcow2" });
    }
    return out;
  }

  async #removeMarker(api: LibvirtApi, data: MigrateData, call: CallOptions): Promise<void> {
    const marker = data.extra.sharedMarker;
    if (typeof marker !== "string" || marker === "") return;
    await this.host.storage.delete(api, marker, call).catch(() => undefined);
  }

  async pre(instance: Instance, data: MigrateData, options?: OperationOptions): Promise<MigrateData> {
    this.host.requireMigration();
    return this.host.run("pre live migration", instance, options, async (api, call) => {
      await this.#removeMarker(api, data, call);
      // Nova's pre_live_migration: the disks a block migration copies into, created empty here.
      for (const disk of blockDisksOf(data)) {
        await this.host.storage.createVolume(api, disk.name, disk.capacityBytes, disk.format, call);
      }
      return data;
    });
  }

  async migrate(instance: Instance, data: MigrateData, options?: LiveMigrationOptions): Promise<void> {
    const h = this.host;
    const fail = (reason: string, cause?: unknown): LiveMigrationFailedError =>
      new LiveMigrationFailedError(instance.uuid, reason, cause === undefined ? undefined : { cause });
    h.requireMigration();
    validateUuid(instance.uuid, "instance.uuid");
    return withDeadline("live migration", options, Math.max(h.longTimeoutMs, 3_600_000), async (signal) => {
      const call: CallOptions = { signal };
      let api: LibvirtApi;
      let guest: Guest;
      try {
        api = await h.api(signal);
        guest = await h.guest(api, instance, call);
      } catch (err) {
        if (err instanceof VirtkitError) throw err;
        throw mapLibvirtError(err, h.hostContext(instance, "live migration"));
      }
      const dom = guest.dom;
      const bitmask = data.plan.bitmask ?? this.plan(data.policy).bitmask ?? 0;
      const params: TypedParam[] = [];
      // Nova's _live_migration_operation: a migrate URI only toward a configured inbound address and
      // never for a tunnelled migration (libvirt refuses migrate_uri there); otherwise libvirt picks.
      const target = data.extra.targetConnectAddr;
      const mUri =
        typeof target === "string" && (bitmask & VIR_MIGRATE.TUNNELLED) === 0
          ? migrateUri(target, h.virtType)
          : undefined;
      if (mUri !== undefined) params.push({ field: "migrate_uri", type: "string", value: mUri });
      if (data.policy.bandwidthMiBps > 0) {
        params.push({ field: "bandwidth", type: "ullong", value: BigInt(data.policy.bandwidthMiBps) });
      }
      if ((bitmask & VIR_MIGRATE.PARALLEL) !== 0) {
        params.push({ field: "parallel.connections", type: "int", value: data.policy.parallelConnections });
      }
      try {
        const persistXml = await api.domainGetXmlDesc(
          dom,
          Flags.XML_INACTIVE | Flags.XML_SECURE | Flags.XML_MIGRATABLE,
          call,
        );
        params.push({ field: "persistent_xml", type: "string", value: persistXml });
      } catch {
        // Without it libvirt persists the live definition, which is fine too.
      }
      const destUri = typeof data.extra.destUri === "string" ? data.extra.destUri : null;
      const started = Date.now();
      let done = false;
      this.#active.set(instance.uuid, bitmask);
      const onAbort = () => void api.domainAbortJob(dom, { timeoutMs: 10_000 }).catch(() => undefined);
      signal.addEventListener("abort", onAbort, { once: true });
      const monitor = (async () => {
        let downtimeSet = false;
        while (!done) {
          await sleep(500, signal, "migration monitor").catch(() => undefined);
          if (done || signal.aborted) return;
          try {
            if (!downtimeSet && data.policy.maxDowntimeMs > 0) {
              await api.domainMigrateSetMaxDowntime(dom, data.policy.maxDowntimeMs, 0, call);
              downtimeSet = true;
            }
            const job = await api.domainGetJobInfo(dom, call);
            if (job.type === DomainJobType.NONE) continue;
            options?.onProgress?.({
              dataTotalBytes: Number(job.dataTotal),
              dataProcessedBytes: Number(job.dataProcessed),
              dataRemainingBytes: Number(job.dataRemaining),
              elapsedMs: Date.now() - started,
            });
          } catch {
            // Progress is best effort; the perform call reports the outcome.
          }
        }
      })();
      try {
        await api.domainMigratePerform3Params(dom, destUri, params, new Uint8Array(0), bitmask, { signal });
      } catch (err) {
        throw fail(libvirtMessage(err), err);
      } finally {
        done = true;
        this.#active.delete(instance.uuid);
        signal.removeEventListener("abort", onAbort);
        await monitor;
      }
      // The guest now runs on the destination from copied disks: the source's copies are stale
      // (Nova's source-side cleanup with destroy_disks). Best effort: the move itself succeeded.
      for (const disk of blockDisksOf(data)) {
        await h.storage.delete(api, disk.name, { timeoutMs: 30_000 }).catch((err: unknown) =>
          h.log("warn", "could not remove the source's copy of a migrated disk", {
            disk: disk.name,
            err: libvirtMessage(err),
          }),
        );
      }
    });
  }

  async postAtDestination(instance: Instance, options?: OperationOptions): Promise<void> {
    return this.host.run("post live migration at destination", instance, options, async (api, call) => {
      await this.host.guest(api, instance, call);
    });
  }

  async rollbackAtDestination(instance: Instance, data: MigrateData, options?: OperationOptions): Promise<void> {
    return this.host.run("rollback live migration at destination", instance, options, async (api, call) => {
      await this.#removeMarker(api, data, call);
      // Copied disks belong to this host only after a block migration.
      await this.host.remove(api, instance, call, data.policy.block);
    });
  }

  async #activeJob(api: LibvirtApi, instance: Instance, operation: string, call: CallOptions): Promise<Guest> {
    const guest = await this.host.guest(api, instance, call);
    const job = await api.domainGetJobInfo(guest.dom, call);
    if (job.type === DomainJobType.NONE) {
      const status = await guest.status();
      throw new InvalidStateError(instance.uuid, operation, `${powerStateName(status.power)} (no migration running)`);
    }
    return guest;
  }

  async abort(instance: Instance, options?: OperationOptions): Promise<void> {
    this.host.requireMigration();
    return this.host.run("abort live migration", instance, options, async (api, call) => {
      const guest = await this.#activeJob(api, instance, "abort live migration", call);
      await api.domainAbortJob(guest.dom, call);
    });
  }

  async forceComplete(instance: Instance, options?: OperationOptions): Promise<void> {
    this.host.requireMigration();
    return this.host.run("force complete live migration", instance, options, async (api, call) => {
      const guest = await this.#activeJob(api, instance, "force complete live migration", call);
      // Nova: switch to post-copy when the plan enabled it, else pause the guest so the copy converges.
      const bitmask = this.#active.get(instance.uuid) ?? 0;
      if ((bitmask & VIR_MIGRATE.POSTCOPY) !== 0) {
        try {
          await api.domainMigrateStartPostCopy(guest.dom, 0, call);
          this.host.log("info", "live migration switched to post-copy", { instance: instance.uuid });
          return;
        } catch (err) {
          if (call.signal?.aborted) throw err;
          this.host.log("warn", "post-copy switch refused, pausing instead", { err: libvirtMessage(err) });
        }
      }
      await api.domainSuspend(guest.dom, call);
    });
  }
}
