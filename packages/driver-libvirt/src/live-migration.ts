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
  onAbort,
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
import {
  DomainJobType,
  DomainPausedReason,
  DomainState,
  Flags,
  isNoDomain,
  type CallOptions,
  type Domain,
  type TypedParam,
} from "@virtkit/libvirt-rpc";
import { buildVolumeXml, readDomainXml, readVolumeBacking, retargetDomainXml } from "./domain-xml.js";
import { libvirtMessage, mapLibvirtError, type ErrorContext } from "./error-map.js";
import { Guest, type DomainStatus } from "./guest.js";
import type { InstanceStorage } from "./instance-storage.js";
import type { LibvirtApi } from "./libvirt-connection.js";
import { VIR_MIGRATE, effectiveMigrationFlags, migrateFlagNames, planMigration } from "./migration-flags.js";
import { liveMigrationUri, migrateUri } from "./migration-uri.js";

/** A disk a block migration copies: created empty on the destination first. */
interface BlockDisk {
  /** Volume name, the same in both hosts' pools. */
  readonly name: string;
  readonly capacityBytes: number;
  readonly format: string;
  /** Its target device in the guest (`vda`): what `migrate_disks` lists. */
  readonly target?: string;
  /** Its path on the source host: the destination XML replaces it when the destination's differs. */
  readonly path?: string;
  /**
   * The volume (in the same pool, by name) the disk is a qcow2 overlay of: a block migration copies
   * only the overlay (NON_SHARED_INC), so the destination must have it too.
   */
  readonly backing?: { readonly name: string; readonly format: string };
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
      /^[a-z0-9]+$/.test((d as BlockDisk).format) &&
      ((d as BlockDisk).target === undefined || /^[a-z]{2,4}[a-z]{1,3}$/.test(String((d as BlockDisk).target))) &&
      ((d as BlockDisk).path === undefined || isSafePath((d as BlockDisk).path)) &&
      ((d as BlockDisk).backing === undefined || isBacking((d as BlockDisk).backing)),
  );
}

function isBacking(b: unknown): boolean {
  const v = b as BlockDisk["backing"];
  return (
    typeof v === "object" &&
    v !== null &&
    typeof v.name === "string" &&
    /^[A-Za-z0-9._-]+$/.test(v.name) &&
    typeof v.format === "string" &&
    /^[a-z0-9]+$/.test(v.format)
  );
}

function isSafePath(p: unknown): boolean {
  return typeof p === "string" && p.startsWith("/") && !p.includes("\0") && !p.split("/").includes("..");
}

/** Where the destination put each copied disk (volume name to path), as pre-live-migration recorded it. */
function destDiskPathsOf(data: MigrateData): Map<string, string> {
  const raw = data.extra.destDiskPaths;
  const out = new Map<string, string>();
  if (typeof raw !== "string") return out;
  try {
    const parsed: unknown = JSON.parse(raw);
    if (typeof parsed !== "object" || parsed === null) return out;
    for (const [name, p] of Object.entries(parsed)) if (isSafePath(p)) out.set(name, p as string);
  } catch {
    // Malformed: no retargeting, the paths stay as they are.
  }
  return out;
}

/** libvirt's version encoding of `major.minor.release` (undefined when it does not parse). */
function encodeVersion(version: string): number | undefined {
  const m = /^(\d+)\.(\d+)\.(\d+)$/.exec(version);
  return m ? Number(m[1]) * 1_000_000 + Number(m[2]) * 1_000 + Number(m[3]) : undefined;
}

/** What the migration steps need from the driver. */
export interface MigrationHost {
  readonly virtType: string;
  readonly liveMigrationScheme: string | undefined;
  readonly liveMigrationUriTemplate: string | undefined;
  /** Nova's `live_migration_inbound_addr`: the address other hosts send migration data to. */
  readonly liveMigrationInboundAddr: string | undefined;
  /** The pool is shared storage libvirt cannot recognise (see `effectiveMigrationFlags`). */
  readonly trustSharedStorage?: boolean;
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
  /** This host's serial console log file for `instance`, if console logging is configured. */
  consoleLogPath?(instance: Instance): string | undefined;
  log(level: "info" | "warn", message: string, fields?: Record<string, unknown>): void;
  readonly longTimeoutMs: number;
}

/**
 * How long a migration cut short by its caller (signal or deadline) waits for libvirt to have ended
 * the move before it rejects. The job is aborted at once; until the perform call returns, the
 * destination still holds the incoming domain (listed there, about to be removed) and QEMU is
 * still tearing the move down: a caller that rolls back or destroys then races libvirt's own
 * cleanup. Bounded, so a cancelled call still ends promptly when the daemon is slow to answer.
 */
