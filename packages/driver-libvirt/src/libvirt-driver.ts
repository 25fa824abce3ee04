/**
 * The libvirt ComputeDriver, after Nova's `nova/virt/libvirt/driver.py`: a thin orchestrator over
 * the host (connection, what the daemon supports, events: `libvirt-host.ts`), the instance's storage
 * (`instance-storage.ts`), one domain handle per operation (`guest.ts`), console capture
 * (`guest-consoles.ts`) and live migration (`live-migration.ts`). State is read back from libvirt;
 * only what cannot change under us (the pool, the daemon's supported flags) is remembered, per
 * connection.
 */
import { randomUUID } from "node:crypto";
import { readFile, rm } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import {
  deliverLifecycleEvent,
  InstanceExistsError,
  InstanceNotFoundError,
  InstanceNotRunningError,
  InvalidStateError,
  PowerState,
  type Secret,
  UnsupportedOperationError,
  VirtkitError,
  powerStateName,
  sleep,
  mapLimited,
  withDeadline,
  type Capabilities,
  type Capability,
  type ComputeDriver,
  type DestroyOptions,
  type HostInfo,
  type ImageMeta,
  type ImageService,
  type ImageSnapshotOptions,
  type Instance,
  type InstanceInfo,
  type InstanceSnapshot,
  type LifecycleListener,
  type LiveMigrationOptions,
  type MigrateData,
  type MigrationContext,
  type MigrationHostFacts,
  type MigrationPlan,
  type MigrationPolicy,
  type OperationOptions,
  type PowerOffOptions,
  type RebootType,
  type RescueOptions,
  type SpawnRequest,
  validateUuid,
  powerOffOptionsError,
  rebootTypeError,
  validateRescueInput,
  validateAdminPassword,
  validateImageId,
  validateInstanceSnapshotInput,
  validateSnapshotId,
  validateSpawnRequest,
  raceSignal,
} from "@virtkit/core";
import {
  DomainEventType,
  DomainState,
  Flags,
  VirErrorNumber as E,
  isNoDomain,
  isNoDomainSnapshot,
  type CallOptions,
  type Domain,
  type DomainLifecycleEvent,
  type DomainSnapshot,
} from "@virtkit/libvirt-rpc";
import { adminUser, checkCanSetAdminPassword, checkPasswordTransport, passwordError, passwordTransportAllowed } from "./admin-password.js";
import { libvirtCapabilities } from "./capabilities.js";
import {
  DOMAIN_NAME_PATTERN,
  buildDomainXml,
  buildSnapshotXml,
  diskFiles,
  guestCpuConfig,
  parseDiskCacheModes,
  readDomainXml,
  rngModel,
  usbControllerModel,
  type CpuMode,
  type DiskCacheMode,
  type DiskSpec,
  type GuestCpu,
  type GuestSysinfo,
} from "./domain-xml.js";
import { DiskCachePolicy } from "./disk-cache.js";
import { checkFirstBootPassword, setFirstBootPassword } from "./first-boot-password.js";
import { libvirtMessage, mapLibvirtError, virErrorCode, type ErrorContext } from "./error-map.js";
import { Guest, type DomainStatus } from "./guest.js";
import { GuestConsoles } from "./guest-consoles.js";
import { snapshotToImage } from "./image-snapshot.js";
import { InstanceStorage, LeftoverVolumeError, RESCUE_SUFFIX, instanceVolumeNames } from "./instance-storage.js";
import { toInstanceSnapshot, type SnapshotDescription } from "./instance-snapshots.js";
import type { LibvirtApi, LibvirtConnector } from "./libvirt-connection.js";
import { LibvirtHost } from "./libvirt-host.js";
import { toLifecycleTransition } from "./lifecycle-events.js";
import { LiveMigrations } from "./live-migration.js";
import { PendingCleanups } from "./pending-cleanups.js";
import { toPowerState } from "./power-state-map.js";
import { withRescueDisk } from "./rescue-xml.js";
import { imagePropertyTrue, validateInstance } from "./validate.js";
import { XmlParseError } from "./xml.js";

/** A structured logger (what the host application registers under `TOKENS.Logger`). */
export interface DriverLogger {
  debug?(message: string, fields?: Record<string, unknown>): void;
  info?(message: string, fields?: Record<string, unknown>): void;
  warn?(message: string, fields?: Record<string, unknown>): void;
  error?(message: string, fields?: Record<string, unknown>): void;
}

/** Options of {@link LibvirtDriver}. */
export interface LibvirtDriverOptions {
  /** libvirt connection URI, e.g. `qemu:///system` or `test+unix:///default?socket=/run/libvirt-sock`. */
  readonly uri: string;
  /** `<domain type>`: `qemu`, `kvm`, `test`, `xen`, ... Default: derived from the URI's scheme. */
  readonly virtType?: string;
  /** Storage pool for instance disks (default `default`; the test hypervisor falls back to `default-pool`). */
  readonly pool?: string;
  /** Directory for the pool when it must be created (default `/var/lib/libvirt/images`). */
  readonly poolPath?: string;
  /** Default deadline of a call in ms (default 60 000; long operations use at least 5 minutes). */
  readonly timeoutMs?: number;
  /** Transport of the live-migration URI for kvm/qemu (`tcp`, `tls`, `ssh`); default `tcp`. */
  readonly liveMigrationScheme?: string;
  /** A full live-migration URI template with one `%s` for the destination host. */
  readonly liveMigrationUriTemplate?: string;
  /**
   * Nova's `live_migration_inbound_addr`: the address (IP or name) other hosts send this host's
   * incoming migration data to. Unset: libvirt chooses (the destination's host name).
   */
  readonly liveMigrationInboundAddr?: string;
  /**
   * The pool is storage the hosts really share but libvirt cannot recognise as shared (libvirt 9
   * knows NFS, GFS2, Ceph, ... by filesystem type; e.g. one Docker volume mounted by two host
   * containers): a shared-storage live migration whose marker probe succeeded gets
   * VIR_MIGRATE_UNSAFE instead of libvirt's "Migration without shared storage is unsafe".
   * Never set it for storage that is not shared: the guest's disk would be corrupted.
   */
  readonly trustSharedStorage?: boolean;
  /** libvirt keepalive interval in seconds (0 disables; default 5). */
  readonly keepaliveIntervalSec?: number;
  /** Directory (on the hypervisor host, readable by this process) for serial console logs. */
  readonly consoleLogDir?: string;
  /** Seconds a soft reboot waits for the guest to shut down before it becomes a hard one (default 120). */
  readonly softRebootTimeoutSec?: number;
  /** Where image snapshots go. */
  readonly imageService?: ImageService;
  readonly logger?: DriverLogger;
  /** Opens the connection (default: `@virtkit/libvirt-rpc`). Tests pass an in-memory stand-in. */
  readonly connector?: LibvirtConnector;
  /** Extra options for the rpc connection (socket path, TLS files, ...). */
  readonly connectOptions?: Readonly<Record<string, unknown>>;
  /** Poll interval in ms while waiting for a state (default 200). */
  readonly pollIntervalMs?: number;
  /** Allow setting admin passwords over a plain-TCP connection (`+tcp`): only on a trusted network. */
  readonly allowPasswordOverTcp?: boolean;
  /** Nova's `cpu_mode` for kvm/qemu guests (default host-model; see `guestCpuConfig`). */
  readonly cpuMode?: CpuMode;
  /** Nova's `cpu_models`: with cpuMode `custom`, the first is the guest's CPU model. */
  readonly cpuModels?: readonly string[];
  /** Nova's `disk_cachemodes` (`file=writeback`, ...): per source type, over the probed default. */
  readonly diskCachemodes?: readonly string[];
  /** The SMBIOS system identity of kvm/qemu x86 guests (default Nova's, which cloud-init recognises). */
  readonly sysinfo?: GuestSysinfo;
  /** Nova's `non_inheritable_image_properties` for image snapshots (default `cache_in_nova`, `bittorrent`). */
  readonly nonInheritableImageProperties?: readonly string[];
}

/** The virt type a URI implies: its scheme before `+` (`qemu` stays `qemu`: TCG works everywhere). */
export function virtTypeFromUri(uri: string): string {
  const m = /^([a-z][a-z0-9]*)(\+[a-z0-9]+)?:/i.exec(uri);
  const scheme = (m?.[1] ?? "qemu").toLowerCase();
  if (scheme === "xenmigr") return "xen";
  if (scheme === "vz") return "parallels";
  return scheme;
}

