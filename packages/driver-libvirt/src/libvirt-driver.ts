/**
 * The libvirt ComputeDriver, after Nova's `nova/virt/libvirt/driver.py`: domains defined from
 * generated XML, disks from a storage pool, state read back from libvirt on every call.
 */
import { randomUUID } from "node:crypto";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import {
  AdminPasswordNotSupportedError,
  GuestAgentNotEnabledError,
  GuestAgentUnresponsiveError,
  HypervisorUnavailableError,
  InstanceExistsError,
  InstanceNotFoundError,
  InstanceNotRunningError,
  InvalidStateError,
  LiveMigrationFailedError,
  MigrationPreCheckError,
  OperationAbortedError,
  OperationTimeoutError,
  PasswordSetFailedError,
  PowerOffFailureError,
  PowerState,
  TaskState,
  UnsupportedOperationError,
  VirtkitError,
  powerStateName,
  sleep,
  snapshotImageMetadata,
  withDeadline,
  type Capabilities,
  type Capability,
  type ComputeDriver,
  type DestroyOptions,
  type DiskFormat,
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
  type Secret,
  type SpawnRequest,
  redactOptions,
} from "@virtkit/core";
import {
  DomainJobType,
  DomainState,
  Flags,
  VirErrorNumber as E,
  isNoDomain,
  isNoDomainSnapshot,
  isNoStoragePool,
  isNoStorageVol,
  type CallOptions,
  type Domain,
  type DomainLifecycleEvent,
  type DomainSnapshot,
  type EventSubscription,
  type StoragePool,
  type StorageVol,
  type TypedParam,
} from "@virtkit/libvirt-rpc";
import { libvirtCapabilities } from "./capabilities.js";
import { ConsoleCapture } from "./console-capture.js";
import {
  buildDirPoolXml,
  buildDomainXml,
  buildSnapshotXml,
  buildVolumeXml,
  readDomainXml,
  readSnapshotXml,
  VIRTKIT_XMLNS,
  type DiskSpec,
} from "./domain-xml.js";
import { libvirtMessage, mapLibvirtError, redact, virErrorCode, type ErrorContext } from "./error-map.js";
import { toLifecycleTransition } from "./lifecycle-events.js";
import { openRpcConnection, type LibvirtApi, type LibvirtConnector } from "./libvirt-connection.js";
import { VIR_MIGRATE, planMigration } from "./migration-flags.js";
import { liveMigrationUri, migrateUri } from "./migration-uri.js";
import { toPowerState } from "./power-state-map.js";
import { imagePropertyTrue, validateInstance } from "./validate.js";
import { parseXml, serializeXml, type XmlElement } from "./xml.js";

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
}

/** The virt type a URI implies: its scheme before `+` (`qemu` stays `qemu`: TCG works everywhere). */
export function virtTypeFromUri(uri: string): string {
  const m = /^([a-z][a-z0-9]*)(\+[a-z0-9]+)?:/i.exec(uri);
  const scheme = (m?.[1] ?? "qemu").toLowerCase();
  if (scheme === "xenmigr") return "xen";
  if (scheme === "vz") return "parallels";
  return scheme;
}

const DRIVER = "libvirt";
const DEFAULT_TIMEOUT_MS = 60_000;
const LONG_TIMEOUT_MS = 300_000;
const GiB = 1024 ** 3;
/** Nova's MAX_CONSOLE_BYTES. */
const MAX_CONSOLE_BYTES = 100 * 1024;
/** VIR_DOMAIN_SNAPSHOT_DELETE_METADATA_ONLY. */
const SNAPSHOT_DELETE_METADATA_ONLY = 2;
/** EBUSY, as libvirt reports a process that would not die (int1 of VIR_ERR_SYSTEM_ERROR). */
const EBUSY = 16;
const RESCUE_SUFFIX = ".rescue";
/** How long after a boot `getConsoleOutput` waits for the console's first whole line. */
const CONSOLE_BOOT_WAIT_MS = 3000;
/** How long after the resume of a paused start its PAUSED/RESUMED events are still swallowed. */
const QUIET_START_MS = 5000;

interface DomainStatus {
  readonly domainState: number;
  readonly power: PowerState;
  readonly managedSave: boolean;
}