export const ABORT_SETTLE_MS = 400;
/** How often a refused abort of a cut-short move is asked again. */
const ABORT_RETRY_MS = 50;
/** How long a refused abort is asked again while libvirt still runs the job (the perform call may have been given up on). */
const ABORT_RETRY_BUDGET_MS = 10_000;
/** How long a rollback waits for libvirt to end the incoming side of a cut-short move itself. */
const INCOMING_TEARDOWN_MS = 5_000;
const INCOMING_POLL_MS = 100;

/** The incoming side of a move: paused until it ends. */
const incomingMove = (s: DomainStatus): boolean =>
  s.domainState === DomainState.PAUSED && s.reason === DomainPausedReason.MIGRATION;

/** Where a cut-short move's perform call is: settled (`done`), and if so whether libvirt answered it. */
interface PerformState {
  done: boolean;
  answered: boolean;
}

/** One migration this driver runs, from the first call of `migrate` to its end. */
interface Flight {
  abortRequested: boolean;
  readonly done: Promise<void>;
  /** Settles when the perform call has (or was given up on ABORT_SETTLE_MS after a cut). */
  performing?: Promise<void>;
}

/**
 * A signal that fires `graceMs` after `signal` does (with its reason), and `release` to drop the
 * listener and timer once the work it bounds has settled.
 */
function lagging(signal: AbortSignal, graceMs: number): { signal: AbortSignal; release: () => void } {
  const lag = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const fire = (): void => {
    timer = setTimeout(() => lag.abort(signal.reason), graceMs);
  };
  const unregister = signal.aborted ? () => undefined : onAbort(signal, fire);
  if (signal.aborted) fire();
  return {
    signal: lag.signal,
    release: () => {
      unregister();
      if (timer) clearTimeout(timer);
    },
  };
}

/** The migration steps of one driver. */
export class LiveMigrations {
  /** VIR_MIGRATE_* bitmask of each migration this driver is running, by instance uuid. */
  readonly #active = new Map<string, number>();
  /**
   * Migrations this driver has under way, from the first call of `migrate` to its end: an abort
   * that comes before libvirt has started the job (the job exists only once the perform call
   * reached QEMU) is recorded here and honoured, never answered "no migration running".
   */
  readonly #inFlight = new Map<string, Flight>();

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
    this.plan(policy);
    const h = this.host;
    return h.run("check can live migrate destination", instance, options, async (api, call) => {
      const dest = await h.getHostInfo(call);
      // Planned again with the destination's hypervisor version (parallel + post-copy needs QEMU 10.1).
      const plan = this.plan(policy, { hypervisorVersion: encodeVersion(dest.hypervisorVersion) });
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
      // What the guests already running here hold is not free (Nova's conductor counts the
      // instances on the destination the same way; QEMU would overcommit and the host swap).
      let usedKiB = 0n;
      for (const d of await api.connectListAllDomains(Flags.LIST_DOMAINS_ACTIVE, call)) {
        // Only a guest gone since the listing holds nothing; any other failure leaves the count
        // unknown, and a guess of "free" would let the move overcommit the host.
        const info = await api.domainGetInfo(d, call).catch((err: unknown) => {
          if (isNoDomain(err)) return undefined;
          throw err;
        });
        if (info) usedKiB += info.maxMemKiB;
      }
      const freeMb = dest.memoryMb - Number(usedKiB / 1024n);
      if (instance.flavor.memoryMb > freeMb) {
        throw new MigrationPreCheckError(
          `${dest.hostname} has ${Math.max(0, freeMb)} MiB of ${dest.memoryMb} free (its running guests hold the rest), the flavor needs ${instance.flavor.memoryMb}`,
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
          ...(h.consoleLogPath?.(instance) !== undefined ? { destConsoleLogPath: h.consoleLogPath(instance) } : {}),
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
      // Nova's _live_migration_copy_disk_paths: read-only disks are not copied.
      if (disk.readOnly) continue;
      const vol = await api.storageVolLookupByPath(disk.path, call).catch(() => undefined);
      if (!vol || vol.pool !== pool) continue;
      const [info, volXml] = await Promise.all([
        api.storageVolGetInfo(vol, call),
        api.storageVolGetXmlDesc(vol, 0, call),
      ]);
      // Nova's pre_live_migration creates the backing images too (_create_images_and_backing):
      // the overlay is copied, its base must be found by name on the destination.
      const backingFile = readVolumeBacking(volXml);
      let backing: BlockDisk["backing"];
      if (backingFile !== undefined) {
        const base = await api.storageVolLookupByPath(backingFile.path, call).catch(() => undefined);
        if (!base || base.pool !== pool) {
          throw new MigrationPreCheckError(
            `disk ${vol.name} is an overlay of ${backingFile.path}, outside the pool: a block migration cannot recreate it`,
          );
        }
        backing = { name: base.name, format: backingFile.format ?? "qcow2" };
      }
      out.push({
        name: vol.name,
        capacityBytes: Number(info.capacity),
        format: disk.format ?? "qcow2",
        ...(disk.target !== undefined ? { target: disk.target } : {}),
        path: disk.path,
        ...(backing !== undefined ? { backing } : {}),
      });
    }
    return out;
  }

  /** On the destination, after the source refused: the shared-storage probe goes. */
  async cleanupDestinationCheck(instance: Instance, data: MigrateData, options?: OperationOptions): Promise<void> {
    this.host.requireMigration();
    await this.host.run("clean up the destination check", instance, options, (api, call) =>
      this.#removeMarker(api, data, call),
    );
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
      // Nova's pre_live_migration: the disks a block migration copies into, created empty here;
      // their paths go back to the source, which rewrites the guest XML where they differ.
      const paths: Record<string, string> = {};
      for (const disk of blockDisksOf(data)) {
        if (disk.backing !== undefined) {
          await this.#createOverlay(api, disk, disk.backing, call);
        } else {
          await this.host.storage.createVolume(api, disk.name, disk.capacityBytes, disk.format, call);
        }
        const vol = await this.host.storage.find(api, disk.name, call);
        if (vol) paths[disk.name] = await api.storageVolGetPath(vol, call);
      }
      if (Object.keys(paths).length === 0) return data;
      return { ...data, extra: { ...data.extra, destDiskPaths: JSON.stringify(paths) } };
    });
  }