export { withRescueDisk } from "./rescue-xml.js";

const DRIVER = "libvirt";
const DEFAULT_TIMEOUT_MS = 60_000;
const LONG_TIMEOUT_MS = 300_000;
/** Requests one listing sends at once (libvirtd's max_client_requests defaults to 5). */
const DAEMON_FANOUT = 4;
/** How long a destroy waits for libvirtd to confirm the end of the guest's console stream. */
const CONSOLE_CLOSE_WAIT_MS = 2_000;
/** Nova's MAX_CONSOLE_BYTES. */
const MAX_CONSOLE_BYTES = 100 * 1024;
/** Deadline of the removal of what a failed spawn created (its own: the caller's may have passed). */
const SPAWN_CLEANUP_TIMEOUT_MS = 30_000;
const CLEANUP_CALL: CallOptions = { timeoutMs: SPAWN_CLEANUP_TIMEOUT_MS };

/** How long a rescue system's agent is waited for to take the rescue password (a TCG guest boots slowly). */
const RESCUE_PASSWORD_WAIT_MS = 10 * 60_000;

/** What names an instance's domain: its uuid (what libvirtd looks it up by) and its name. */
type InstanceRef = Pick<Instance, "uuid" | "name">;

/**
 * Operations that never change a domain's definition: after them a destroy may still trust that the
 * definition is the one spawn wrote (no rescue disk to look for).
 */
const KEEPS_DEFINITION: ReadonlySet<string> = new Set(["spawn", "get info", "instance exists", "destroy"]);

/** A promise's outcome as a value, for deciding after two calls have both answered. */
async function settle<T>(p: Promise<T>): Promise<{ ok: true; value: T } | { ok: false; error: unknown }> {
  try {
    return { ok: true, value: await p };
  } catch (error) {
    return { ok: false, error };
  }
}

/** The answer of a look-up that was not needed: no such domain. */
const FREE: Promise<{ ok: true; value: null }> = Promise.resolve({ ok: true, value: null });

/** The libvirt driver. Call `initHost` before anything else. */
export class LibvirtDriver implements ComputeDriver {
  /** Always `libvirt`. */
  readonly name = DRIVER;
  /** The `<domain type>` this driver creates. */
  readonly virtType: string;
  readonly #options: LibvirtDriverOptions;
  readonly #timeoutMs: number;
  readonly #pollMs: number;
  readonly #listeners = new Set<LifecycleListener>();
  readonly #conn: LibvirtHost;
  readonly #storage: InstanceStorage;
  readonly #consoles: GuestConsoles;
  readonly #pending = new PendingCleanups();
  /** Files of destroyed instances a destroy could not delete (by uuid), tried again by the next destroy. */
  readonly #strayFiles = new Map<string, string[]>();
  /** Uuids being spawned by this driver right now. */
  readonly #spawning = new Set<string>();
  /** Rescue passwords being given to a booting rescue system, by instance (cancelled by unrescue, destroy, cleanupHost). */
  readonly #rescuePasswords = new Map<string, AbortController>();
  readonly #migrations: LiveMigrations;
  /**
   * Domain handles (with their current id) by uuid, for the connection they came from. Kept fresh
   * by this driver's own starts and stops and by lifecycle events; used only while events flow.
   */
  readonly #handles = new Map<
    string,
    { readonly dom: Domain; readonly api: LibvirtApi; readonly generation: number }
  >();
  #host = "";
  /** The guest CPU of kvm/qemu guests, resolved (and refused if impossible) at construction. */
  readonly #cpu: GuestCpu | undefined;
  readonly #diskCacheModes: ReadonlyMap<string, DiskCacheMode>;
  readonly #diskCache: DiskCachePolicy;