interface SnapshotDescription {
  readonly virtkit: 1;
  readonly name: string;
  readonly createdAt: string;
  readonly description?: string;
}

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
  #conn: LibvirtApi | undefined;
  #connecting: Promise<LibvirtApi> | undefined;
  #subscription: EventSubscription | undefined;
  #host = "";
  #pool: StoragePool | undefined;
  #closed = false;
  /** VIR_MIGRATE_* bitmask of each migration this driver is running, by instance uuid. */
  readonly #activeMigrations = new Map<string, number>();
  /** Console captures (console streams into ring buffers) by instance uuid. */
  readonly #consoles = new Map<string, ConsoleCapture>();
  /** Domains started paused to attach their console: their PAUSED/RESUMED events are internal. */
  readonly #quietStarts = new Map<string, number>();

  constructor(options: LibvirtDriverOptions) {
    this.#options = options;
    this.virtType = options.virtType ?? virtTypeFromUri(options.uri);
    this.#timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.#pollMs = options.pollIntervalMs ?? 200;
  }

  /** Declared per virt type (see `libvirtCapabilities`). */
  get capabilities(): Capabilities {
    return libvirtCapabilities(this.virtType, { consoleLog: this.#options.consoleLogDir !== undefined });
  }

  // ---------------------------------------------------------------------------------------------
  // plumbing

  #log(level: keyof DriverLogger, message: string, fields?: Record<string, unknown>): void {
    this.#options.logger?.[level]?.(message, fields);
  }

  /** The connection URI with any password or secret query value masked, for errors and logs. */
  #safeUri(): string {
    return redactOptions({ uri: this.#options.uri }).uri ?? "";
  }

  #longTimeout(): number {
    return Math.max(this.#timeoutMs, LONG_TIMEOUT_MS);
  }

  async #api(signal?: AbortSignal): Promise<LibvirtApi> {
    if (this.#closed) throw new HypervisorUnavailableError(this.#safeUri(), "the driver was cleaned up");
    if (this.#conn) return this.#conn;
    this.#connecting ??= this.#open(signal).finally(() => {
      this.#connecting = undefined;
    });
    return this.#connecting;
  }

  async #open(signal?: AbortSignal): Promise<LibvirtApi> {
    const connector = this.#options.connector ?? openRpcConnection;
    const keepalive = this.#options.keepaliveIntervalSec;
    try {
      const conn = await connector(this.#options.uri, {
        ...this.#options.connectOptions,
        timeoutMs: this.#timeoutMs,
        connectTimeoutMs: Math.min(this.#timeoutMs, 30_000),
        ...(signal ? { signal } : {}),
        ...(keepalive === undefined
          ? {}
          : { keepalive: keepalive > 0 ? { intervalMs: keepalive * 1000, count: 5 } : false }),
        reconnect: true,
        onListenerError: (err: unknown) => this.#log("warn", "lifecycle listener failed", { err }),
      });
      this.#conn = conn;
      return conn;
    } catch (err) {
      throw new HypervisorUnavailableError(this.#safeUri(), libvirtMessage(err), { cause: err });
    }
  }

  #ctx(instance: Instance | undefined, operation: string, extra: Partial<ErrorContext> = {}): ErrorContext {
    return {
      operation,
      host: this.#host || this.#safeUri(),
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
    let stateName: string | undefined;
    if (instance && virErrorCode(err) === E.VIR_ERR_OPERATION_INVALID && this.#conn) {
      try {
        const dom = await this.#conn.domainLookupByUuid(instance.uuid, { signal });
        stateName = powerStateName((await this.#status(this.#conn, dom, { signal })).power);
      } catch {
        // The state is only for the message.
      }
    }
    return mapLibvirtError(err, this.#ctx(instance, operation, stateName ? { stateName } : {}));
  }

  async #lookup(api: LibvirtApi, instance: Instance, call: CallOptions): Promise<Domain> {
    try {
      return await api.domainLookupByUuid(instance.uuid, call);
    } catch (err) {
      if (isNoDomain(err)) throw new InstanceNotFoundError(instance.uuid, { cause: err });
      throw err;
    }
  }

  async #lookupOrNull(api: LibvirtApi, instance: Instance, call: CallOptions): Promise<Domain | null> {
    try {
      return await api.domainLookupByUuid(instance.uuid, call);
    } catch (err) {
      if (isNoDomain(err)) return null;
      throw err;
    }
  }

  async #status(api: LibvirtApi, dom: Domain, call: CallOptions): Promise<DomainStatus> {
    const { state } = await api.domainGetState(dom, 0, call);
    const managedSave = state === DomainState.SHUTOFF ? await api.domainHasManagedSaveImage(dom, 0, call) : false;
    return { domainState: state, power: toPowerState(state, managedSave), managedSave };
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

  /** Polls until `accept(status)` or the signal fires. */
  async #waitFor(
    api: LibvirtApi,
    dom: Domain,
    call: CallOptions,
    accept: (s: DomainStatus) => boolean,
    maxMs = Number.POSITIVE_INFINITY,
  ): Promise<DomainStatus | undefined> {
    const started = Date.now();
    for (;;) {
      const s = await this.#status(api, dom, call);
      if (accept(s)) return s;
      if (Date.now() - started >= maxMs) return undefined;
      await sleep(this.#pollMs, call.signal, "wait for domain state");
    }
  }

  // ---------------------------------------------------------------------------------------------
  // host

  async initHost(host: string, options?: OperationOptions): Promise<void> {
    this.#host = host;
    await this.#run("init host", undefined, options, async (api, call) => {
      // Nova's _test_connection: a cheap call proves the link and the driver.
      await api.connectGetType(call);
      if (!this.#subscription) {
        try {
          this.#subscription = await api.domainEventLifecycleRegister((e) => this.#onEvent(e), call);
        } catch (err) {
          this.#log("warn", "lifecycle events unavailable", { err: libvirtMessage(err) });
        }
      }
    });
  }

  async cleanupHost(_host: string, options?: OperationOptions): Promise<void> {
    const conn = this.#conn;
    const sub = this.#subscription;
    this.#subscription = undefined;
    this.#conn = undefined;
    this.#closed = true;
    this.#listeners.clear();
    for (const capture of this.#consoles.values()) capture.close();
    this.#consoles.clear();
    this.#quietStarts.clear();
    if (!conn) return;
    await withDeadline("cleanup host", options, this.#timeoutMs, async (signal) => {
      try {
        await sub?.unsubscribe({ signal });
      } catch {
        // Closing anyway.
      }
      await conn.close({ signal });
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

  listInstances(options?: OperationOptions): Promise<readonly string[]> {
    return this.#run("list instances", undefined, options, async (api, call) =>
      (await api.connectListAllDomains(0, call)).map((d) => d.name),
    );
  }

  listInstanceUuids(options?: OperationOptions): Promise<readonly string[]> {
    return this.#run("list instance uuids", undefined, options, async (api, call) =>
      (await api.connectListAllDomains(0, call)).map((d) => d.uuid),
    );
  }

  instanceExists(instance: Instance, options?: OperationOptions): Promise<boolean> {
    return this.#run("instance exists", instance, options, async (api, call) => {
      return (await this.#lookupOrNull(api, instance, call)) !== null;
    });
  }

  getInfo(instance: Instance, options?: OperationOptions): Promise<InstanceInfo> {
    return this.#run("get info", instance, options, async (api, call) => {
      const dom = await this.#lookup(api, instance, call);
      const info = await api.domainGetInfo(dom, call);
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
      const dom = await this.#lookup(api, instance, call);
      if (this.#consoleStreams) return this.#capturedConsole(api, instance, dom, call);
      const logPath = readDomainXml(await api.domainGetXmlDesc(dom, 0, call)).consoleLogPath;
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
  async #capturedConsole(api: LibvirtApi, instance: Instance, dom: Domain, call: CallOptions): Promise<string> {
    let capture = this.#consoles.get(instance.uuid);
    let atBoot = true;
    if (!capture || capture.closed) {
      atBoot = false;
      const status = await this.#status(api, dom, call);
      const active = status.power === PowerState.RUNNING || status.power === PowerState.PAUSED;
      // Not running: whatever was captured before it stopped (nothing if it never ran here).
      if (!active) return capture?.text() ?? "";
      // Found running (started elsewhere, or its console was taken over): no FORCE, an operator's
      // interactive session keeps the console.
      capture = (await this.#attachConsole(api, instance, dom, false, call)) ?? capture;
      if (!capture) return "";
    }
    // Right after a boot (console attached at start) the firmware's first line may still be on its way.
    const age = Date.now() - capture.openedAt;
    if (atBoot && age < CONSOLE_BOOT_WAIT_MS) await capture.waitForLine(CONSOLE_BOOT_WAIT_MS - age, call.signal);
    if (call.signal?.aborted) throw call.signal.reason;
    return capture.text().slice(-MAX_CONSOLE_BYTES);
  }

  /**
   * Opens the domain's first console into a new capture (replacing an older one). `force` takes the
   * console over from another session (VIR_DOMAIN_CONSOLE_FORCE). A failure is logged, not thrown:
   * the console is a convenience and must never fail a lifecycle operation.
   */
  async #attachConsole(
    api: LibvirtApi,
    instance: Instance,
    dom: Domain,
    force: boolean,
    call: CallOptions,
  ): Promise<ConsoleCapture | undefined> {
    this.#consoles.get(instance.uuid)?.close();
    try {
      const stream = await api.domainOpenConsole(dom, null, force ? Flags.CONSOLE_FORCE : 0, call);
      if (this.#closed) {
        stream.destroy();
        return undefined;
      }
      const capture = new ConsoleCapture(stream);
      this.#consoles.set(instance.uuid, capture);
      return capture;
    } catch (err) {
      this.#log("warn", "console stream unavailable", { instance: instance.uuid, err: libvirtMessage(err) });
      return undefined;
    }
  }

  #closeConsole(uuid: string, forget = false): void {
    this.#consoles.get(uuid)?.close();
    if (forget) this.#consoles.delete(uuid);
  }

  /**
   * Starts a domain (not paused). With console streams it starts paused, attaches the console
   * (so nothing from the firmware on is lost), then resumes; those internal PAUSED/RESUMED events
   * are not reported.
   */
  async #startRunning(api: LibvirtApi, instance: Instance, dom: Domain, call: CallOptions): Promise<Domain> {
    if (!this.#consoleStreams) return api.domainCreateWithFlags(dom, 0, call);
    this.#quietStarts.set(instance.uuid, Number.POSITIVE_INFINITY);
    try {
      const started = await api.domainCreateWithFlags(dom, Flags.START_PAUSED, call);
      await this.#attachConsole(api, instance, started, true, call);
      await api.domainResume(started, call);
      return started;
    } finally {
      if (this.#quietStarts.has(instance.uuid)) this.#quietStarts.set(instance.uuid, Date.now() + QUIET_START_MS);
    }
  }

  // ---------------------------------------------------------------------------------------------
  // storage

  async #ensurePool(api: LibvirtApi, call: CallOptions): Promise<StoragePool> {
    if (this.#pool) return this.#pool;
    const name = this.#options.pool ?? "default";
    let pool: StoragePool;
    try {
      pool = await api.storagePoolLookupByName(name, call);
    } catch (err) {
      if (!isNoStoragePool(err)) throw err;
      if (this.virtType === "test") {
        // The test hypervisor has its own built-in pool and cannot create directories.
        pool = await api.storagePoolLookupByName("default-pool", call);
      } else {
        const dir = this.#options.poolPath ?? "/var/lib/libvirt/images";
        pool = await api.storagePoolDefineXml(buildDirPoolXml(name, dir), 0, call);
        await api.storagePoolBuild(pool, 0, call).catch(() => undefined);
        await api.storagePoolCreate(pool, 0, call);
        this.#log("info", "created storage pool", { pool: name, dir });
      }
    }
    this.#pool = pool;
    return pool;
  }

  async #volOrNull(api: LibvirtApi, pool: StoragePool, name: string, call: CallOptions): Promise<StorageVol | null> {
    try {
      return await api.storageVolLookupByName(pool, name, call);
    } catch (err) {
      if (isNoStorageVol(err)) return null;
      throw err;
    }
  }

  async #deleteVol(api: LibvirtApi, pool: StoragePool, name: string, call: CallOptions): Promise<void> {
    const vol = await this.#volOrNull(api, pool, name, call);
    if (!vol) return;
    try {
      await api.storageVolDelete(vol, 0, call);
    } catch (err) {
      if (!isNoStorageVol(err)) throw err;
    }
  }

  /** Creates `<uuid>_disk<suffix>`: qcow2 over the image's base volume when the pool has one. */
  async #createDisk(
    api: LibvirtApi,
    instance: Instance,
    imageMeta: ImageMeta,
    suffix: string,
    call: CallOptions,
  ): Promise<DiskSpec> {
    const pool = await this.#ensurePool(api, call);
    await api.storagePoolRefresh(pool, 0, call).catch(() => undefined);
    const name = `${instance.uuid}_disk${suffix}`;
    // A leftover of an earlier failed spawn would make the create fail.
    await this.#deleteVol(api, pool, name, call);
    let backingPath: string | undefined;
    let backingFormat: string | undefined;
    let capacity = instance.flavor.rootGb > 0 ? instance.flavor.rootGb * GiB : Math.max(imageMeta.size ?? 0, GiB);
    if (imageMeta.id !== undefined) {
      // Images are cached in the pool as `image-<id>` (Nova's _base directory, through the storage API).
      const base = await this.#volOrNull(api, pool, `image-${imageMeta.id}`, call);
      if (base) {
        backingPath = await api.storageVolGetPath(base, call);
        backingFormat = imageMeta.diskFormat === "raw" ? "raw" : "qcow2";
        const info = await api.storageVolGetInfo(base, call);
        capacity = Math.max(capacity, Number(info.capacity));
      }
    }
    const vol = await api.storageVolCreateXml(
      pool,
      buildVolumeXml({
        name,
        capacityBytes: capacity,
        format: "qcow2",
        ...(backingPath !== undefined ? { backingPath, backingFormat } : {}),
      }),
      0,
      call,
    );
    return { path: await api.storageVolGetPath(vol, call), format: "qcow2" };
  }

  async #deleteDisks(api: LibvirtApi, instance: Instance, call: CallOptions): Promise<void> {
    let pool: StoragePool;
    try {
      pool = await this.#ensurePool(api, call);
    } catch (err) {
      this.#log("warn", "no storage pool to delete disks from", { err: libvirtMessage(err) });
      return;
    }
    await this.#deleteVol(api, pool, `${instance.uuid}_disk`, call);
    await this.#deleteVol(api, pool, `${instance.uuid}_disk${RESCUE_SUFFIX}`, call);
  }

  #consoleLogPath(instance: Instance): string | undefined {
    const dir = this.#options.consoleLogDir;
    return dir === undefined ? undefined : join(dir, `${instance.uuid}.log`);
  }

  // ---------------------------------------------------------------------------------------------
  // lifecycle

  async spawn(request: SpawnRequest, options?: OperationOptions): Promise<void> {
    const { instance } = request;
    validateInstance(instance);
    const imageMeta = request.imageMeta ?? instance.imageMeta;
    return this.#run(
      "spawn",
      instance,
      options,
      async (api, call) => {
        if (await this.#lookupOrNull(api, instance, call)) throw new InstanceExistsError(instance.uuid);
        const disk = await this.#createDisk(api, instance, imageMeta, "", call);
        const consoleLogPath = this.#consoleLogPath(instance);
        const xml = buildDomainXml({
          virtType: this.virtType,
          instance,
          imageMeta,
          disks: [disk],
          ...(request.networkInfo ? { networkInfo: request.networkInfo } : {}),
          ...(consoleLogPath !== undefined ? { consoleLogPath } : {}),
        });
        let dom: Domain | undefined;
        try {
          dom = await api.domainDefineXml(xml, 0, call);
          dom = await this.#startRunning(api, instance, dom, call);
          await this.#waitFor(api, dom, call, (s) => s.power === PowerState.RUNNING);
        } catch (err) {
          // Leave nothing behind: a half-spawned instance would block the next attempt.
          await this.#cleanupFailedSpawn(api, instance, dom);
          throw err;
        }
        this.#log("info", "instance spawned", { instance: instance.uuid });
      },
      this.#longTimeout(),
    );
  }

  async #cleanupFailedSpawn(api: LibvirtApi, instance: Instance, dom: Domain | undefined): Promise<void> {
    const call: CallOptions = { timeoutMs: 30_000 };
    try {
      if (dom) {
        await api.domainDestroy(dom, 0, call).catch(() => undefined);
        await this.#undefine(api, dom, call);
      }
      this.#closeConsole(instance.uuid, true);
      await this.#deleteDisks(api, instance, call);
    } catch (err) {
      this.#log("warn", "cleanup after a failed spawn failed", { instance: instance.uuid, err: libvirtMessage(err) });
    }
  }

  /** Nova's `_destroy`: tolerant of a missing or already stopped domain. */
  async #destroyDomain(api: LibvirtApi, instance: Instance, dom: Domain, call: CallOptions): Promise<void> {
    // The stream would end with the domain anyway; what it captured stays readable.
    this.#closeConsole(instance.uuid);
    for (let attempt = 1; ; attempt++) {
      try {
        await api.domainDestroy(dom, 0, call);
        return;
      } catch (err) {
        const code = virErrorCode(err);
        if (code === E.VIR_ERR_NO_DOMAIN) return;
        if (code === E.VIR_ERR_OPERATION_INVALID) {
          // "domain is not running": fine when it is indeed shut off.
          const s = await this.#status(api, dom, call).catch(() => undefined);
          if (s === undefined || s.domainState === DomainState.SHUTOFF) return;
        }
        if (code === E.VIR_ERR_OPERATION_TIMEOUT) {
          throw new PowerOffFailureError(instance.uuid, "operation time out", { cause: err });
        }
        if (code === E.VIR_ERR_SYSTEM_ERROR && (err as { remote?: { int1?: number } }).remote?.int1 === EBUSY) {
          // A process stuck in uninterruptible I/O: libvirt gave up waiting; Nova retries up to 6 times.
          if (attempt < 6) continue;
        }
        const mapped = await this.#mapError(err, instance, "destroy", call.signal);
        if (mapped instanceof OperationTimeoutError) {
          throw new PowerOffFailureError(instance.uuid, "operation time out", { cause: err });
        }
        throw mapped;
      }
    }
  }

  /** Nova's `_undefine_domain`: every flag first, then fewer, then by hand. */
  async #undefine(api: LibvirtApi, dom: Domain, call: CallOptions): Promise<void> {
    const all = Flags.UNDEFINE_MANAGED_SAVE | Flags.UNDEFINE_SNAPSHOTS_METADATA;
    for (const flags of [all | Flags.UNDEFINE_NVRAM, all]) {
      try {
        await api.domainUndefine(dom, flags, call);
        return;
      } catch (err) {
        if (isNoDomain(err)) return;
        this.#log("debug", "undefine with flags failed, retrying with fewer", { flags, err: libvirtMessage(err) });
      }
    }
    // Old hypervisor drivers: remove what the flags would have removed, then undefine plainly.
    try {
      if (await api.domainHasManagedSaveImage(dom, 0, call)) await api.domainManagedSaveRemove(dom, 0, call);
      for (const snap of await api.domainListAllSnapshots(dom, 0, call).catch(() => [])) {
        await api.domainSnapshotDelete(snap, SNAPSHOT_DELETE_METADATA_ONLY, call).catch(() => undefined);
      }
      await api.domainUndefine(dom, 0, call);
    } catch (err) {
      if (!isNoDomain(err)) throw err;
    }
  }

  destroy(instance: Instance, options?: DestroyOptions): Promise<void> {
    return this.#run(
      "destroy",
      instance,
      options,
      async (api, call) => {
        const dom = await this.#lookupOrNull(api, instance, call);
        if (dom) {
          await this.#destroyDomain(api, instance, dom, call);
          await this.#undefine(api, dom, call);
        }
        this.#closeConsole(instance.uuid, true);
        if (options?.destroyDisks ?? true) await this.#deleteDisks(api, instance, call);
      },
      this.#longTimeout(),
    ).catch((err: unknown) => {
      if (err instanceof OperationTimeoutError) {
        throw new PowerOffFailureError(instance.uuid, "operation time out", { cause: err });
      }
      throw err;
    });
  }

  async #start(api: LibvirtApi, instance: Instance, dom: Domain, call: CallOptions, paused = false): Promise<Domain> {
    const started = paused
      ? await api.domainCreateWithFlags(dom, Flags.START_PAUSED, call)
      : await this.#startRunning(api, instance, dom, call);
    const want = paused ? PowerState.PAUSED : PowerState.RUNNING;
    await this.#waitFor(api, started, call, (s) => s.power === want || s.power === PowerState.RUNNING);
    return started;
  }

  /** Hard reboot: destroy (tolerantly) and start from the persistent definition. */
  async #hardReboot(api: LibvirtApi, instance: Instance, dom: Domain, call: CallOptions): Promise<void> {
    await this.#destroyDomain(api, instance, dom, call);
    // A fresh boot, not a restore of a suspended image.
    if (await api.domainHasManagedSaveImage(dom, 0, call)) await api.domainManagedSaveRemove(dom, 0, call);
    await this.#start(api, instance, dom, call);
  }

  reboot(instance: Instance, type: RebootType, options?: OperationOptions): Promise<void> {
    const budget = options?.timeoutMs ?? this.#longTimeout();
    return this.#run(
      type === "SOFT" ? "soft reboot" : "hard reboot",
      instance,
      options,
      async (api, call) => {
        const dom = await this.#lookup(api, instance, call);
        if (type === "SOFT") {
          const status = await this.#status(api, dom, call);
          // Nova's _soft_reboot: only a running guest can reboot itself; otherwise go hard.
          if (status.power === PowerState.RUNNING) {
            await api.domainShutdown(dom, 0, call);
            const waitMs = Math.min((this.#options.softRebootTimeoutSec ?? 120) * 1000, budget / 2);
            const down = await this.#waitFor(api, dom, call, (s) => s.domainState === DomainState.SHUTOFF, waitMs);
            if (down) {
              await this.#start(api, instance, dom, call);
              return;
            }
            this.#log("info", "soft reboot timed out, rebooting hard", { instance: instance.uuid });
          }
        }
        await this.#hardReboot(api, instance, dom, call);
      },
      budget,
    );
  }

  powerOff(instance: Instance, options?: PowerOffOptions): Promise<void> {
    const timeoutSec = options?.cleanShutdownTimeoutSec ?? 0;
    const retrySec = Math.max(1, options?.retryIntervalSec ?? 10);
    return this.#run(
      "power off",
      instance,
      options,
      async (api, call) => {
        const dom = await this.#lookup(api, instance, call);
        if (timeoutSec > 0 && (await this.#cleanShutdown(api, dom, timeoutSec, retrySec, call))) return;
        await this.#destroyDomain(api, instance, dom, call);
      },
      Math.max(this.#longTimeout(), timeoutSec * 1000 + this.#timeoutMs),
    );
  }

  /** Nova's `_clean_shutdown`: ask, re-ask every `retrySec`, give up after `timeoutSec`. */
  async #cleanShutdown(
    api: LibvirtApi,
    dom: Domain,
    timeoutSec: number,
    retrySec: number,
    call: CallOptions,
  ): Promise<boolean> {
    const initial = await this.#status(api, dom, call);
    const off = (s: DomainStatus): boolean =>
      s.power === PowerState.SHUTDOWN || s.power === PowerState.CRASHED || s.power === PowerState.SUSPENDED;
    if (off(initial)) return true;
    const deadline = Date.now() + timeoutSec * 1000;
    let nextAsk = 0;
    while (Date.now() < deadline) {
      if (Date.now() >= nextAsk) {
        try {
          await api.domainShutdown(dom, 0, call);
        } catch (err) {
          // The guest may have just gone down between the check and the request.
          if (virErrorCode(err) !== E.VIR_ERR_OPERATION_INVALID) throw err;
        }
        nextAsk = Date.now() + retrySec * 1000;
      }
      if (off(await this.#status(api, dom, call))) return true;
      await sleep(Math.min(1000, this.#pollMs * 5), call.signal, "clean shutdown");
    }
    return false;
  }

  powerOn(instance: Instance, options?: OperationOptions): Promise<void> {
    return this.#run(
      "power on",
      instance,
      options,
      async (api, call) => {
        const dom = await this.#lookup(api, instance, call);
        const status = await this.#status(api, dom, call);
        if (status.power === PowerState.RUNNING) return;
        if (status.power === PowerState.PAUSED) throw this.#invalid(instance, "power on", status);
        if (status.domainState !== DomainState.SHUTOFF) {
          // SHUTDOWN (in progress) or CRASHED: make sure it is off first, as Nova's hard reboot does.
          await this.#destroyDomain(api, instance, dom, call);
        }
        await this.#start(api, instance, dom, call);
      },
      this.#longTimeout(),
    );
  }

  async pause(instance: Instance, options?: OperationOptions): Promise<void> {
    this.#requireCapability("pause");
    return this.#run("pause", instance, options, async (api, call) => {
      const dom = await this.#lookup(api, instance, call);
      const status = await this.#status(api, dom, call);
      // libvirt's suspend of a paused domain may succeed silently: refuse it here.
      if (status.power !== PowerState.RUNNING) throw this.#invalid(instance, "pause", status);
      await api.domainSuspend(dom, call);
    });
  }

  async unpause(instance: Instance, options?: OperationOptions): Promise<void> {
    this.#requireCapability("pause");
    return this.#run("unpause", instance, options, async (api, call) => {
      const dom = await this.#lookup(api, instance, call);
      const status = await this.#status(api, dom, call);
      if (status.power !== PowerState.PAUSED) throw this.#invalid(instance, "unpause", status);
      await api.domainResume(dom, call);
    });
  }

  async suspend(instance: Instance, options?: OperationOptions): Promise<void> {
    this.#requireCapability("suspend");
    return this.#run(
      "suspend",
      instance,
      options,
      async (api, call) => {
        const dom = await this.#lookup(api, instance, call);
        const status = await this.#status(api, dom, call);
        // Nova's suspend: managed save of a running or paused guest.
        if (status.power !== PowerState.RUNNING && status.power !== PowerState.PAUSED) {
          throw this.#invalid(instance, "suspend", status);
        }
        await api.domainManagedSave(dom, 0, call);
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
        const dom = await this.#lookup(api, instance, call);
        const status = await this.#status(api, dom, call);
        if (!(status.domainState === DomainState.SHUTOFF && status.managedSave)) {
          throw this.#invalid(instance, "resume", status);
        }
        // Starting a domain with a managed-save image restores it; the contract resumes to RUNNING.
        const started = await api.domainCreateWithFlags(dom, 0, call);
        const after = await this.#waitFor(api, started, call, (s) => s.power !== PowerState.SHUTDOWN);
        if (after?.power === PowerState.PAUSED) await api.domainResume(started, call);
      },
      this.#longTimeout(),
    );
  }

  async rescue(instance: Instance, rescueImageMeta: ImageMeta, options?: RescueOptions): Promise<void> {
    this.#requireCapability("rescue");
    return this.#run(
      "rescue",
      instance,
      options,
      async (api, call) => {
        const dom = await this.#lookup(api, instance, call);
        const originalXml = await api.domainGetXmlDesc(dom, Flags.XML_INACTIVE | Flags.XML_SECURE, call);
        const facts = readDomainXml(originalXml);
        if (facts.rescueOriginalXml !== undefined) {
          throw new InvalidStateError(instance.uuid, "rescue", "RESCUED");
        }
        const rescueDisk = await this.#createDisk(api, instance, rescueImageMeta, RESCUE_SUFFIX, call);
        const rescueXml = withRescueDisk(originalXml, rescueDisk);
        await this.#destroyDomain(api, instance, dom, call);
        if (await api.domainHasManagedSaveImage(dom, 0, call)) await api.domainManagedSaveRemove(dom, 0, call);
        try {
          const rescued = await api.domainDefineXml(rescueXml, 0, call);
          await this.#start(api, instance, rescued, call);
        } catch (err) {
          // Put the original definition back so the instance is not lost.
          await api.domainDefineXml(originalXml, 0, call).catch(() => undefined);
          throw err;
        }
      },
      this.#longTimeout(),
    );
  }

  async unrescue(instance: Instance, options?: OperationOptions): Promise<void> {
    this.#requireCapability("rescue");
    return this.#run(
      "unrescue",
      instance,
      options,
      async (api, call) => {
        const dom = await this.#lookup(api, instance, call);
        const facts = readDomainXml(await api.domainGetXmlDesc(dom, Flags.XML_INACTIVE, call));
        if (facts.rescueOriginalXml === undefined) {
          const status = await this.#status(api, dom, call);
          throw this.#invalid(instance, "unrescue", status);
        }
        await this.#destroyDomain(api, instance, dom, call);
        const restored = await api.domainDefineXml(facts.rescueOriginalXml, 0, call);
        await this.#start(api, instance, restored, call);
        const pool = await this.#ensurePool(api, call);
        await this.#deleteVol(api, pool, `${instance.uuid}_disk${RESCUE_SUFFIX}`, call);
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
    return this.#run(
      "snapshot",
      instance,
      options,
      async (api, call) => {
        const dom = await this.#lookup(api, instance, call);
        const image = await images.get(imageId, call);
        const facts = readDomainXml(await api.domainGetXmlDesc(dom, 0, call));
        const root = facts.disks[0];
        if (!root) throw new VirtkitError(`instance ${instance.uuid} has no disk to snapshot`);
        const format: DiskFormat = root.format === "raw" ? "raw" : "qcow2";
        const metadata = snapshotImageMetadata(instance, format, image.name);
        const before = await this.#status(api, dom, call);
        await options?.onTaskState?.(TaskState.IMAGE_PENDING_UPLOAD, TaskState.IMAGE_SNAPSHOT);

        // Cold snapshot (Nova's _prepare_domain_for_snapshot): managed save a running or paused
        // guest so its disk is quiescent, copy the disk, then bring the guest back as it was.
        const cold = before.power === PowerState.RUNNING || before.power === PowerState.PAUSED;
        const pool = await this.#ensurePool(api, call);
        const src = await api.storageVolLookupByPath(root.path, call);
        const copyName = `${instance.uuid}_snapshot_${randomUUID().slice(0, 8)}`;
        let copy: StorageVol | undefined;
        try {
          if (cold) await api.domainManagedSave(dom, 0, call);
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
            if (cold) await this.#start(api, instance, dom, call, before.power === PowerState.PAUSED);
          }
          await options?.onTaskState?.(TaskState.IMAGE_UPLOADING, TaskState.IMAGE_PENDING_UPLOAD);
          const stream = await api.storageVolDownload(copy, {}, call);
          try {
            await images.update(imageId, metadata, stream, call);
          } catch (err) {
            stream.destroy(err instanceof Error ? err : undefined);
            throw err;
          }
        } finally {
          if (copy) await api.storageVolDelete(copy, 0, { timeoutMs: 30_000 }).catch(() => undefined);
        }
        this.#log("info", "snapshot image upload complete", { instance: instance.uuid, imageId });
      },
      this.#longTimeout(),
    );
  }

  // ---------------------------------------------------------------------------------------------
  // instance snapshots

  #toInstanceSnapshot(instance: Instance, snap: DomainSnapshot, xml: string): InstanceSnapshot {
    const facts = readSnapshotXml(xml);
    let name = facts.name;
    let createdAt = new Date(facts.creationTime * 1000).toISOString();
    let description = facts.description;
    const parsed = parseSnapshotDescription(facts.description);
    if (parsed) {
      name = parsed.name;
      createdAt = parsed.createdAt;
      description = parsed.description;
    }
    return {
      id: snap.name,
      name,
      instanceUuid: instance.uuid,
      createdAt,
      powerState: snapshotPowerState(facts.state),
      ...(description !== undefined ? { description } : {}),
    };
  }

  async createInstanceSnapshot(
    instance: Instance,
    name: string,
    options?: OperationOptions & { readonly description?: string },
  ): Promise<InstanceSnapshot> {
    this.#requireCapability("instanceSnapshots");
    return this.#run(
      "create instance snapshot",
      instance,
      options,
      async (api, call) => {
        const dom = await this.#lookup(api, instance, call);
        const id = randomUUID();
        const desc: SnapshotDescription = {
          virtkit: 1,
          name,
          createdAt: new Date().toISOString(),
          ...(options?.description !== undefined ? { description: options.description } : {}),
        };
        const snap = await api.domainSnapshotCreateXml(dom, buildSnapshotXml(id, JSON.stringify(desc)), 0, call);
        return this.#toInstanceSnapshot(instance, snap, await api.domainSnapshotGetXmlDesc(snap, 0, call));
      },
      this.#longTimeout(),
    );
  }

  async listInstanceSnapshots(instance: Instance, options?: OperationOptions): Promise<readonly InstanceSnapshot[]> {
    this.#requireCapability("instanceSnapshots");
    return this.#run("list instance snapshots", instance, options, async (api, call) => {
      const dom = await this.#lookup(api, instance, call);
      const snaps = await api.domainListAllSnapshots(dom, 0, call);
      const out = await Promise.all(
        snaps.map(async (s) => this.#toInstanceSnapshot(instance, s, await api.domainSnapshotGetXmlDesc(s, 0, call))),
      );
      return out.sort((a, b) => a.createdAt.localeCompare(b.createdAt));
    });
  }

  async #snapshotByID(api: LibvirtApi, instance: Instance, id: string, call: CallOptions): Promise<DomainSnapshot> {
    const dom = await this.#lookup(api, instance, call);
    try {
      return await api.domainSnapshotLookupByName(dom, id, 0, call);
    } catch (err) {
      if (isNoDomainSnapshot(err)) {
        throw mapLibvirtError(err, this.#ctx(instance, "look up snapshot", { snapshotId: id }));
      }
      throw err;
    }
  }

  async revertToInstanceSnapshot(instance: Instance, snapshotId: string, options?: OperationOptions): Promise<void> {
    this.#requireCapability("instanceSnapshots");
    return this.#run(
      "revert to instance snapshot",
      instance,
      options,
      async (api, call) => {
        const snap = await this.#snapshotByID(api, instance, snapshotId, call);
        await api.domainRevertToSnapshot(snap, 0, call);
      },
      this.#longTimeout(),
    );
  }

  async deleteInstanceSnapshot(instance: Instance, snapshotId: string, options?: OperationOptions): Promise<void> {
    this.#requireCapability("instanceSnapshots");
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

  /** Nova's `_can_set_admin_password`. */
  #checkCanSetAdminPassword(instance: Instance): void {
    // The test hypervisor stands in for a qemu guest: without the agent enabled in the image the
    // domain has no agent channel, so it is refused the same way.
    if (this.virtType === "kvm" || this.virtType === "qemu" || this.virtType === "test") {
      if (!imagePropertyTrue(instance.imageMeta.properties.hw_qemu_guest_agent)) {
        throw new GuestAgentNotEnabledError(instance.uuid);
      }
    } else {
      // The other hypervisors here have no agent path.
      throw new AdminPasswordNotSupportedError(`Set admin password is not supported with virt type ${this.virtType}`);
    }
  }

  async setAdminPassword(instance: Instance, password: Secret, options?: OperationOptions): Promise<void> {
    this.#checkCanSetAdminPassword(instance);
    const user =
      instance.imageMeta.properties.os_admin_user ||
      ((instance.osType ?? instance.imageMeta.properties.os_type) === "windows" ? "Administrator" : "root");
    return withDeadline("set admin password", options, this.#timeoutMs, async (signal) => {
      const call: CallOptions = { signal };
      const secret = password.reveal();
      const secrets = [secret];
      let api: LibvirtApi;
      let dom: Domain;
      try {
        api = await this.#api(signal);
        dom = await this.#lookup(api, instance, call);
        const status = await this.#status(api, dom, call);
        if (status.power !== PowerState.RUNNING) throw new InstanceNotRunningError(instance.uuid);
      } catch (err) {
        if (err instanceof VirtkitError) throw err;
        throw mapLibvirtError(err, this.#ctx(instance, "set admin password", { secrets }));
      }
      try {
        await api.domainSetUserPassword(dom, user, secret, 0, call);
      } catch (err) {
        throw this.#passwordError(instance, user, err, secrets);
      }
    });
  }

  #passwordError(instance: Instance, user: string, err: unknown, secrets: string[]): VirtkitError {
    const mapped = mapLibvirtError(err, this.#ctx(instance, "set admin password", { secrets }));
    const cause = mapped.cause;
    switch (virErrorCode(err)) {
      case E.VIR_ERR_AGENT_UNRESPONSIVE:
        return new GuestAgentUnresponsiveError(instance.uuid, { cause });
      case E.VIR_ERR_OPERATION_INVALID:
        return new InstanceNotRunningError(instance.uuid, { cause });
      case E.VIR_ERR_NO_DOMAIN:
        return new InstanceNotFoundError(instance.uuid, { cause });
      case E.VIR_ERR_NO_SUPPORT:
      case E.VIR_ERR_OPERATION_UNSUPPORTED:
        return new AdminPasswordNotSupportedError(undefined, { cause });
      default:
        break;
    }
    if (mapped instanceof OperationTimeoutError || mapped instanceof OperationAbortedError) return mapped;
    if (mapped instanceof HypervisorUnavailableError || mapped instanceof UnsupportedOperationError) return mapped;
    const reason = redact(
      `error from libvirt while setting the password for user "${user}": [Error Code ${virErrorCode(err) ?? "?"}] ${libvirtMessage(err, secrets)}`,
      secrets,
    );
    return new PasswordSetFailedError(instance.uuid, reason, { cause });
  }

  // ---------------------------------------------------------------------------------------------
  // live migration

  #migrationFacts(facts?: MigrationHostFacts): MigrationHostFacts {
    const qemu = this.virtType === "qemu" || this.virtType === "kvm";
    return { virtType: this.virtType, postCopySupported: qemu, ...facts };
  }

  planMigration(policy: MigrationPolicy, facts?: MigrationHostFacts): MigrationPlan {
    this.#requireMigration(policy);
    return planMigration(policy, this.#migrationFacts(facts));
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

  async checkCanLiveMigrateDestination(
    instance: Instance,
    sourceHost: HostInfo,
    policy: MigrationPolicy,
    options?: OperationOptions,
  ): Promise<MigrateData> {
    this.#requireMigration(policy);
    const plan = this.planMigration(policy);
    return this.#run("check can live migrate destination", instance, options, async (api, call) => {
      const dest = await this.getHostInfo(call);
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
      const pool = await this.#ensurePool(api, call);
      const marker = `.virtkit-shared-${randomUUID()}`;
      await api.storageVolCreateXml(pool, buildVolumeXml({ name: marker, capacityBytes: 0, format: "raw" }), 0, call);
      const destUri = liveMigrationUri(this.#host || dest.hostname, {
        virtType: this.virtType,
        ...(this.#options.liveMigrationScheme ? { scheme: this.#options.liveMigrationScheme } : {}),
        ...(this.#options.liveMigrationUriTemplate ? { template: this.#options.liveMigrationUriTemplate } : {}),
      });
      const mUri = migrateUri(this.#host || dest.hostname, this.virtType);
      return {
        sourceHost: sourceHost.hostname,
        destHost: dest.hostname,
        policy,
        plan,
        extra: {
          destUri,
          ...(mUri !== undefined ? { migrateUri: mUri } : {}),
          sharedMarker: marker,
          destPool: pool.name,
          virtType: this.virtType,
        },
      };
    });
  }

  async checkCanLiveMigrateSource(
    instance: Instance,
    data: MigrateData,
    options?: OperationOptions,
  ): Promise<MigrateData> {
    this.#requireMigration();
    return this.#run("check can live migrate source", instance, options, async (api, call) => {
      const dom = await this.#lookup(api, instance, call);
      const status = await this.#status(api, dom, call);
      if (status.power !== PowerState.RUNNING && status.power !== PowerState.PAUSED) {
        throw new MigrationPreCheckError(
          `instance ${instance.uuid} is ${powerStateName(status.power)}, live migration needs it running`,
        );
      }
      const pool = await this.#ensurePool(api, call);
      await api.storagePoolRefresh(pool, 0, call).catch(() => undefined);
      const marker = String(data.extra.sharedMarker ?? "");
      const shared = marker !== "" && (await this.#volOrNull(api, pool, marker, call)) !== null;
      if (data.policy.block && shared) {
        throw new MigrationPreCheckError("block migration requested but the hosts share storage");
      }
      if (!data.policy.block && !shared) {
        throw new MigrationPreCheckError("the hosts do not share storage: use block migration");
      }
      return { ...data, extra: { ...data.extra, sharedStorage: shared } };
    });
  }

  async #removeMarker(data: MigrateData, call: CallOptions): Promise<void> {
    const marker = data.extra.sharedMarker;
    if (typeof marker !== "string" || marker === "") return;
    const api = await this.#api(call.signal);
    const pool = await this.#ensurePool(api, call);
    await this.#deleteVol(api, pool, marker, call).catch(() => undefined);
  }

  async preLiveMigration(
    instance: Instance,
    data: MigrateData,
    _context?: MigrationContext,
    options?: OperationOptions,
  ): Promise<MigrateData> {
    this.#requireMigration();
    return this.#run("pre live migration", instance, options, async (_api, call) => {
      await this.#removeMarker(data, call);
      return data;
    });
  }

  async liveMigration(instance: Instance, data: MigrateData, options?: LiveMigrationOptions): Promise<void> {
    const fail = (reason: string, cause?: unknown): LiveMigrationFailedError =>
      new LiveMigrationFailedError(instance.uuid, reason, cause === undefined ? undefined : { cause });
    this.#requireMigration();
    return withDeadline("live migration", options, Math.max(this.#longTimeout(), 3_600_000), async (signal) => {
      const call: CallOptions = { signal };
      let api: LibvirtApi;
      let dom: Domain;
      try {
        api = await this.#api(signal);
        dom = await this.#lookup(api, instance, call);
      } catch (err) {
        if (err instanceof VirtkitError) throw err;
        throw mapLibvirtError(err, this.#ctx(instance, "live migration"));
      }
      const bitmask = data.plan.bitmask ?? this.planMigration(data.policy).bitmask ?? 0;
      const params: TypedParam[] = [];
      if (typeof data.extra.migrateUri === "string") {
        params.push({ field: "migrate_uri", type: "string", value: data.extra.migrateUri });
      }
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
      this.#activeMigrations.set(instance.uuid, bitmask);
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
        this.#activeMigrations.delete(instance.uuid);
        signal.removeEventListener("abort", onAbort);
        await monitor;
      }
    });
  }

  postLiveMigrationAtDestination(
    instance: Instance,
    _data: MigrateData,
    _context?: MigrationContext,
    options?: OperationOptions,
  ): Promise<void> {
    return this.#run("post live migration at destination", instance, options, async (api, call) => {
      await this.#lookup(api, instance, call);
    });
  }

  rollbackLiveMigrationAtDestination(
    instance: Instance,
    data: MigrateData,
    _context?: MigrationContext,
    options?: OperationOptions,
  ): Promise<void> {
    return this.#run("rollback live migration at destination", instance, options, async (api, call) => {
      await this.#removeMarker(data, call);
      const dom = await this.#lookupOrNull(api, instance, call);
      if (dom) {
        await this.#destroyDomain(api, instance, dom, call);
        await this.#undefine(api, dom, call);
      }
      // Copied disks belong to this host only after a block migration.
      if (data.policy.block) await this.#deleteDisks(api, instance, call);
    });
  }

  async #activeJob(api: LibvirtApi, instance: Instance, operation: string, call: CallOptions): Promise<Domain> {
    const dom = await this.#lookup(api, instance, call);
    const job = await api.domainGetJobInfo(dom, call);
    if (job.type === DomainJobType.NONE) {
      const status = await this.#status(api, dom, call);
      throw new InvalidStateError(instance.uuid, operation, `${powerStateName(status.power)} (no migration running)`);
    }
    return dom;
  }

  async liveMigrationAbort(instance: Instance, options?: OperationOptions): Promise<void> {
    this.#requireMigration();
    return this.#run("abort live migration", instance, options, async (api, call) => {
      const dom = await this.#activeJob(api, instance, "abort live migration", call);
      await api.domainAbortJob(dom, call);
    });
  }

  async liveMigrationForceComplete(instance: Instance, options?: OperationOptions): Promise<void> {
    this.#requireMigration();
    return this.#run("force complete live migration", instance, options, async (api, call) => {
      const dom = await this.#activeJob(api, instance, "force complete live migration", call);
      // Nova: switch to post-copy when the plan enabled it, else pause the guest so the copy converges.
      const bitmask = this.#activeMigrations.get(instance.uuid) ?? 0;
      if ((bitmask & VIR_MIGRATE.POSTCOPY) !== 0) {
        try {
          await api.domainMigrateStartPostCopy(dom, 0, call);
          this.#log("info", "live migration switched to post-copy", { instance: instance.uuid });
          return;
        } catch (err) {
          if (call.signal?.aborted) throw err;
          this.#log("warn", "post-copy switch refused, pausing instead", { err: libvirtMessage(err) });
        }
      }
      await api.domainSuspend(dom, call);
    });
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
    const transition = toLifecycleTransition(e.event, e.detail);
    if (!transition) return;
    if (transition === "PAUSED" || transition === "RESUMED") {
      const quietUntil = this.#quietStarts.get(e.domain.uuid);
      if (quietUntil !== undefined) {
        if (transition === "RESUMED" || Date.now() > quietUntil) this.#quietStarts.delete(e.domain.uuid);
        // The pause and resume around attaching the console at start are internal.
        if (Date.now() <= quietUntil) return;
      }
    }
    const event = { instanceUuid: e.domain.uuid, transition, host: this.#host, timestamp: Date.now() };
    for (const l of this.#listeners) {
      try {
        l(event);
      } catch (err) {
        this.#log("warn", "lifecycle listener threw", { err });
      }
    }
  }
}