  /**
   * The destination's empty overlay of a copied disk, over this host's copy of the same base
   * image; a base this host does not have is refused before anything moves (the copy would read
   * zeros where the base had data).
   */
  async #createOverlay(
    api: LibvirtApi,
    disk: BlockDisk,
    backing: NonNullable<BlockDisk["backing"]>,
    call: CallOptions,
  ): Promise<void> {
    const base = await this.host.storage.find(api, backing.name, call);
    if (!base) {
      throw new MigrationPreCheckError(
        `the base image ${backing.name} of disk ${disk.name} is not in this host's pool: put it there before a block migration`,
      );
    }
    const { pool } = await this.host.storage.pool(api, call);
    const xml = buildVolumeXml({
      name: disk.name,
      capacityBytes: disk.capacityBytes,
      format: "qcow2",
      backingPath: await api.storageVolGetPath(base, call),
      backingFormat: backing.format,
    });
    // A leftover of an earlier attempt is replaced, as createVolume does.
    await this.host.storage.delete(api, disk.name, call);
    await api.storageVolCreateXml(pool, xml, 0, call);
  }

  async migrate(instance: Instance, data: MigrateData, options?: LiveMigrationOptions): Promise<void> {
    const h = this.host;
    const fail = (reason: string, cause?: unknown): LiveMigrationFailedError =>
      new LiveMigrationFailedError(instance.uuid, reason, cause === undefined ? undefined : { cause });
    h.requireMigration();
    validateUuid(instance.uuid, "instance.uuid");
    let finished!: () => void;
    const flight: Flight = { abortRequested: false, done: new Promise<void>((r) => (finished = r)) };
    this.#inFlight.set(instance.uuid, flight);
    try {
      return await this.#migrate(instance, data, options, flight, fail);
    } catch (err) {
      // Cut short by the caller: the call gave up at once, the move it aborted may still be ending.
      // Rejected once it has (bounded), so the caller finds the instance on the source only.
      if (flight.performing) await flight.performing;
      throw err;
    } finally {
      if (this.#inFlight.get(instance.uuid) === flight) this.#inFlight.delete(instance.uuid);
      finished();
    }
  }

  async #migrate(
    instance: Instance,
    data: MigrateData,
    options: LiveMigrationOptions | undefined,
    flight: Flight,
    fail: (reason: string, cause?: unknown) => LiveMigrationFailedError,
  ): Promise<void> {
    const h = this.host;
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
      const blockDisks = blockDisksOf(data);
      let paused = false;
      try {
        paused = (await guest.status()).power === PowerState.PAUSED;
      } catch (err) {
        throw mapLibvirtError(err, h.hostContext(instance, "live migration"));
      }
      const planned = data.plan.bitmask ?? this.plan(data.policy).bitmask ?? 0;
      const bitmask = effectiveMigrationFlags(planned, {
        paused,
        localDisks: data.policy.block && data.extra.blockDisks !== undefined ? blockDisks.length : undefined,
        // Only with the operator's word and the probe's proof (checkSource found the marker).
        trustedSharedStorage: h.trustSharedStorage === true && data.extra.sharedStorage === true,
      });
      if (bitmask !== planned) {
        h.log("info", "migration flags narrowed at start", {
          instance: instance.uuid,
          dropped: migrateFlagNames(planned & ~bitmask),
          added: migrateFlagNames(bitmask & ~planned),
        });
      }
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
      // Nova's migrate_disks: only the local disks are copied (never for a tunnelled migration,
      // which cannot select disks: libvirt then copies every non-shared one).
      if ((bitmask & VIR_MIGRATE.NON_SHARED_INC) !== 0 && (bitmask & VIR_MIGRATE.TUNNELLED) === 0) {
        for (const disk of blockDisks) {
          if (disk.target !== undefined) params.push({ field: "migrate_disks", type: "string", value: disk.target });
        }
      }
      // Nova's get_updated_guest_xml: the destination's disk paths and console log where they differ.
      const retarget = {
        diskPaths: new Map<string, string>(),
        ...(typeof data.extra.destConsoleLogPath === "string" && isSafePath(data.extra.destConsoleLogPath)
          ? { consoleLogPath: data.extra.destConsoleLogPath }
          : {}),
      };
      const destPaths = destDiskPathsOf(data);
      for (const disk of blockDisks) {
        const to = destPaths.get(disk.name);
        if (disk.path !== undefined && to !== undefined) retarget.diskPaths.set(disk.path, to);
      }
      try {
        const persistXml = await api.domainGetXmlDesc(
          dom,
          Flags.XML_INACTIVE | Flags.XML_SECURE | Flags.XML_MIGRATABLE,
          call,
        );
        const newPersistXml = retargetDomainXml(persistXml, retarget);
        if (newPersistXml !== undefined) {
          // Something must change on the destination: the running definition too.
          const liveXml = await api.domainGetXmlDesc(dom, Flags.XML_SECURE | Flags.XML_MIGRATABLE, call);
          const destXml = retargetDomainXml(liveXml, retarget) ?? liveXml;
          params.push({ field: "destination_xml", type: "string", value: destXml });
        }
        params.push({ field: "persistent_xml", type: "string", value: newPersistXml ?? persistXml });
      } catch {
        // Without them libvirt persists the live definition unchanged, which is right when nothing moves.
      }
      const destUri = typeof data.extra.destUri === "string" ? data.extra.destUri : null;
      const started = Date.now();
      const perform: PerformState = { done: false, answered: false };
      this.#active.set(instance.uuid, bitmask);
      // Cut short by the caller: the move is aborted, not only left unwatched.
      const abortMove = () => void this.#abortCutMove(api, dom, instance, perform);
      const stopAborting = onAbort(signal, abortMove);
      const monitor = (async () => {
        let downtimeSet = false;
        while (!perform.done) {
          await sleep(500, signal, "migration monitor").catch(() => undefined);
          if (perform.done || signal.aborted) return;
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
      // The perform call outlives a cut by ABORT_SETTLE_MS: its answer says the aborted move ended.
      const performCall = lagging(signal, ABORT_SETTLE_MS);
      try {
        // An abort asked for while the move was being prepared: it never starts. Nor when the
        // caller's signal fired meanwhile (the perform call's own signal lags it, so it would go out).
        if (flight.abortRequested) throw fail("aborted before the migration started");
        if (signal.aborted) throw fail("cut short before the migration started", signal.reason);
        const performing = api.domainMigratePerform3Params(dom, destUri, params, new Uint8Array(0), bitmask, {
          signal: performCall.signal,
        });
        const settled = (): void => void (perform.answered = !performCall.signal.aborted);
        flight.performing = performing.then(settled, settled);
        await performing;
      } catch (err) {
        if (err instanceof LiveMigrationFailedError) throw err;
        throw fail(flight.abortRequested ? `aborted: ${libvirtMessage(err)}` : libvirtMessage(err), err);
      } finally {
        performCall.release();
        perform.done = true;
        this.#active.delete(instance.uuid);
        stopAborting();
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
    this.host.requireMigration();
    return this.host.run("post live migration at destination", instance, options, async (api, call) => {
      await this.host.guest(api, instance, call);
    });
  }

  async rollbackAtDestination(instance: Instance, data: MigrateData, options?: OperationOptions): Promise<void> {
    // Undeclared, refused like the other steps: a rollback here would remove the instance.
    this.host.requireMigration();
    return this.host.run("rollback live migration at destination", instance, options, async (api, call) => {
      await this.#removeMarker(api, data, call);
      await this.#incomingEnded(api, instance, call);
      // Copied disks belong to this host only after a block migration.
      await this.host.remove(api, instance, call, data.policy.block);
    });
  }

  /**
   * Waits (bounded) for an incoming domain of a cut-short move to be removed by libvirt itself: the
   * source's cancelled perform call ends the destination's side too, and a destroy sent meanwhile
   * races libvirt's own teardown of that QEMU. Whatever is still there afterwards is removed.
   */
  async #incomingEnded(api: LibvirtApi, instance: Instance, call: CallOptions): Promise<void> {
    const guest = new Guest(api, { name: instance.name, uuid: instance.uuid, id: -1 }, call);
    let incoming = false;
    let after: DomainStatus | undefined;
    try {
      const ended = (s: DomainStatus): boolean => {
        if (!incomingMove(s)) return true;
        incoming = true;
        return false;
      };
      after = await guest.waitFor(ended, INCOMING_POLL_MS, INCOMING_TEARDOWN_MS);
    } catch (err) {
      if (isNoDomain(err)) return;
      throw err;
    }
    // The move it was asked to undo landed meanwhile (the source's abort came too late): this is
    // now the only copy of the guest, running or (moved paused) paused, which a rollback must not destroy.
    if (incoming && after !== undefined && after.domainState !== DomainState.SHUTOFF) {
      throw new LiveMigrationFailedError(
        instance.uuid,
        "the migration being rolled back completed on this host while the rollback waited for it to end: the instance is here and was not removed",
      );
    }
  }

  /**
   * Aborts a move its caller cut short (libvirt then tears it down, which can take a second or more
   * with disks to copy). A refused abort (the job not yet abortable) is asked again, backing off,
   * until accepted or libvirt runs no job any more: not only until the perform call settled, which
   * is given up on ABORT_SETTLE_MS after the cut while the daemon may still carry the move through.
   */
  async #abortCutMove(api: LibvirtApi, dom: Domain, instance: Instance, perform: PerformState): Promise<void> {
    const until = Date.now() + ABORT_RETRY_BUDGET_MS;
    for (let attempt = 1; ; attempt++) {
      // Once the perform call settled: libvirt's answer means the move ended; given up on, the job is
      // asked about first, so a job the caller started after the move is not aborted.
      if (perform.done) {
        if (perform.answered) return;
        const job = await api.domainGetJobInfo(dom, { timeoutMs: 10_000 }).catch(() => undefined);
        if (job === undefined || job.type === DomainJobType.NONE) return;
      }
      try {
        await api.domainAbortJob(dom, { timeoutMs: 10_000 });
        return;
      } catch (err) {
        if (isNoDomain(err) || Date.now() >= until) return;
        if (attempt === 1) {
          this.host.log("warn", "migration abort refused, asking again until the move ends", {
            instance: instance.uuid,
            err: libvirtMessage(err),
          });
        }
      }
      // Backing off: a move in post-copy refuses every abort.
      await sleep(Math.min(ABORT_RETRY_MS * 2 ** (attempt - 1), 1_000));
    }
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
      const flight = this.#inFlight.get(instance.uuid);
      if (!flight) {
        const guest = await this.#activeJob(api, instance, "abort live migration", call);
        await api.domainAbortJob(guest.dom, call);
        return;
      }
      // Our own migration: it is stopped whether or not libvirt's job exists yet. Until the job
      // shows, the flag stops the perform call from being sent; once it shows, it is aborted.
      flight.abortRequested = true;
      const guest = await this.host.guest(api, instance, call);
      let ended = false;
      void flight.done.then(() => (ended = true));
      while (!ended) {
        const job = await api.domainGetJobInfo(guest.dom, call).catch(() => undefined);
        if (job !== undefined && job.type !== DomainJobType.NONE) {
          await api.domainAbortJob(guest.dom, call);
          return;
        }
        await Promise.race([flight.done, sleep(100, call.signal, "abort live migration")]);
      }
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