  constructor(options: LibvirtDriverOptions) {
    this.#options = options;
    this.virtType = options.virtType ?? virtTypeFromUri(options.uri);
    this.#cpu = guestCpuConfig(this.virtType, "x86_64", {
      ...(options.cpuMode !== undefined ? { cpuMode: options.cpuMode } : {}),
      ...(options.cpuModels !== undefined ? { cpuModels: options.cpuModels } : {}),
    });
    this.#diskCacheModes = parseDiskCacheModes(options.diskCachemodes);
    this.#diskCache = new DiskCachePolicy((message, fields) => this.#log("warn", message, fields));
    this.#timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.#pollMs = options.pollIntervalMs ?? 200;
    const log = (level: keyof DriverLogger, message: string, fields?: Record<string, unknown>) =>
      this.#log(level, message, fields);
    this.#conn = new LibvirtHost({
      uri: options.uri,
      ...(options.connector ? { connector: options.connector } : {}),
      ...(options.connectOptions ? { connectOptions: options.connectOptions } : {}),
      timeoutMs: this.#timeoutMs,
      ...(options.keepaliveIntervalSec !== undefined ? { keepaliveIntervalSec: options.keepaliveIntervalSec } : {}),
      onEvent: (e) => this.#onEvent(e),
      log,
    });
    this.#storage = new InstanceStorage({
      ...(options.pool !== undefined ? { pool: options.pool } : {}),
      ...(options.poolPath !== undefined ? { poolPath: options.poolPath } : {}),
      virtType: this.virtType,
      timeoutMs: this.#timeoutMs,
      log,
    });
    this.#consoles = new GuestConsoles((message, fields) => log("warn", message, fields));
    this.#migrations = new LiveMigrations({
      virtType: this.virtType,
      liveMigrationScheme: options.liveMigrationScheme,
      liveMigrationUriTemplate: options.liveMigrationUriTemplate,
      liveMigrationInboundAddr: options.liveMigrationInboundAddr,
      ...(options.trustSharedStorage !== undefined ? { trustSharedStorage: options.trustSharedStorage } : {}),
      storage: this.#storage,
      hostName: () => this.#host,
      requireMigration: (policy) => this.#requireMigration(policy),
      run: (operation, instance, opts, fn) => this.#run(operation, instance, opts, fn),
      api: (signal) => this.#api(signal),
      guest: (api, instance, call) => {
        // A migration may leave another definition behind: destroy reads it back.
        this.#conn.forgetPlain(instance.uuid);
        return this.#found(api, instance, call);
      },
      getHostInfo: (call) => this.getHostInfo(call),
      remove: (api, instance, call, disks) => this.#remove(api, instance, call, disks),
      hostContext: (instance, operation) => ({ ...this.#ctx(instance, operation), instanceId: instance.uuid }),
      consoleLogPath: (instance) => this.#consoleLogPath(instance),
      log,
      longTimeoutMs: this.#longTimeout(),
    });
  }

  /** Declared per virt type (see `libvirtCapabilities`). */
  get capabilities(): Capabilities {
    return libvirtCapabilities(this.virtType, {
      consoleLog: this.#options.consoleLogDir !== undefined,
      passwordTransport: passwordTransportAllowed(this.#options.uri, this.#options.allowPasswordOverTcp ?? false),
    });
  }

  /** Instances whose failed spawn still has something to remove (finished on the next call). */
  get pendingCleanups(): readonly string[] {
    return this.#pending.uuids();
  }

  // ---------------------------------------------------------------------------------------------
  // plumbing

  #log(level: keyof DriverLogger, message: string, fields?: Record<string, unknown>): void {
    this.#options.logger?.[level]?.(message, fields);
  }

  #longTimeout(): number {
    return Math.max(this.#timeoutMs, LONG_TIMEOUT_MS);
  }

  /** The connection; first finishes what failed spawns left behind, once the daemon answers. */
  async #api(signal?: AbortSignal): Promise<LibvirtApi> {
    const api = await this.#conn.api(signal);
    // Bounded by the caller's deadline; if the caller gives up, the removal goes on regardless.
    if (this.#pending.size > 0) await raceSignal(this.#finishPending(api), signal);
    return api;
  }

  #ctx(instance: Instance | undefined, operation: string, extra: Partial<ErrorContext> = {}): ErrorContext {
    return {
      operation,
      host: this.#host || this.#conn.safeUri,
      ...(instance ? { instanceId: instance.uuid } : {}),
      ...extra,
    };
  }

  /** Runs `fn` under the caller's deadline, translating every failure into a typed error. */
  #run<T>(
    operation: string,
    instance: Instance | undefined,
    options: OperationOptions | undefined,
    fn: (api: LibvirtApi, call: CallOptions) => Promise<T>,
    timeoutMs = this.#timeoutMs,
  ): Promise<T> {
    return withDeadline(operation, options, timeoutMs, async (signal) => {
      // One uuid rule for every operation, not only spawn: one instance, one spelling.
      if (instance) validateUuid(instance.uuid, "instance.uuid");
      // Any operation but these may change the definition (rescue, revert, migration...).
      if (instance && !KEEPS_DEFINITION.has(operation)) this.#conn.forgetPlain(instance.uuid);
      try {
        const api = await this.#api(signal);
        return await fn(api, { signal });
      } catch (err) {
        if (err instanceof VirtkitError) throw err;
        throw await this.#mapError(err, instance, operation, signal);
      }
    });
  }

  /** Maps an error; for VIR_ERR_OPERATION_INVALID it reads the current state for the message. */
  async #mapError(err: unknown, instance: Instance | undefined, operation: string, signal?: AbortSignal) {
    const storage = this.#storage.mapError(err);
    if (storage instanceof VirtkitError) return storage;
    let stateName: string | undefined;
    const api = this.#conn.current;
    if (instance && virErrorCode(err) === E.VIR_ERR_OPERATION_INVALID && api) {
      try {
        const dom = await api.domainLookupByUuid(instance.uuid, { signal });
        stateName = powerStateName((await new Guest(api, dom, { signal }).status()).power);
      } catch {
        // The state is only for the message.
      }
    }
    return mapLibvirtError(err, this.#ctx(instance, operation, stateName ? { stateName } : {}));
  }

  /**
   * The instance's domain for this operation, without a round trip: libvirtd finds a domain by the
   * handle's uuid (the name only labels it), and a missing one answers VIR_ERR_NO_DOMAIN to the
   * first call, which maps to `InstanceNotFoundError`. Costs nothing where Nova pays a look-up.
   */
  #guest(api: LibvirtApi, instance: Instance, call: CallOptions): Guest {
    return new Guest(api, { name: instance.name, uuid: instance.uuid, id: -1 }, call);
  }

  /** The instance's domain looked up (for its id, or to prove it exists), or `InstanceNotFoundError`. */
  async #found(api: LibvirtApi, instance: Instance, call: CallOptions): Promise<Guest> {
    try {
      const dom = await api.domainLookupByUuid(instance.uuid, call);
      this.#remember(api, dom);
      return new Guest(api, dom, call);
    } catch (err) {
      if (isNoDomain(err)) {
        this.#handles.delete(instance.uuid);
        throw new InstanceNotFoundError(instance.uuid, { cause: err });
      }
      throw err;
    }
  }

  /** A handle with the domain's current id, remembered while events keep it fresh. */
  #remember(api: LibvirtApi, dom: Domain): void {
    if (this.#conn.subscribed) this.#handles.set(dom.uuid, { dom, api, generation: api.reconnectCount ?? 0 });
  }

  /** The remembered handle of `uuid` on this connection, if events have kept it fresh. */
  #remembered(api: LibvirtApi, uuid: string): Domain | undefined {
    const h = this.#handles.get(uuid);
    if (!h || !this.#conn.subscribed || h.api !== api || h.generation !== (api.reconnectCount ?? 0)) return undefined;
    return h.dom;
  }

  async #lookupOrNull(api: LibvirtApi, uuid: string, call: CallOptions): Promise<Domain | null> {
    try {
      return await api.domainLookupByUuid(uuid, call);
    } catch (err) {
      if (isNoDomain(err)) return null;
      throw err;
    }
  }

  #requireCapability(capability: Capability, detail?: string): void {
    if (!this.capabilities[capability]) {
      throw new UnsupportedOperationError(capability, DRIVER, {
        detail: detail ?? `not with virt type ${this.virtType}`,
      });
    }
  }

  #invalid(instance: Instance, operation: string, status: DomainStatus): InvalidStateError {
    return new InvalidStateError(instance.uuid, operation, powerStateName(status.power));
  }

  /**
   * Removes an instance from this host, tolerantly: its domain (destroyed, undefined) and, with
   * `disks`, its volumes. Undefine and volume deletes go out together.
   */
  async #remove(api: LibvirtApi, instance: InstanceRef, call: CallOptions, disks: boolean): Promise<void> {
    // Ended before QEMU is killed, so libvirtd tears the stream down on our request and not in a race
    // with the guest's death; what it captured stays readable until forgotten.
    await this.#consoles.closeAndWait(instance.uuid, CONSOLE_CLOSE_WAIT_MS, call.signal);
    this.#handles.delete(instance.uuid);
    const guest = new Guest(api, { name: instance.name, uuid: instance.uuid, id: -1 }, call);
    // The definition tells whether a rescue disk exists too, so no delete is sent for nothing; it
    // is not read back when it is the one spawn wrote and nothing changed it since (events say so).
    const plain = disks && this.#conn.isPlain(api, instance.uuid);
    this.#conn.forgetPlain(instance.uuid);
    let unreadable = false;
    const [xml, existed] = await Promise.all([
      disks && !plain
        ? api.domainGetXmlDesc(guest.dom, 0, call).catch((err: unknown) => {
            // Gone is fine; any other failure hides which files the disks use.
            if (!isNoDomain(err)) unreadable = true;
            return undefined;
          })
        : undefined,
      guest.destroy(instance.uuid),
    ]);
    const names = instanceVolumeNames(instance.uuid);
    // A full parse only when the text can hold virtkit's rescue record (destroy is hot; rescue rare).
    const rescued =
      !plain && (xml === undefined || (xml.includes("rescue>") && readDomainXml(xml).rescueOriginalXml !== undefined));
    // Other files of the instance the disks use: a live snapshot's overlay the guest was left
    // running on when merging it back failed (each such merge failure adds one to the chain).
    // A destroy that could not delete them before left their paths here (the definition is gone now).
    const extra = [
      ...(this.#strayFiles.get(instance.uuid) ?? []),
      ...(xml === undefined
        ? []
        : diskFiles(xml).filter((f) => {
            const name = basename(f);
            return name.startsWith(`${instance.uuid}_`) && name !== names.disk && name !== names.rescue;
          })),
    ];
    // Undefine and the volume deletes are independent: one round of calls.
    const work: Promise<void>[] = [];
    if (existed) work.push(guest.undefine(this.#conn.facts(api)));
    if (disks) work.push(this.#storage.delete(api, names.disk, call));
    if (disks && rescued) work.push(this.#storage.delete(api, names.rescue, call));
    if (disks && extra.length > 0) {
      work.push(
        this.#storage.deleteFiles(api, extra, call).then(
          () => void this.#strayFiles.delete(instance.uuid),
          (err: unknown) => {
            // Kept, so the next destroy of this uuid tries them again.
            this.#strayFiles.set(instance.uuid, [...new Set(extra)]);
            throw err;
          },
        ),
      );
    }
    // The definition could not be read: every volume named after the instance is its own.
    if (disks && unreadable) work.push(this.#storage.deleteByPrefix(api, `${instance.uuid}_`, call));
    // Every step runs to its end before the first failure is reported (a caller's retry must not race it).
    const settled = await Promise.allSettled(work);
    const failed = settled.find((r): r is PromiseRejectedResult => r.status === "rejected");
    if (failed) throw failed.reason;
    this.#consoles.close(instance.uuid, true);
    // The serial log can hold what the guest printed (passwords included): it goes with the instance.
    const log = this.#consoleLogPath(instance);
    if (existed && log !== undefined) {
      await rm(log, { force: true }).catch((err: unknown) =>
        this.#log("warn", "could not remove the console log", { instance: instance.uuid, err: String(err) }),
      );
    }
  }

  /** Removes what failed spawns left behind; what still cannot be removed stays pending. */
  async #finishPending(api: LibvirtApi): Promise<void> {
    await this.#pending.finish(async ({ uuid, name, spawnId, keepDisk, attempts }) => {
      await this.#removeSpawn(api, { uuid, name }, spawnId, keepDisk, CLEANUP_CALL);
      this.#log("info", "removed what a failed spawn left behind", { instance: uuid, attempts });
    });
  }

  // ---------------------------------------------------------------------------------------------
  // host

  async initHost(host: string, options?: OperationOptions): Promise<void> {
    this.#host = host;
    await this.#run("init host", undefined, options, async (api, call) => {
      // Nova's _test_connection: a cheap call proves the link and the driver.
      await api.connectGetType(call);
      await this.#conn.subscribe(api, call);
    });
  }

  async cleanupHost(_host: string, options?: OperationOptions): Promise<void> {
    this.#listeners.clear();
    this.#consoles.closeAll();
    for (const uuid of [...this.#rescuePasswords.keys()]) this.#cancelRescuePassword(uuid);
    await withDeadline("cleanup host", options, this.#timeoutMs, async (signal) => {
      const api = this.#conn.current;
      // Last chance for what failed spawns left behind (best effort: the daemon may be gone).
      if (api && this.#pending.size > 0) await this.#finishPending(api).catch(() => undefined);
      if (this.#pending.size > 0) {
        this.#log("warn", "failed spawns left things on the hypervisor that could not be removed", {
          instances: this.#pending.uuids(),
        });
      }
      await this.#conn.close({ signal });
    });
  }

  getHostInfo(options?: OperationOptions): Promise<HostInfo> {
    return this.#run("get host info", undefined, options, async (api, call) => {
      const [hostname, type, version, node] = await Promise.all([
        api.connectGetHostname(call),
        api.connectGetType(call),
        api.connectGetVersion(call),
        api.nodeGetInfo(call),
      ]);
      return {
        hostname,
        hypervisorType: type,
        hypervisorVersion: `${version.major}.${version.minor}.${version.release}`,
        cpuArch: node.model,
        vcpus: node.cpus,
        memoryMb: Number(node.memoryKiB / 1024n),
      };
    });
  }

  // ---------------------------------------------------------------------------------------------
  // inspection

  /**
   * Display names of the instances on this host. Domains virtkit defined are named from the uuid
   * (`instance-<uuid>`, as Nova names them from its id): their display name is read from virtkit's
   * metadata; other domains are listed by their libvirt name.
   */
  listInstances(options?: OperationOptions): Promise<readonly string[]> {
    return this.#run("list instances", undefined, options, async (api, call) => {
      const domains = await api.connectListAllDomains(0, call);
      // A few reads at a time: one per domain all at once would exceed what libvirtd serves a
      // client (5 by default), and it then stops reading from the connection.
      return mapLimited(domains, DAEMON_FANOUT, async (d) => {
        if (!DOMAIN_NAME_PATTERN.test(d.name)) return d.name;
        try {
          return readDomainXml(await api.domainGetXmlDesc(d, 0, call)).displayName ?? d.name;
        } catch (err) {
          // Undefined between the list and the read: it is gone, its libvirt name will do.
          if (isNoDomain(err)) return d.name;
          // XML this driver cannot read (another tool's, or a daemon's it refuses) costs that one
          // domain its display name, not the whole listing.
          if (err instanceof XmlParseError) {
            this.#log("warn", "domain XML could not be read; listed by its libvirt name", { domain: d.name, err: err.message });
            return d.name;
          }
          throw err;
        }
      });
    });
  }

  listInstanceUuids(options?: OperationOptions): Promise<readonly string[]> {
    return this.#run("list instance uuids", undefined, options, async (api, call) =>
      (await api.connectListAllDomains(0, call)).map((d) => d.uuid),
    );
  }

  instanceExists(instance: Instance, options?: OperationOptions): Promise<boolean> {
    return this.#run("instance exists", instance, options, async (api, call) => {
      return (await this.#lookupOrNull(api, instance.uuid, call)) !== null;
    });
  }

  getInfo(instance: Instance, options?: OperationOptions): Promise<InstanceInfo> {
    return this.#run("get info", instance, options, async (api, call) => {
      // The domain's id (Nova's internal_id) comes from a fresh handle: one kept fresh by events,
      // else a look-up.
      const remembered = this.#remembered(api, instance.uuid);
      const dom = remembered ?? (await this.#found(api, instance, call)).dom;
      let info: Awaited<ReturnType<LibvirtApi["domainGetInfo"]>>;
      try {
        info = await api.domainGetInfo(dom, call);
      } catch (err) {
        if (isNoDomain(err)) this.#handles.delete(instance.uuid);
        throw err;
      }
      const managedSave = info.state === DomainState.SHUTOFF && (await api.domainHasManagedSaveImage(dom, 0, call));
      return {
        state: toPowerState(info.state, managedSave),
        maxMemoryKb: Number(info.maxMemKiB),
        memoryKb: Number(info.memoryKiB),
        vcpus: info.nrVirtCpu,
        cpuTimeNs: info.cpuTimeNs,
        ...(dom.id >= 0 ? { internalId: String(dom.id) } : {}),
      };
    });
  }

  /** Console output comes from console streams (qemu/kvm without a console log directory). */
  get #consoleStreams(): boolean {
    return this.#options.consoleLogDir === undefined && (this.virtType === "qemu" || this.virtType === "kvm");
  }

  async getConsoleOutput(instance: Instance, options?: OperationOptions): Promise<string> {
    this.#requireCapability("consoleOutput", "no consoleLogDir configured");
    return this.#run("get console output", instance, options, async (api, call) => {
      const guest = this.#guest(api, instance, call);
      if (this.#consoleStreams) return this.#capturedConsole(guest, instance);
      const logPath = readDomainXml(await api.domainGetXmlDesc(guest.dom, 0, call)).consoleLogPath;
      if (logPath === undefined) return "";
      let data: Buffer;
      try {
        data = await readFile(logPath, { signal: call.signal });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === "ENOENT") return "";
        throw new UnsupportedOperationError("consoleOutput", DRIVER, {
          cause: err,
          detail: `console log ${logPath} is not readable here`,
        });
      }
      // Like Nova, only the tail: a guest can write without bound.
      return data.subarray(Math.max(0, data.length - MAX_CONSOLE_BYTES)).toString("utf8");
    });
  }

  /** The captured console tail; opens the console lazily for a running domain found without one. */
  async #capturedConsole(guest: Guest, instance: Instance): Promise<string> {
    let capture = this.#consoles.get(instance.uuid);
    if (!capture || capture.closed) {
      const status = await guest.status();
      const active = status.power === PowerState.RUNNING || status.power === PowerState.PAUSED;
      // Not running: whatever was captured before it stopped (nothing if it never ran here).
      if (!active) return capture?.text() ?? "";
      // Found running (started elsewhere, or its console was taken over): no FORCE, an operator's
      // interactive session keeps the console.
      capture = (await this.#consoles.attach(guest.api, instance.uuid, guest.dom, false, guest.call)) ?? capture;
      if (!capture) return "";
    } else {
      await this.#consoles.settle(capture, guest.call.signal);
    }
    if (guest.call.signal?.aborted) throw guest.call.signal.reason;
    return capture.text().slice(-MAX_CONSOLE_BYTES);
  }

  /** Starts a defined domain running (console attached first where consoles are streamed). */
  async #startRunning(guest: Guest, uuid: string): Promise<void> {
    guest.dom = this.#consoleStreams
      ? await this.#consoles.startRunning(guest.api, uuid, guest.dom, guest.call)
      : await guest.api.domainCreateWithFlags(guest.dom, 0, guest.call);
    this.#remember(guest.api, guest.dom);
  }

  /** Starts a defined domain, running or paused. libvirt returns once it is in that state. */
  async #start(guest: Guest, uuid: string, paused = false): Promise<void> {
    if (!paused) return this.#startRunning(guest, uuid);
    guest.dom = await guest.api.domainCreateWithFlags(guest.dom, Flags.START_PAUSED, guest.call);
    this.#remember(guest.api, guest.dom);
  }

  /** CPU, disk cache and SMBIOS identity of a kvm/qemu guest (Nova's guest config); nothing for others. */
  async #guestConfig(
    imageMeta: ImageMeta,
    disk: DiskSpec,
  ): Promise<{
    cpu?: GuestCpu;
    diskCache?: DiskCacheMode;
    diskCacheModes?: ReadonlyMap<string, DiskCacheMode>;
    sysinfo?: GuestSysinfo;
  }> {
    if (this.virtType !== "qemu" && this.virtType !== "kvm") return {};
    const arch = typeof imageMeta.properties.architecture === "string" ? imageMeta.properties.architecture : "x86_64";
    const cpu =
      arch === "x86_64"
        ? this.#cpu
        : guestCpuConfig(this.virtType, arch, {
            ...(this.#options.cpuMode !== undefined ? { cpuMode: this.#options.cpuMode } : {}),
            ...(this.#options.cpuModels !== undefined ? { cpuModels: this.#options.cpuModels } : {}),
          });
    const diskCache = await this.#diskCache.modeFor(dirname(disk.path));
    return {
      ...(cpu !== undefined ? { cpu } : {}),
      diskCache,
      diskCacheModes: this.#diskCacheModes,
      ...(this.#options.sysinfo !== undefined ? { sysinfo: this.#options.sysinfo } : {}),
    };
  }

  #consoleLogPath(instance: InstanceRef): string | undefined {
    const dir = this.#options.consoleLogDir;
    return dir === undefined ? undefined : join(dir, `${instance.uuid}.log`);
  }

  // ---------------------------------------------------------------------------------------------
  // lifecycle

  async spawn(request: SpawnRequest, options?: OperationOptions): Promise<void> {
    validateSpawnRequest(request);
    const { instance } = request;
    validateInstance(instance);
    const imageMeta = request.imageMeta ?? instance.imageMeta;
    // Refused before anything is made (the domain XML reads it again).
    rngModel(imageMeta.properties.hw_rng_model);
    usbControllerModel(instance.flavor.extraSpecs?.["hw:usb_model"], imageMeta.properties.hw_usb_model);
    const uuid = instance.uuid;
    const password = request.adminPassword;
    if (password !== undefined) {
      // A Secret (validateSpawnRequest). Set through the guest agent after boot
      // (first-boot-password.ts): refused now if it cannot be.
      checkFirstBootPassword(this.virtType, this.#options.uri, this.#options.allowPasswordOverTcp ?? false, {
        ...instance,
        imageMeta,
      });
    }
    // Two spawns of one uuid through this driver at once: the second is refused, never raced.
    if (this.#spawning.has(uuid)) throw new InstanceExistsError(uuid);
    this.#spawning.add(uuid);
    // Marks what this spawn defines, so a cleanup never removes another spawn's domain.
    const spawnId = randomUUID();
    try {
      return await this.#run(
        "spawn",
        instance,
        options,
        async (api, call) => {
          // Whether the uuid is taken is asked while the disk is being made: one round trip less.
          // Known free (the listing and events since say no such domain): no look-up at all.
          const knownFree = !this.#conn.mayExist(api, uuid);
          const existing = knownFree ? FREE : settle(this.#lookupOrNull(api, uuid, call));
          let free = false;
          let keptDisk = false;
          try {
            const base = await this.#storage.baseImage(api, imageMeta, call);
            const made = await settle(this.#storage.createDisk(api, instance, imageMeta, "", call, base, false));
            // A disk of that name exists: someone may be spawning the uuid right now; ask after all.
            const leftover = !made.ok && made.error instanceof LeftoverVolumeError;
            const taken = knownFree && leftover ? await settle(this.#lookupOrNull(api, uuid, call)) : await existing;
            if (!taken.ok || taken.value !== null) {
              // Taken, or not known: nothing here may be touched but a disk made just now (ours:
              // creating it would have failed had it existed).
              if (made.ok)
                await this.#storage.delete(api, instanceVolumeNames(uuid).disk, CLEANUP_CALL).catch(() => undefined);
              throw taken.ok ? new InstanceExistsError(uuid) : taken.error;
            }
            free = true;
            let disk: DiskSpec;
            if (made.ok) disk = made.value;
            else if (made.error instanceof LeftoverVolumeError) {
              // A disk a destroy with destroyDisks: false kept: booted as it is, as Nova's image
              // backend reuses a disk that exists (evacuation from shared storage needs its data).
              // Not this spawn's to remove if the spawn fails.
              keptDisk = true;
              const kept = await this.#storage.existingDisk(api, instance, "", call);
              if (kept) {
                this.#log("info", "spawn boots the disk an earlier destroy kept", { instance: uuid });
                disk = kept;
              } else {
                // Gone since (another destroy removed it): a fresh one, this spawn's.
                keptDisk = false;
                disk = await this.#storage.createDisk(api, instance, imageMeta, "", call, base, true);
              }
            } else throw made.error;
            const consoleLogPath = this.#consoleLogPath(instance);
            const xml = buildDomainXml({
              virtType: this.virtType,
              instance,
              imageMeta,
              disks: [disk],
              spawnId,
              ...(request.networkInfo ? { networkInfo: request.networkInfo } : {}),
              ...(consoleLogPath !== undefined ? { consoleLogPath } : {}),
              ...(await this.#guestConfig(imageMeta, disk)),
            });
            const guest = new Guest(api, await api.domainDefineXml(xml, 0, call), call);
            this.#conn.definedPlain(api, uuid);
            await this.#startRunning(guest, uuid);
            if (password !== undefined) {
              await setFirstBootPassword(guest, { ...instance, imageMeta }, password, call, () =>
                this.#ctx(instance, "spawn"),
              );
            }
          } catch (err) {
            // Only once the uuid was known to be free is anything of it this spawn's to remove.
            if (free) await this.#cleanupFailedSpawn(api, instance, spawnId, keptDisk);
            throw err;
          }
          this.#log("info", "instance spawned", { instance: uuid });
        },
        this.#longTimeout(),
      );
    } finally {
      this.#spawning.delete(uuid);
    }
  }

  /**
   * Leaves nothing behind: a half-spawned instance would block the next attempt. Whatever step
   * failed, even one whose reply was lost, anything of the instance may exist on the daemon, so
   * the removal is recorded first and only forgotten once it went through.
   */
  async #cleanupFailedSpawn(api: LibvirtApi, instance: Instance, spawnId: string, keepDisk: boolean): Promise<void> {
    const { uuid } = instance;
    this.#pending.add(uuid, instance.name, spawnId, keepDisk);
    try {
      await this.#removeSpawn(api, { uuid, name: instance.name }, spawnId, keepDisk, CLEANUP_CALL);
      this.#pending.delete(uuid);
    } catch (err) {
      // The daemon is gone or the link broke: finished on the next call that reaches it.
      this.#log("warn", "cleanup after a failed spawn is pending until the daemon answers", {
        instance: uuid,
        err: libvirtMessage(err),
      });
    }
  }

  /**
   * Removes what the spawn `spawnId` left: its domain (only if the domain carries that spawn's id:
   * another spawn may have taken the uuid since) and the instance's disk volume, unless the spawn
   * booted a disk an earlier destroy kept (`keepDisk`): that one stays kept.
   */
  async #removeSpawn(
    api: LibvirtApi,
    instance: InstanceRef,
    spawnId: string,
    keepDisk: boolean,
    call: CallOptions,
  ): Promise<void> {
    const guest = new Guest(api, { name: instance.name, uuid: instance.uuid, id: -1 }, call);
    let xml: string | undefined;
    try {
      xml = await api.domainGetXmlDesc(guest.dom, Flags.XML_INACTIVE, call);
    } catch (err) {
      if (!isNoDomain(err)) throw err;
    }
    if (xml !== undefined) {
      if (readDomainXml(xml).spawnId !== spawnId) {
        this.#log("info", "a failed spawn's uuid belongs to another spawn now; left alone", {
          instance: instance.uuid,
        });
        return;
      }
      await this.#consoles.closeAndWait(instance.uuid, CONSOLE_CLOSE_WAIT_MS, call.signal);
      this.#consoles.close(instance.uuid, true);
      this.#handles.delete(instance.uuid);
      await guest.destroy(instance.uuid);
      await guest.undefine(this.#conn.facts(api));
    }
    if (!keepDisk) await this.#storage.delete(api, instanceVolumeNames(instance.uuid).disk, call);
  }

  destroy(instance: Instance, options?: DestroyOptions): Promise<void> {
    this.#cancelRescuePassword(instance?.uuid);
    return this.#run(
      "destroy",
      instance,
      options,
      async (api, call) => {
        await this.#remove(api, instance, call, options?.destroyDisks ?? true);
        this.#pending.delete(instance.uuid);
      },
      // The caller's deadline passing is an OperationTimeoutError, as the contract says; only
      // libvirt's own "operation timed out" killing QEMU is Nova's InstancePowerOffFailure.
      this.#longTimeout(),
    );
  }

  /** Hard reboot: destroy (tolerantly) and start afresh from the persistent definition. */
  async #hardReboot(guest: Guest, instance: Instance): Promise<void> {
    await this.#consoles.closeAndWait(instance.uuid, CONSOLE_CLOSE_WAIT_MS, guest.call.signal);
    if (!(await guest.destroy(instance.uuid))) throw new InstanceNotFoundError(instance.uuid);
    // A fresh boot, not a restore of a suspended image.
    await guest.removeManagedSave();
    await this.#start(guest, instance.uuid);
  }

  reboot(instance: Instance, type: RebootType, options?: OperationOptions): Promise<void> {
    const badType = rebootTypeError(type);
    if (badType) return Promise.reject(badType);
    const budget = options?.timeoutMs ?? this.#longTimeout();
    return this.#run(
      type === "SOFT" ? "soft reboot" : "hard reboot",
      instance,
      options,
      async (api, call) => {
        const guest = this.#guest(api, instance, call);
        if (type === "SOFT") {
          const status = await guest.status();
          // Nova's _soft_reboot: only a running guest can reboot itself; otherwise go hard.
          if (status.power === PowerState.RUNNING) {
            await api.domainShutdown(guest.dom, 0, call);
            const waitMs = Math.min((this.#options.softRebootTimeoutSec ?? 120) * 1000, budget / 2);
            const down = await guest.waitFor((s) => s.domainState === DomainState.SHUTOFF, this.#pollMs, waitMs);
            if (down) {
              this.#consoles.close(instance.uuid);
              await this.#start(guest, instance.uuid);
              return;
            }
            this.#log("info", "soft reboot timed out, rebooting hard", { instance: instance.uuid });
          }
        }
        await this.#hardReboot(guest, instance);
      },
      budget,
    );
  }

  powerOff(instance: Instance, options?: PowerOffOptions): Promise<void> {
    const badOptions = powerOffOptionsError(options);
    if (badOptions) return Promise.reject(badOptions);
    const timeoutSec = options?.cleanShutdownTimeoutSec ?? 0;
    // The caller's interval as the contract says ("seconds between requests"), not rounded up to
    // Nova's whole seconds: a sub-second interval is asked for on purpose (the loop polls at most
    // every 10 ms, so 0 cannot spin).
    const retrySec = options?.retryIntervalSec ?? 10;
    return this.#run(
      "power off",
      instance,
      options,
      async (api, call) => {
        const guest = this.#guest(api, instance, call);
        if (!(timeoutSec > 0 && (await this.#cleanShutdown(guest, timeoutSec, retrySec)))) {
          await this.#consoles.closeAndWait(instance.uuid, CONSOLE_CLOSE_WAIT_MS, call.signal);
          if (!(await guest.destroy(instance.uuid))) throw new InstanceNotFoundError(instance.uuid);
        }
        // Powered off means SHUTDOWN: a suspended guest's saved memory is dropped, so the next
        // power-on boots rather than restoring it (Nova's next hard boot undefines it with the domain).
        await guest.removeManagedSave();
      },
      Math.max(this.#longTimeout(), timeoutSec * 1000 + this.#timeoutMs),
    );
  }

  /** Nova's `_clean_shutdown`: ask, re-ask every `retrySec`, give up after `timeoutSec`. */
  async #cleanShutdown(guest: Guest, timeoutSec: number, retrySec: number): Promise<boolean> {
    const off = (s: DomainStatus): boolean =>
      s.power === PowerState.SHUTDOWN || s.power === PowerState.CRASHED || s.power === PowerState.SUSPENDED;
    if (off(await guest.status())) return true;
    const deadline = Date.now() + timeoutSec * 1000;
    let nextAsk = 0;
    while (Date.now() < deadline) {
      if (Date.now() >= nextAsk) {
        try {
          await guest.api.domainShutdown(guest.dom, 0, guest.call);
        } catch (err) {
          // The guest may have just gone down between the check and the request.
          if (virErrorCode(err) !== E.VIR_ERR_OPERATION_INVALID) throw err;
        }
        nextAsk = Date.now() + retrySec * 1000;
      }
      if (off(await guest.status())) return true;
      const untilAsk = Math.max(10, nextAsk - Date.now());
      const untilDeadline = Math.max(10, deadline - Date.now());
      await sleep(Math.min(1000, this.#pollMs * 5, untilAsk, untilDeadline), guest.call.signal, "clean shutdown");
    }
    return false;
  }

  powerOn(instance: Instance, options?: OperationOptions): Promise<void> {
    return this.#run(
      "power on",
      instance,
      options,
      async (api, call) => {
        const guest = this.#guest(api, instance, call);
        const status = await guest.status();
        if (status.power === PowerState.RUNNING) return;
        if (status.power === PowerState.PAUSED) throw this.#invalid(instance, "power on", status);
        if (status.domainState !== DomainState.SHUTOFF) {
          // SHUTDOWN (in progress) or CRASHED: make sure it is off first, as Nova's hard reboot does.
          await guest.destroy(instance.uuid);
        }
        await this.#start(guest, instance.uuid);
      },
      this.#longTimeout(),
    );
  }

  async pause(instance: Instance, options?: OperationOptions): Promise<void> {
    this.#requireCapability("pause");
    return this.#run("pause", instance, options, async (api, call) => {
      const guest = this.#guest(api, instance, call);
      const status = await guest.status();
      // libvirt's suspend of a paused domain may succeed silently: refuse it here.
      if (status.power !== PowerState.RUNNING) throw this.#invalid(instance, "pause", status);
      await api.domainSuspend(guest.dom, call);
    });
  }

  async unpause(instance: Instance, options?: OperationOptions): Promise<void> {
    this.#requireCapability("pause");
    return this.#run("unpause", instance, options, async (api, call) => {
      const guest = this.#guest(api, instance, call);
      const status = await guest.status();
      if (status.power !== PowerState.PAUSED) throw this.#invalid(instance, "unpause", status);
      await api.domainResume(guest.dom, call);
    });
  }

  async suspend(instance: Instance, options?: OperationOptions): Promise<void> {
    this.#requireCapability("suspend");
    return this.#run(
      "suspend",
      instance,
      options,
      async (api, call) => {
        const guest = this.#guest(api, instance, call);
        const status = await guest.status();
        // Nova's suspend: managed save of a running or paused guest.
        if (status.power !== PowerState.RUNNING && status.power !== PowerState.PAUSED) {
          throw this.#invalid(instance, "suspend", status);
        }
        // QEMU exits once saved: end the console first, as before a destroy.
        await this.#consoles.closeAndWait(instance.uuid, CONSOLE_CLOSE_WAIT_MS, call.signal);
        await api.domainManagedSave(guest.dom, 0, call);
      },
      this.#longTimeout(),
    );
  }

  async resume(instance: Instance, options?: OperationOptions): Promise<void> {
    this.#requireCapability("suspend");
    return this.#run(
      "resume",
      instance,
      options,
      async (api, call) => {
        const guest = this.#guest(api, instance, call);
        const status = await guest.status();
        if (!(status.domainState === DomainState.SHUTOFF && status.managedSave)) {
          throw this.#invalid(instance, "resume", status);
        }
        // Starting a domain with a managed-save image restores it; the contract resumes to RUNNING.
        guest.dom = await api.domainCreateWithFlags(guest.dom, 0, call);
        this.#remember(api, guest.dom);
        const after = await guest.waitFor((s) => s.power !== PowerState.SHUTDOWN, this.#pollMs);
        if (after?.power === PowerState.PAUSED) await api.domainResume(guest.dom, call);
      },
      this.#longTimeout(),
    );
  }

  async rescue(instance: Instance, rescueImageMeta: ImageMeta, options?: RescueOptions): Promise<void> {
    this.#requireCapability("rescue");
    validateRescueInput(rescueImageMeta, options);
    const deliver = this.#rescuePasswordDelivery(instance, rescueImageMeta, options?.rescuePassword);
    return this.#run(
      "rescue",
      instance,
      options,
      async (api, call) => {
        const guest = this.#guest(api, instance, call);
        const originalXml = await api.domainGetXmlDesc(guest.dom, Flags.XML_INACTIVE | Flags.XML_SECURE, call);
        if (readDomainXml(originalXml).rescueOriginalXml !== undefined) {
          throw new InvalidStateError(instance.uuid, "rescue", "RESCUED");
        }
        const rescueDisk = await this.#storage.createDisk(api, instance, rescueImageMeta, RESCUE_SUFFIX, call);
        let rescued: Guest | undefined;
        try {
          const rescueXml = withRescueDisk(originalXml, rescueDisk);
          await this.#consoles.closeAndWait(instance.uuid, CONSOLE_CLOSE_WAIT_MS, call.signal);
          await guest.destroy(instance.uuid);
          await guest.removeManagedSave();
          rescued = new Guest(api, await api.domainDefineXml(rescueXml, 0, call), call);
          await this.#start(rescued, instance.uuid);
        } catch (err) {
          // Undo on a budget of its own (the caller's may be spent): stop the rescue system, put the
          // original definition back so the instance is not lost, and drop the rescue disk (destroy
          // only looks for one when the definition says the instance is rescued).
          const cleanup: CallOptions = { timeoutMs: SPAWN_CLEANUP_TIMEOUT_MS };
          if (rescued !== undefined) {
            await api.domainDestroy(rescued.dom, 0, cleanup).catch(() => undefined);
            await api.domainDefineXml(originalXml, 0, cleanup).catch(() => undefined);
          }
          await this.#storage.delete(api, instanceVolumeNames(instance.uuid).rescue, cleanup).catch(() => undefined);
          throw err;
        }
        // Like Nova's, rescue returns once the rescue system is started; its root gets the password
        // through its agent as soon as that answers (the guest is still booting).
        if (deliver !== undefined) this.#giveRescuePassword(api, rescued.dom, instance, deliver);
      },
      this.#longTimeout(),
    );
  }

  /** Stops giving `uuid`'s rescue system its password (it is being unrescued, destroyed, or the driver closed). */
  #cancelRescuePassword(uuid: string | undefined): void {
    if (uuid === undefined) return;
    const controller = this.#rescuePasswords.get(uuid);
    this.#rescuePasswords.delete(uuid);
    controller?.abort();
  }

  /**
   * Sets the rescue system's root password in the background: asked every second while the agent
   * is not up yet, for at most {@link RESCUE_PASSWORD_WAIT_MS}; stopped by unrescue, destroy and
   * cleanupHost. The outcome is logged (the password never is).
   */
  #giveRescuePassword(
    api: LibvirtApi,
    dom: Domain,
    instance: Instance,
    deliver: { readonly instance: Instance; readonly password: Secret },
  ): void {
    const uuid = instance.uuid;
    this.#cancelRescuePassword(uuid);
    const controller = new AbortController();
    this.#rescuePasswords.set(uuid, controller);
    const timer = setTimeout(() => controller.abort(), RESCUE_PASSWORD_WAIT_MS);
    timer.unref();
    const guest = new Guest(api, dom, { signal: controller.signal });
    setFirstBootPassword(guest, deliver.instance, deliver.password, { signal: controller.signal }, () => this.#ctx(instance, "rescue"))
      .then(
        () => this.#log("info", "rescue password set for root of the rescue system", { instance: uuid }),
        (err: unknown) => {
          // Cancelled (unrescue, destroy, cleanupHost): nothing to say.
          if (this.#rescuePasswords.get(uuid) !== controller) return;
          this.#log("warn", "the rescue password could not be set", {
            instance: uuid,
            reason: err instanceof Error ? err.message : String(err),
          });
        },
      )
      .finally(() => {
        clearTimeout(timer);
        if (this.#rescuePasswords.get(uuid) === controller) this.#rescuePasswords.delete(uuid);
      });
  }

  /**
   * Whether `rescue` can give the rescue system's root its password: Nova writes it into the rescue
   * image (file injection or config drive, which this driver has not); here the one channel is the
   * guest agent, so the instance's definition (its agent channel) and the rescue image must both
   * enable it, over a transport fit for a password. Otherwise the password is not delivered and the
   * log says so, as Nova's rescue goes on without injection: a rescue is not refused for it
   * (ComputeService always generates one).
   */
  #rescuePasswordDelivery(
    instance: Instance,
    rescueImageMeta: ImageMeta,
    password: Secret | undefined,
  ): { readonly instance: Instance; readonly password: Secret } | undefined {
    if (password === undefined) return undefined;
    const rescueSystem: Instance = { ...instance, imageMeta: rescueImageMeta };
    const agentIn = (meta: ImageMeta): boolean => imagePropertyTrue(meta.properties.hw_qemu_guest_agent);
    let reason: string | undefined;
    if (!agentIn(instance.imageMeta)) reason = "the instance's image enables no QEMU guest agent, so its definition has no agent channel";
    else if (!agentIn(rescueImageMeta)) reason = "the rescue image does not enable the QEMU guest agent (hw_qemu_guest_agent)";
    else {
      try {
        checkFirstBootPassword(this.virtType, this.#options.uri, this.#options.allowPasswordOverTcp ?? false, rescueSystem);
      } catch (err) {
        reason = err instanceof Error ? err.message : String(err);
      }
    }
    if (reason !== undefined) {
      this.#log("warn", "the rescue password cannot be delivered; the rescue goes on without it", { instance: instance.uuid, reason });
      return undefined;
    }
    return { instance: rescueSystem, password };
  }

  async unrescue(instance: Instance, options?: OperationOptions): Promise<void> {
    this.#requireCapability("rescue");
    this.#cancelRescuePassword(instance?.uuid);
    return this.#run(
      "unrescue",
      instance,
      options,
      async (api, call) => {
        const guest = this.#guest(api, instance, call);
        const facts = readDomainXml(await api.domainGetXmlDesc(guest.dom, Flags.XML_INACTIVE, call));
        if (facts.rescueOriginalXml === undefined) throw this.#invalid(instance, "unrescue", await guest.status());
        await this.#consoles.closeAndWait(instance.uuid, CONSOLE_CLOSE_WAIT_MS, call.signal);
        await guest.destroy(instance.uuid);
        const restored = new Guest(api, await api.domainDefineXml(facts.rescueOriginalXml, 0, call), call);
        await this.#start(restored, instance.uuid);
        await this.#storage.delete(api, instanceVolumeNames(instance.uuid).rescue, call);
      },
      this.#longTimeout(),
    );
  }

  // ---------------------------------------------------------------------------------------------
  // image snapshot

  async snapshot(instance: Instance, imageId: string, options?: ImageSnapshotOptions): Promise<void> {
    const images = this.#options.imageService;
    if (!images) throw new UnsupportedOperationError("imageSnapshot", DRIVER, { detail: "no image service" });
    this.#requireCapability("imageSnapshot", "the hypervisor cannot download volumes");
    validateImageId(imageId);
    return this.#run(
      "snapshot",
      instance,
      options,
      async (api, call) => {
        const guest = this.#guest(api, instance, call);
        const method = await snapshotToImage(
          {
            guest,
            instance,
            imageId,
            images,
            storage: this.#storage,
            virtType: this.virtType,
            ...(this.#options.nonInheritableImageProperties !== undefined
              ? { nonInheritableProperties: this.#options.nonInheritableImageProperties }
              : {}),
            ...(options?.onTaskState ? { onTaskState: options.onTaskState } : {}),
            ...(options?.onSnapshotMethod ? { onMethod: options.onSnapshotMethod } : {}),
            restart: async (paused) => {
              this.#consoles.close(instance.uuid);
              await this.#start(guest, instance.uuid, paused);
            },
            beforeStop: () => this.#consoles.closeAndWait(instance.uuid, CONSOLE_CLOSE_WAIT_MS, call.signal),
            log: (level, message, fields) => this.#log(level, message, fields),
          },
          call,
        );
        this.#log("info", "snapshot image upload complete", { instance: instance.uuid, imageId, method });
      },
      this.#longTimeout(),
    );
  }

  // ---------------------------------------------------------------------------------------------
  // instance snapshots

  async createInstanceSnapshot(
    instance: Instance,
    name: string,
    options?: OperationOptions & { readonly description?: string },
  ): Promise<InstanceSnapshot> {
    this.#requireCapability("instanceSnapshots");
    validateInstanceSnapshotInput(name, options);
    return this.#run(
      "create instance snapshot",
      instance,
      options,
      async (api, call) => {
        const guest = this.#guest(api, instance, call);
        const dom = guest.dom;
        await this.#refuseSnapshotWhile(guest, instance, "create instance snapshot", true);
        const desc: SnapshotDescription = {
          virtkit: 1,
          name,
          createdAt: new Date().toISOString(),
          ...(options?.description !== undefined ? { description: options.description } : {}),
        };
        const snap = await api.domainSnapshotCreateXml(
          dom,
          buildSnapshotXml(randomUUID(), JSON.stringify(desc)),
          0,
          call,
        );
        return toInstanceSnapshot(instance, snap, await api.domainSnapshotGetXmlDesc(snap, 0, call));
      },
      this.#longTimeout(),
    );
  }

  async listInstanceSnapshots(instance: Instance, options?: OperationOptions): Promise<readonly InstanceSnapshot[]> {
    this.#requireCapability("instanceSnapshots");
    return this.#run("list instance snapshots", instance, options, async (api, call) => {
      const { dom } = this.#guest(api, instance, call);
      const snaps = await api.domainListAllSnapshots(dom, 0, call);
      const out = await mapLimited(snaps, DAEMON_FANOUT, async (s) =>
        toInstanceSnapshot(instance, s, await api.domainSnapshotGetXmlDesc(s, 0, call)),
      );
      return out.sort((a, b) => a.createdAt.localeCompare(b.createdAt));
    });
  }

  async #snapshotByID(api: LibvirtApi, instance: Instance, id: string, call: CallOptions): Promise<DomainSnapshot> {
    const { dom } = this.#guest(api, instance, call);
    try {
      return await api.domainSnapshotLookupByName(dom, id, 0, call);
    } catch (err) {
      if (isNoDomainSnapshot(err)) {
        throw mapLibvirtError(err, this.#ctx(instance, "look up snapshot", { snapshotId: id }));
      }
      throw err;
    }
  }

  /**
   * Instance snapshots are refused while rescued (the snapshot would hold the rescue definition, a
   * revert would leave rescue behind its back) and, for `create`, while suspended (libvirt snapshots
   * the disk of a managed-saved domain as shut off: a revert would not bring back what was saved).
   */
  async #refuseSnapshotWhile(guest: Guest, instance: Instance, operation: string, create: boolean): Promise<void> {
    const [xml, status] = await Promise.all([
      guest.api.domainGetXmlDesc(guest.dom, Flags.XML_INACTIVE, guest.call),
      create ? guest.status() : undefined,
    ]);
    if (readDomainXml(xml).rescueOriginalXml !== undefined)
      throw new InvalidStateError(instance.uuid, operation, "RESCUED");
    if (status?.power === PowerState.SUSPENDED) throw this.#invalid(instance, operation, status);
  }

  async revertToInstanceSnapshot(instance: Instance, snapshotId: string, options?: OperationOptions): Promise<void> {
    this.#requireCapability("instanceSnapshots");
    validateSnapshotId(snapshotId);
    return this.#run(
      "revert to instance snapshot",
      instance,
      options,
      async (api, call) => {
        const snap = await this.#snapshotByID(api, instance, snapshotId, call);
        await this.#refuseSnapshotWhile(
          this.#guest(api, instance, call),
          instance,
          "revert to instance snapshot",
          false,
        );
        await api.domainRevertToSnapshot(snap, 0, call);
      },
      this.#longTimeout(),
    );
  }

  async deleteInstanceSnapshot(instance: Instance, snapshotId: string, options?: OperationOptions): Promise<void> {
    this.#requireCapability("instanceSnapshots");
    validateSnapshotId(snapshotId);
    return this.#run(
      "delete instance snapshot",
      instance,
      options,
      async (api, call) => {
        const snap = await this.#snapshotByID(api, instance, snapshotId, call);
        await api.domainSnapshotDelete(snap, 0, call);
      },
      this.#longTimeout(),
    );
  }

  // ---------------------------------------------------------------------------------------------
  // admin password

  async setAdminPassword(instance: Instance, password: Secret, options?: OperationOptions): Promise<void> {
    validateAdminPassword(password);
    checkCanSetAdminPassword(this.virtType, instance);
    checkPasswordTransport(this.#options.uri, this.#options.allowPasswordOverTcp ?? false);
    const user = adminUser(instance);
    validateUuid(instance.uuid, "instance.uuid");
    return withDeadline("set admin password", options, this.#timeoutMs, async (signal) => {
      const call: CallOptions = { signal };
      const secret = password.reveal();
      const secrets = [secret];
      const ctx = (): ErrorContext => this.#ctx(instance, "set admin password", { secrets });
      let guest: Guest;
      try {
        guest = this.#guest(await this.#api(signal), instance, call);
        const status = await guest.status();
        if (status.power !== PowerState.RUNNING) throw new InstanceNotRunningError(instance.uuid);
      } catch (err) {
        if (err instanceof VirtkitError) throw err;
        throw mapLibvirtError(err, ctx());
      }
      try {
        await guest.api.domainSetUserPassword(guest.dom, user, secret, 0, call);
      } catch (err) {
        throw passwordError(instance, user, err, ctx());
      }
    });
  }

  // ---------------------------------------------------------------------------------------------
  // live migration (live-migration.ts)

  planMigration(policy: MigrationPolicy, facts?: MigrationHostFacts): MigrationPlan {
    return this.#migrations.plan(policy, facts);
  }

  /**
   * Live migration (and the parts of `policy` that need more) must be declared: an undeclared one
   * is refused with `UnsupportedOperationError`, like every other undeclared operation.
   */
  #requireMigration(policy?: MigrationPolicy): void {
    const detail = `the ${this.virtType} hypervisor does not support it`;
    this.#requireCapability("liveMigration", detail);
    if (policy?.block) this.#requireCapability("blockMigration", detail);
    if (policy?.tunnelled) this.#requireCapability("tunnelledMigration", detail);
    if (policy?.nativeTls) this.#requireCapability("nativeTlsMigration", detail);
  }

  checkCanLiveMigrateDestination(
    instance: Instance,
    sourceHost: HostInfo,
    policy: MigrationPolicy,
    options?: OperationOptions,
  ): Promise<MigrateData> {
    return this.#migrations.checkDestination(instance, sourceHost, policy, options);
  }

  checkCanLiveMigrateSource(instance: Instance, data: MigrateData, options?: OperationOptions): Promise<MigrateData> {
    return this.#migrations.checkSource(instance, data, options);
  }

  cleanupLiveMigrationDestinationCheck(instance: Instance, data: MigrateData, options?: OperationOptions): Promise<void> {
    return this.#migrations.cleanupDestinationCheck(instance, data, options);
  }

  preLiveMigration(
    instance: Instance,
    data: MigrateData,
    _context?: MigrationContext,
    options?: OperationOptions,
  ): Promise<MigrateData> {
    return this.#migrations.pre(instance, data, options);
  }

  liveMigration(instance: Instance, data: MigrateData, options?: LiveMigrationOptions): Promise<void> {
    return this.#migrations.migrate(instance, data, options);
  }

  postLiveMigrationAtDestination(
    instance: Instance,
    _data: MigrateData,
    _context?: MigrationContext,
    options?: OperationOptions,
  ): Promise<void> {
    return this.#migrations.postAtDestination(instance, options);
  }

  rollbackLiveMigrationAtDestination(
    instance: Instance,
    data: MigrateData,
    _context?: MigrationContext,
    options?: OperationOptions,
  ): Promise<void> {
    return this.#migrations.rollbackAtDestination(instance, data, options);
  }

  liveMigrationAbort(instance: Instance, options?: OperationOptions): Promise<void> {
    return this.#migrations.abort(instance, options);
  }

  liveMigrationForceComplete(instance: Instance, options?: OperationOptions): Promise<void> {
    return this.#migrations.forceComplete(instance, options);
  }

  // ---------------------------------------------------------------------------------------------
  // events

  registerEventListener(listener: LifecycleListener): () => void {
    this.#listeners.add(listener);
    return () => {
      this.#listeners.delete(listener);
    };
  }

  #onEvent(e: DomainLifecycleEvent): void {
    // Every event carries the domain as it is now (its id changes with each start).
    const known = this.#handles.get(e.domain.uuid);
    if (known) {
      if (e.event === DomainEventType.UNDEFINED) this.#handles.delete(e.domain.uuid);
      else this.#handles.set(e.domain.uuid, { ...known, dom: e.domain });
    }
    const transition = toLifecycleTransition(e.event, e.detail);
    if (!transition) return;
    // The pause and resume around attaching the console at start are internal.
    if ((transition === "PAUSED" || transition === "RESUMED") && this.#consoles.isInternal(e.domain.uuid, transition)) {
      return;
    }
    const event = { instanceUuid: e.domain.uuid, transition, host: this.#host, timestamp: Date.now() };
    deliverLifecycleEvent(this.#listeners, event, (err) => this.#log("warn", "lifecycle listener threw", { err }));
  }
}