/** Snapshot `<state>` -> the power state a revert restores. */
function snapshotPowerState(state: string): PowerState {
  switch (state) {
    case "running":
    case "blocked":
      return PowerState.RUNNING;
    case "paused":
      return PowerState.PAUSED;
    case "shutdown":
    case "shutoff":
    case "disk-snapshot":
      return PowerState.SHUTDOWN;
    case "crashed":
      return PowerState.CRASHED;
    case "pmsuspended":
      return PowerState.SUSPENDED;
    default:
      return PowerState.NOSTATE;
  }
}

function parseSnapshotDescription(text: string | undefined): SnapshotDescription | undefined {
  if (text === undefined || !text.startsWith("{")) return undefined;
  try {
    const v = JSON.parse(text) as Partial<SnapshotDescription>;
    if (v.virtkit === 1 && typeof v.name === "string" && typeof v.createdAt === "string") {
      return v as SnapshotDescription;
    }
  } catch {
    // A description written by someone else.
  }
  return undefined;
}

/** The original domain XML with `disk` booting first and the original kept in virtkit's metadata. */
export function withRescueDisk(originalXml: string, disk: DiskSpec): string {
  const root = parseXml(originalXml) as MutableXml;
  const devices = root.children.find((c) => c.name === "devices");
  if (!devices) throw new VirtkitError("domain XML has no <devices>");
  const disks = devices.children.filter((c) => c.name === "disk");
  const used = new Set(disks.map((d) => d.children.find((c) => c.name === "target")?.attributes.dev));
  const bus = disks[0]?.children.find((c) => c.name === "target")?.attributes.bus ?? "virtio";
  const prefix = disks[0]?.children.find((c) => c.name === "target")?.attributes.dev?.replace(/[a-z]$/, "") ?? "vd";
  let target = "";
  for (let i = 0; i < 26; i++) {
    target = prefix + String.fromCharCode(97 + i);
    if (!used.has(target)) break;
  }
  // Shift the existing boot orders so the rescue disk boots first.
  for (const d of disks) {
    const boot = d.children.find((c) => c.name === "boot");
    if (boot) boot.attributes.order = String(Number(boot.attributes.order ?? "1") + 1);
  }
  const el = (
    name: string,
    attributes: Record<string, string> = {},
    kids: MutableXml[] = [],
    text = "",
  ): MutableXml => ({
    name,
    attributes,
    children: kids,
    text,
  });
  const rescueDisk = el("disk", { type: "file", device: "disk" }, [
    el("driver", { name: "qemu", type: disk.format }),
    el("source", { file: disk.path }),
    el("target", { dev: target, bus }),
    el("boot", { order: "1" }),
  ]);
  const firstDisk = devices.children.findIndex((c) => c.name === "disk");
  devices.children.splice(firstDisk < 0 ? 0 : firstDisk, 0, rescueDisk);
  let metadata = root.children.find((c) => c.name === "metadata");
  if (!metadata) {
    metadata = el("metadata");
    root.children.splice(Math.min(3, root.children.length), 0, metadata);
  }
  let inst = metadata.children.find((c) => c.name.endsWith(":instance") || c.name === "instance");
  if (!inst) {
    inst = el("virtkit:instance", { "xmlns:virtkit": VIRTKIT_XMLNS });
    metadata.children.push(inst);
  }
  const prefixOf = inst.name.includes(":") ? inst.name.slice(0, inst.name.indexOf(":") + 1) : "";
  inst.children.push(el(`${prefixOf}rescue`, {}, [], originalXml));
  return serializeXml(root) + "\n";
}

interface MutableXml extends XmlElement {
  attributes: Record<string, string>;
  children: MutableXml[];
  text: string;
}
