/**
 * The XenAPI ComputeDriver: Nova's xenapi vmops (seed 001) over {@link XapiClient}. Spawn clones a
 * template, provisions it, gives it a root VDI sized from the flavor with the image imported over
 * HTTP, VBDs and VIFs, memory and vCPUs from the flavor, and starts it on this host. Every power
 * operation is the XAPI call the power-state table allows; XAPI's VM_BAD_POWER_STATE is the
 * contract's InvalidStateError. Rescue is Nova's `<name>-rescue` VM with the instance's disk
 * attached; instance snapshots are VM.snapshot / VM.revert; image snapshots stream the snapshot's
 * VDI into the image service; events come from `event.from`; live migration is VM.pool_migrate
 * inside a pool and VM.migrate_send across pools.
 */
import {
  deliverLifecycleEvent,
  GuestAgentNotEnabledError,
  HypervisorUnavailableError,
  ImageNotFoundError,
  InstanceExistsError,
  InstanceNotFoundError,
  InstanceNotRunningError,
  InvalidInputError,
  InvalidStateError,
  LiveMigrationFailedError,
  MigrationPreCheckError,
  OperationAbortedError,
  OperationTimeoutError,
  PowerState,
  SnapshotNotFoundError,
  TaskState,
  UnsupportedOperationError,
  VirtkitError,
  isSecret,
  powerStateName,
  sleep,
  snapshotImageMetadata,
  throwIfAborted,
  validateFlavor,
  validateImageMeta,
  validateInstanceName,
  validateAdminPassword,
  validateImageId,
  validateInstanceSnapshotInput,
  validateSnapshotId,
  validateUuid,
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
  type LifecycleEvent,
  type LifecycleListener,
  type LifecycleTransition,
  type LiveMigrationOptions,
  type MigrateData,
  type MigrationContext,
  type MigrationHostFacts,
  type MigrationPlan,
  type MigrationPolicy,
  type NetworkInfo,
  type OperationOptions,
  type PowerOffOptions,
  type RebootType,
  type RescueOptions,
  type Secret,
  type SpawnRequest,
  raceSignal,
  timerDelay,
} from "@virtkit/core";
import { inflateSync } from "node:zlib";
import { mapXapiError } from "./error-map.js";
import { GuestAgent } from "./guest-agent.js";
import { planXenapiMigration, xapiMigrateOptions } from "./migration-plan.js";
import { VmEventLoop } from "./vm-events.js";
import {
  OC_IMAGE_SNAPSHOT,
  OC_INSTANCE_UUID,
  OC_PAUSED_DOMID,
  OC_RESCUED,
  PAUSED_AT_START,
  OC_RESCUE_OF,
  OC_ROLE,
  OC_SNAPSHOT_POWER,
  OC_SNAPSHOT_TAKEN,
  OC_VDI_ROLE,
  bool,
  effectivePower,
  isOnHost,
  num,
  refs,
  str,
  strMap,
  toPowerState,
  vmKind,
  type XapiRecord,
} from "./vm-record.js";
import { XapiClient, isNullRef, type XapiClientOptions } from "./xapi-client.js";
import { isXapiError } from "./xapi-error.js";
import type { XapiValue } from "./xml-rpc.js";

/** A structured logger (core's Logger fits). */
export interface DriverLogger {
  debug(msg: string, fields?: Readonly<Record<string, unknown>>): void;
  info(msg: string, fields?: Readonly<Record<string, unknown>>): void;
  warn(msg: string, fields?: Readonly<Record<string, unknown>>): void;
  error(msg: string, fields?: Readonly<Record<string, unknown>>): void;
}

/** Options of a {@link XenapiDriver}. */
export interface XenapiDriverOptions {
  /** The pool (or any pool member: HOST_IS_SLAVE is followed), e.g. `https://xenserver-1`. */
  readonly url?: string;
  readonly username?: string;
  /** The password, or how to get it when the host is first contacted (environment or prompt). */
  readonly password?: Secret | (() => Promise<Secret>);
  /**
   * Instead of url/username/password: where to connect, found at initHost (the plugin starts the
   * embedded simulator this way when no url is given); `close` runs at cleanupHost.
   */
  readonly target?: () => Promise<XenapiTarget>;
  /** Skip TLS certificate verification (default false). */
  readonly insecure?: boolean;
  /** Allows `http://` to a host (or pool master) that is not this machine's loopback (default false). */
  readonly allowHttp?: boolean;
  /** Default deadline of a contract call in ms (default 120 s). */
  readonly timeoutMs?: number;
  readonly protocol?: "auto" | "json-rpc" | "xml-rpc";
  /** The XAPI host this driver manages (name label, hostname or uuid); default: `initHost`'s name, else the master. */
  readonly xapiHost?: string;
  /** The template instances are cloned from (default `Other install media`). */
  readonly template?: string;
  /** The network VIFs go to when networkInfo names none the pool has (bridge or name label). */
  readonly network?: string;
  /** Seconds a soft reboot waits for the guest before going hard (default 60). */
  readonly softRebootTimeoutSec?: number;
  /** Default seconds the guest agent may take for one call (default 30). */
  readonly agentTimeoutSec?: number;
  readonly imageService?: ImageService;
  readonly logger?: DriverLogger;
  /** Runs before every XAPI call (the conformance environment injects latency here). */
  readonly beforeCall?: XapiClientOptions["beforeCall"];
}

/** A XAPI endpoint with its credentials. */
export interface XenapiTarget {
  readonly url: string;
  readonly username: string;
  readonly password: Secret;
  close?(): Promise<void>;
}

/** What this driver implements, all of it against XAPI. */
export const XENAPI_CAPABILITIES: Capabilities = Object.freeze({
  pause: true,
  suspend: true,
  rescue: true,
  softReboot: true,
  consoleOutput: true,
  imageSnapshot: true,
  instanceSnapshots: true,
  setAdminPassword: true,
  liveMigration: true,
  blockMigration: true,
  tunnelledMigration: false,
  nativeTlsMigration: false,
  postCopy: false,
  autoConverge: false,
  // XAPI's pool_migrate / migrate_send accept Running VMs only (xapi_vm_lifecycle.ml), there is no
  // force-complete (Nova's support matrix: "missing"), and the agent's password command names no
  // account (nova-agent sets root, or Administrator on Windows).
  pausedMigration: false,
  forceCompleteMigration: false,
  adminPasswordAnyUser: false,
  lifecycleEvents: true,
});

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
const DEFAULT_TEMPLATE = "Other install media";
/**
 * Connections to XAPI per driver: Nova kept 5 concurrent XenAPI sessions (`connection_concurrent`),
 * plus one for the event long poll and two to spare. Calls beyond them queue on the client rather
 * than open (and later close) a connection each, which costs the host and this process more than
 * the short wait.
 */
const DRIVER_SOCKETS = 8;

/** One VM the driver found: its ref and the record read in the same breath. */
interface Vm {
  readonly ref: string;
  readonly rec: XapiRecord;
}

/** What the driver reads of the pool once. */
interface PoolFacts {
  readonly master: string;
  readonly defaultSr: string;
  readonly networks: readonly { readonly ref: string; readonly rec: XapiRecord }[];
}

/** The data `checkCanLiveMigrateDestination` puts into MigrateData.extra. */
interface MigrateExtra {
  readonly mode: "pool" | "cross-pool";
  readonly destHostRef: string;
  readonly destHostUuid: string;
  /** Cross-pool: host.migrate_receive's map, base64 JSON. Holds a session ref: the key name makes loggers redact it. */
  readonly receiveToken?: string;
  readonly destSr?: string;
  readonly destNetwork?: string;
}

/** The XenAPI driver. */
export class XenapiDriver implements ComputeDriver {
  readonly name = "xenapi";
  readonly capabilities: Capabilities = XENAPI_CAPABILITIES;

  readonly #options: XenapiDriverOptions;
  readonly #timeoutMs: number;
  #client: XapiClient | undefined;
  #events: VmEventLoop | undefined;
  #hostRef = "";
  /** The host has no get_all_records_where (MESSAGE_METHOD_UNKNOWN once): listings ask for every record. */
  #noFilter = false;
  #hostRec: XapiRecord = {};
  /** The name `initHost` was given: events carry it. */
  #hostLabel = "";
  /** Whether a refused RRD read (a role without it, an old host) was logged already. */
  #rrdRefusedLogged = false;
  #template: Vm | undefined;
  /** The pool's master, default SR and networks, read once when first needed. */
  #poolFactsRead: Promise<PoolFacts> | undefined;
  readonly #listeners = new Set<LifecycleListener>();
  readonly #spawning = new Map<string, Promise<void>>();
  /** Running migration tasks by instance uuid, for liveMigrationAbort. */
  readonly #migrations = new Map<string, Promise<string>>();
  /** Each running liveMigration's end (settled either way), for a destroy that stops it first. */
  readonly #migrationEnds = new Map<string, Promise<void>>();
  #closed = false;
  #closeTarget: (() => Promise<void>) | undefined;
  /** The init under way or done (one at a time). */
  #init: { readonly host: string; done: Promise<void> } | undefined;
  /** The closing of failed inits' clients and targets (cleanupHost waits for them). */
  readonly #abandoned: Promise<void>[] = [];
  /** Failed spawns' VMs being removed, by instance uuid (a spawn or destroy of it waits for that). */
  readonly #removals = new Map<string, Promise<void>>();

  constructor(options: XenapiDriverOptions) {
    this.#options = options;
    this.#timeoutMs = options.timeoutMs ?? 120_000;
  }

  /** The host name initHost was given. */
  get hostLabel(): string {
    return this.#hostLabel;
  }

  /** True once cleanupHost ran. */
  get isCleanedUp(): boolean {
    return this.#closed;
  }

  // -- host --

  async initHost(host: string, options?: OperationOptions): Promise<void> {
    if (typeof host !== "string" || host.length === 0) throw new InvalidInputError("host", "must be a host name");
    await this.#run("initHost", options, undefined, async (signal) => {
      if (this.#closed) throw new HypervisorUnavailableError(host, "the driver was cleaned up (cleanupHost)");
      // One init at a time: a second call for the same host (a service's init after the caller's
      // own, or at once beside it) waits for the first, done or under way; another host is refused.
      if (this.#init && this.#init.host !== host) throw new InvalidStateError(host, "initHost", "already initialised");
      if (!this.#init) {
        const init: { host: string; done: Promise<void> } = { host, done: Promise.resolve() };
        init.done = this.#initHost(host, signal).catch((err: unknown) => {
          if (this.#init === init) this.#init = undefined;
          this.#abandonInit();
          throw err;
        });
        init.done.catch(() => undefined);
        this.#init = init;
      }
      await raceSignal(this.#init.done, signal);
    });
  }

  /**
   * A failed (or timed out) init leaves nothing behind: its client, event loop and target are
   * closed (cleanupHost waits for that within its deadline), and the next initHost starts afresh.
   */
  #abandonInit(): void {
    const client = this.#client;
    const events = this.#events;
    const closeTarget = this.#closeTarget;
    this.#client = undefined;
    this.#events = undefined;
    this.#closeTarget = undefined;
    this.#hostLabel = "";
    // A login still on the wire is not waited for: the init failed, its session is not wanted.
    this.#abandoned.push(
      Promise.allSettled([events?.stop(), client?.close({ timeoutMs: 100 }), closeTarget?.()]).then(() => undefined),
    );
  }

  async #initHost(host: string, signal: AbortSignal): Promise<void> {
    const target = await this.#target();
    const client = new XapiClient({
      url: target.url,
      username: target.username,
      password: target.password,
      insecure: this.#options.insecure,
      ...(this.#options.allowHttp !== undefined ? { allowHttp: this.#options.allowHttp } : {}),
      protocol: this.#options.protocol,
      timeoutMs: this.#timeoutMs,
      logger: this.#options.logger,
      beforeCall: this.#options.beforeCall,
      maxSockets: DRIVER_SOCKETS,
    });
    this.#client = client;
    this.#hostLabel = host;
    await client.login({ signal });
    // The pool's SR and networks are read when a spawn or a migration first needs them: a
    // driver that only looks (a migration's other end, a service's reader) never asks.
    const hosts = await client.call<Record<string, XapiRecord>>("host.get_all_records", [], { signal });
    const wanted = this.#options.xapiHost ?? host;
    const entries = Object.entries(hosts);
    let match = entries.find(([, r]) => [str(r, "name_label"), str(r, "hostname"), str(r, "uuid")].includes(wanted));
    if (!match && this.#options.xapiHost === undefined) {
      const facts = await this.#poolFacts(signal);
      match = entries.find(([ref]) => ref === facts.master);
    }
    if (!match) {
      throw new InvalidInputError("xapiHost", `no host of the pool is called ${JSON.stringify(wanted)}`);
    }
    [this.#hostRef, this.#hostRec] = match;
    const events = new VmEventLoop(
      client,
      this.#hostRef,
      (uuid, t) => this.#emit(uuid, t),
      (err) => this.#options.logger?.warn("XAPI event loop failed; retrying", { error: describe(err) }),
    );
    try {
      await events.start(signal);
    } catch (err) {
      void events.stop().catch(() => undefined);
      throw err;
    }
    this.#events = events;
  }

  async cleanupHost(_host: string, options?: OperationOptions): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#listeners.clear();
    // One wait within the deadline, before the client goes: failed spawns' VMs still being
    // removed (they need the client) and failed inits' closing.
    const pending = Promise.all([...this.#removals.values(), ...this.#abandoned]);
    await withDeadline("cleanupHost", options, 5_000, (signal) => raceSignal(pending, signal)).catch(() => undefined);
    await this.#events?.stop();
    await this.#client?.close({ timeoutMs: options?.timeoutMs ?? 5_000, signal: options?.signal });
    await this.#closeTarget?.().catch(() => undefined);
  }

  async getHostInfo(options?: OperationOptions): Promise<HostInfo> {
    return this.#run("getHostInfo", options, undefined, async (signal) => {
      const client = this.#ready();
      const [rec, metrics] = await Promise.all([
        client.call<XapiRecord>("host.get_record", [this.#hostRef], { signal }),
        this.#hostMetrics(signal),
      ]);
      const sw = strMap(rec, "software_version");
      const cpu = strMap(rec, "cpu_info");
      return {
        hostname: str(rec, "name_label") || str(rec, "hostname"),
        hypervisorType: "Xen",
        hypervisorVersion: normaliseVersion(sw.xen ?? sw.platform_version ?? sw.product_version ?? "0.0.0"),
        cpuArch: "x86_64",
        vcpus: Math.max(1, Number(cpu.cpu_count ?? 0) || 1),
        // What guests can have: the free memory plus what the guests on it hold (dom0's is no instance's).
        memoryMb: Math.max(1, Math.floor((await this.#guestCapacity(rec, signal, metrics.total)) / MiB)),
      };
    });
  }

  // -- inspection --

  async listInstances(options?: OperationOptions): Promise<readonly string[]> {
    return (await this.#list(options)).map((v) => str(v.rec, "name_label"));
  }

  async listInstanceUuids(options?: OperationOptions): Promise<readonly string[]> {
    return (await this.#list(options)).map((v) => strMap(v.rec, "other_config")[OC_INSTANCE_UUID] ?? "");
  }

  async instanceExists(instance: Instance, options?: OperationOptions): Promise<boolean> {
    validateUuid(instance.uuid);
    return this.#run(
      "instanceExists",
      options,
      instance,
      async (signal) => (await this.#find(instance, signal)) !== undefined,
    );
  }

  async getInfo(instance: Instance, options?: OperationOptions): Promise<InstanceInfo> {
    validateUuid(instance.uuid);
    return this.#run("getInfo", options, instance, async (signal) => {
      const vm = await this.#get(instance, signal);
      // While rescued, the instance runs as its rescue VM.
      const rescue = bool(strMap(vm.rec, "other_config"), OC_RESCUED)
        ? await this.#rescueVm(instance, signal)
        : undefined;
      const live = rescue ?? vm;
      const maxBytes = num(vm.rec, "memory_static_max");
      return {
        state: toPowerState(effectivePower(live.rec)),
        maxMemoryKb: Math.round(maxBytes / 1024),
        memoryKb: Math.round((num(vm.rec, "memory_dynamic_max") || maxBytes) / 1024),
        vcpus: num(vm.rec, "VCPUs_max") || num(vm.rec, "VCPUs_at_startup"),
        cpuTimeNs: await this.#cpuTimeNs(live.rec, signal),
        internalId: live.ref,
      };
    });
  }

  /**
   * The domain's CPU time: the sum of its `cpu<N>` counters in the VM's RRD (Xen's per-vCPU
   * cputime in seconds, which XAPI exposes only as the RRD's last raw value; VM.query_data_source
   * and VM_metrics.VCPUs_utilisation give rates). No domain (halted, suspended) burns nothing: 0,
   * as libvirt reports for an inactive domain; a new domain counts afresh, as Xen does.
   */
  async #cpuTimeNs(rec: XapiRecord, signal: AbortSignal): Promise<bigint> {
    const state = str(rec, "power_state").toLowerCase();
    if (state !== "running" && state !== "paused") return 0n;
    let values: ReadonlyMap<string, number> | undefined;
    try {
      values = await this.#ready().vmRrdLastValues(str(rec, "uuid"), { signal });
    } catch (err) {
      // A deadline or an unreachable host is getInfo's failure; a host that refuses its RRD (a
      // read-only role, no RRD daemon) is not: the state still answers, CPU time reads 0, said once.
      if (signal.aborted || err instanceof HypervisorUnavailableError) throw err;
      if (!this.#rrdRefusedLogged) {
        this.#rrdRefusedLogged = true;
        this.#options.logger?.warn("the host refused its RRD (/vm_rrd): CPU time reads 0", { error: describe(err) });
      }
      return 0n;
    }
    if (!values) return 0n;
    let seconds = 0;
    for (const [name, v] of values) if (/^cpu\d+$/.test(name) && v > 0) seconds += v;
    return BigInt(Math.round(seconds * 1e9));
  }

  async getConsoleOutput(instance: Instance, options?: OperationOptions): Promise<string> {
    validateUuid(instance.uuid);
    return this.#run("getConsoleOutput", options, instance, async (signal) => {
      const vm = await this.#get(instance, signal);
      const live = bool(strMap(vm.rec, "other_config"), OC_RESCUED)
        ? ((await this.#rescueVm(instance, signal)) ?? vm)
        : vm;
      const domId = num(live.rec, "domid");
      if (str(live.rec, "power_state").toLowerCase() === "halted" || domId < 0) return "";
      // Nova's dom0 plugin: base64 of the zlib-compressed console ring.
      const raw = await this.#ready().call<XapiValue>(
        "host.call_plugin",
        [this.#hostRef, "console", "get_console_log", { dom_id: String(domId) }],
        { signal },
      );
      if (typeof raw !== "string") return "";
      return inflateSync(Buffer.from(raw, "base64")).toString("utf8");
    });
  }

  // -- lifecycle --

  async spawn(request: SpawnRequest, options?: OperationOptions): Promise<void> {
    // Bad input is refused before anything reaches XAPI (callers from JavaScript pass anything).
    if (typeof request !== "object" || request === null) throw new InvalidInputError("request", "must be an object");
    const instance = request.instance;
    validateInstance(instance);
    if (request.imageMeta !== undefined) validateImageMeta(request.imageMeta, "request.imageMeta");
    if (request.adminPassword !== undefined && !isSecret(request.adminPassword)) {
      throw new InvalidInputError("request.adminPassword", "must be a Secret");
    }
    // One spawn per uuid at a time: a second one waits for the first (within its own deadline),
    // then finds the instance there and is refused, or goes ahead if the first failed.
    const before = this.#spawning.get(instance.uuid);
    let release!: () => void;
    const mine = new Promise<void>((r) => (release = r));
    const turn = (before ?? Promise.resolve()).then(() => mine);
    this.#spawning.set(instance.uuid, turn);
    try {
      await this.#run("spawn", options, instance, async (signal) => {
        if (before) await settledOrAborted(before, signal);
        const imageMeta = request.imageMeta ?? instance.imageMeta;
        // Only the guest agent can set a spawn's password here: without one, or for an account the
        // agent cannot set, it is refused before anything is made (the contract: never dropped).
        if (request.adminPassword) {
          if (!agentEnabled(imageMeta)) throw new GuestAgentNotEnabledError(instance.uuid);
          checkAgentAccount(instance, imageMeta);
        }
        await this.#afterRemoval(instance.uuid, signal);
        // Asked alongside the look-up: a disk a destroy with destroyDisks: false kept is booted.
        const kept = this.#keptRootDisk(instance.uuid, signal);
        kept.catch(() => undefined);
        if (await this.#find(instance, signal, true)) throw new InstanceExistsError(instance.uuid);
        const { ref, keptDisk } = await this.#createVm(instance, imageMeta, request.networkInfo, "instance", signal, kept);
        await this.#client!.callAsync("VM.start_on", [ref, this.#hostRef, false, false], { signal }).catch((err: unknown) => {
          // A start that failed or was cut short: the VM never ran as the instance, and goes (a
          // kept disk it booted stays kept).
          this.#removeFailedSpawn(instance.uuid, ref, keptDisk ? "keep-disks" : "all");
          throw err;
        });
        if (request.adminPassword)
          await this.#injectPassword(instance, imageMeta, request.adminPassword, signal, "spawn");
      });
    } finally {
      release();
      if (this.#spawning.get(instance.uuid) === turn) this.#spawning.delete(instance.uuid);
    }
  }

  async destroy(instance: Instance, options?: DestroyOptions): Promise<void> {
    validateUuid(instance.uuid);
    await this.#run("destroy", options, instance, async (signal) => {
      // A migration of this instance in progress: XAPI refuses the shutdown while pool_migrate
      // runs (OTHER_OPERATION_IN_PROGRESS), so its task is cancelled first (XAPI leaves the VM
      // where it was, and liveMigration fails typed), then the instance goes as usual.
      const moving = this.#migrations.get(instance.uuid);
      const ended = this.#migrationEnds.get(instance.uuid);
      if (moving && ended) {
        await settledOrAborted(moving, signal);
        const task = await moving;
        if (task)
          await this.#ready()
            .call("task.cancel", [task], { signal })
            .catch(() => undefined);
        await settledOrAborted(ended, signal);
      }
      await this.#afterRemoval(instance.uuid, signal);
      const vm = await this.#find(instance, signal);
      if (!vm) {
        if (options?.destroyDisks !== false) await this.#destroyKeptDisks(instance.uuid, signal);
        return;
      }
      if (bool(strMap(vm.rec, "other_config"), OC_RESCUED)) {
        const rescue = await this.#rescueVm(instance, signal);
        if (rescue) await this.#destroyVm(rescue, "rescue", signal);
      }
      await Promise.all(refs(vm.rec, "snapshots").map((snap) => this.#destroySnapshot(snap, signal)));
      await this.#destroyVm(vm, options?.destroyDisks === false ? "keep-disks" : "all", signal);
    });
  }

  async reboot(instance: Instance, type: RebootType, options?: OperationOptions): Promise<void> {
    validateUuid(instance.uuid);
    if (type !== "SOFT" && type !== "HARD") throw new InvalidInputError("type", "must be SOFT or HARD");
    await this.#run("reboot", options, instance, async (signal) => {
      const vm = await this.#notRescued(instance, "reboot", signal);
      const client = this.#ready();
      switch (power(vm)) {
        case "running":
          if (type === "SOFT") {
            const soft = (this.#options.softRebootTimeoutSec ?? 60) * 1000;
            if (await this.#tryWithin(vm.ref, "VM.clean_reboot", soft, signal)) return;
          }
          await client.callAsync("VM.hard_reboot", [vm.ref], { signal });
          return;
        case "paused":
        case "crashed":
          await client.callAsync("VM.hard_reboot", [vm.ref], { signal });
          return;
        case "suspended":
          // XAPI reboots no suspended VM: drop the saved state and boot afresh.
          await client.callAsync("VM.hard_shutdown", [vm.ref], { signal });
          await client.callAsync("VM.start_on", [vm.ref, this.#hostRef, false, false], { signal });
          return;
        default:
          await client.callAsync("VM.start_on", [vm.ref, this.#hostRef, false, false], { signal });
      }
    });
  }

  async powerOff(instance: Instance, options?: PowerOffOptions): Promise<void> {
    validateUuid(instance.uuid);
    seconds(options?.cleanShutdownTimeoutSec, "cleanShutdownTimeoutSec");
    seconds(options?.retryIntervalSec, "retryIntervalSec");
    await this.#run("powerOff", options, instance, async (signal) => {
      const vm = await this.#notRescued(instance, "powerOff", signal);
      const state = power(vm);
      if (state === "halted") return;
      const client = this.#ready();
      const cleanMs = (options?.cleanShutdownTimeoutSec ?? 60) * 1000;
      if (state === "running" && cleanMs > 0) {
        // A clean shutdown still held by an earlier call (its cancel not yet landed) refuses
        // another; XAPI lets hard_shutdown run alongside it, which is where this call goes anyway.
        // Nova's _clean_shutdown_vm: a refused or failed clean shutdown (the guest crashed or was
        // stopped meanwhile) is logged and the power off goes on hard.
        const clean = await this.#tryWithin(vm.ref, "VM.clean_shutdown", cleanMs, signal).catch((err: unknown) => {
          if (!isXapiError(err)) throw err;
          if (!isXapiError(err, "OTHER_OPERATION_IN_PROGRESS")) {
            this.#options.logger?.warn("clean shutdown failed; shutting down hard", { error: describe(err) });
          }
          return false;
        });
        if (clean) return;
      }
      try {
        await client.callAsync("VM.hard_shutdown", [vm.ref], { signal });
      } catch (err) {
        // Nova's hard_shutdown_vm: a VM already halted (by the guest, a clean shutdown that landed
        // after all, or another caller) is what was asked for.
        if (!isXapiError(err, "VM_BAD_POWER_STATE")) throw err;
        const now = await client.call<string>("VM.get_power_state", [vm.ref], { signal }).catch((e: unknown) => {
          if (isXapiError(e, "HANDLE_INVALID")) return "halted";
          throw e;
        });
        if (now !== "Halted") throw err;
      }
    });
  }

  async powerOn(instance: Instance, options?: OperationOptions): Promise<void> {
    validateUuid(instance.uuid);
    await this.#run("powerOn", options, instance, async (signal) => {
      const vm = await this.#notRescued(instance, "powerOn", signal);
      if (power(vm) === "running") return;
      // A preserved crash: XAPI resets the domain in place (it shows Paused, start would refuse).
      if (power(vm) === "crashed") {
        await this.#ready().callAsync("VM.hard_reboot", [vm.ref], { signal });
        return;
      }
      // Paused or suspended: XAPI's own VM_BAD_POWER_STATE says no.
      await this.#ready().callAsync("VM.start_on", [vm.ref, this.#hostRef, false, false], { signal });
    });
  }

  async pause(instance: Instance, options?: OperationOptions): Promise<void> {
    validateUuid(instance.uuid);
    await this.#run("pause", options, instance, async (signal) => {
      const vm = await this.#notCrashed(instance, "pause", signal);
      const client = this.#ready();
      if (power(vm) === "running") await this.#markPaused(vm, signal);
      // From any other state XAPI's own VM_BAD_POWER_STATE says no.
      await client.callAsync("VM.pause", [vm.ref], { signal });
    });
  }

  async unpause(instance: Instance, options?: OperationOptions): Promise<void> {
    validateUuid(instance.uuid);
    await this.#run("unpause", options, instance, async (signal) => {
      const vm = await this.#notCrashed(instance, "unpause", signal);
      const client = this.#ready();
      await client.callAsync("VM.unpause", [vm.ref], { signal });
      await client.call("VM.remove_from_other_config", [vm.ref, OC_PAUSED_DOMID], { signal });
    });
  }

  async suspend(instance: Instance, options?: OperationOptions): Promise<void> {
    await this.#simple("suspend", instance, options, (vm) => ["VM.suspend", [vm.ref]]);
  }

  async resume(instance: Instance, options?: OperationOptions): Promise<void> {
    await this.#simple("resume", instance, options, (vm) => ["VM.resume_on", [vm.ref, this.#hostRef, false, false]]);
  }

  /**
   * Nova's rescue: shut the instance down, bootlock it (`blocked_operations.start`), build
   * `<name>-rescue` from the rescue image with the instance's disk as its second disk, start it.
   */
  async rescue(instance: Instance, rescueImageMeta: ImageMeta, options?: RescueOptions): Promise<void> {
    validateInstance(instance);
    validateImageMeta(rescueImageMeta, "rescueImageMeta");
    if (options?.rescuePassword !== undefined && !isSecret(options.rescuePassword)) {
      throw new InvalidInputError("rescuePassword", "must be a Secret");
    }
    await this.#run("rescue", options, instance, async (signal) => {
      const vm = await this.#notRescued(instance, "rescue", signal);
      const state = power(vm);
      if (state !== "running" && state !== "halted") {
        throw new InvalidStateError(instance.uuid, "rescue", powerStateName(toPowerState(state)));
      }
      const client = this.#ready();
      if (state === "running") await client.callAsync("VM.hard_shutdown", [vm.ref], { signal });
      await client.call("VM.add_to_other_config", [vm.ref, OC_RESCUED, "true"], { signal });
      await client.call("VM.add_to_blocked_operations", [vm.ref, "start", "virtkit: the instance is rescued"], {
        signal,
      });
      try {
        const { ref: rescueRef } = await this.#createVm(instance, rescueImageMeta, undefined, "rescue", signal);
        const root = await this.#rootVdi(vm.rec, signal);
        if (root) await this.#createVbd(rescueRef, root, "1", false, signal);
        await client.callAsync("VM.start_on", [rescueRef, this.#hostRef, false, false], { signal });
        if (options?.rescuePassword) {
          await this.#injectPassword(instance, rescueImageMeta, options.rescuePassword, signal, "rescue", rescueRef);
        }
      } catch (err) {
        await this.#undoRescue(instance, vm.ref).catch(() => undefined);
        throw err;
      }
    });
  }

  /** Nova's unrescue: tear the rescue VM down (its own disk only), release the bootlock, start the instance. */
  async unrescue(instance: Instance, options?: OperationOptions): Promise<void> {
    validateUuid(instance.uuid);
    await this.#run("unrescue", options, instance, async (signal) => {
      const vm = await this.#get(instance, signal);
      if (!bool(strMap(vm.rec, "other_config"), OC_RESCUED)) {
        // Named by its power state, as every refusal (core's InvalidStateError.state).
        throw new InvalidStateError(instance.uuid, "unrescue", powerStateName(toPowerState(power(vm))));
      }
      const rescue = await this.#rescueVm(instance, signal);
      if (rescue) await this.#destroyVm(rescue, "rescue", signal);
      const client = this.#ready();
      await client.call("VM.remove_from_blocked_operations", [vm.ref, "start"], { signal });
      await client.call("VM.remove_from_other_config", [vm.ref, OC_RESCUED], { signal });
      await client.callAsync("VM.start_on", [vm.ref, this.#hostRef, false, false], { signal });
    });
  }

  // -- snapshots --

  /**
   * Nova's xenapi snapshot: VM.snapshot, then the snapshot's root VDI streamed (as VHD, only the
   * written blocks) into the image with core's metadata; the snapshot VM and its VDIs are removed.
   */
  async snapshot(instance: Instance, imageId: string, options?: ImageSnapshotOptions): Promise<void> {
    validateUuid(instance.uuid);
    validateImageId(imageId);
    const images = this.#options.imageService;
    if (!images)
      throw new UnsupportedOperationError("imageSnapshot", this.name, { detail: "no image service configured" });
    await this.#run("snapshot", options, instance, async (signal) => {
      const image = await images.get(imageId, { signal });
      const vm = await this.#notRescued(instance, "snapshot", signal);
      const client = this.#ready();
      await options?.onTaskState?.(TaskState.IMAGE_PENDING_UPLOAD, TaskState.IMAGE_SNAPSHOT);
      const snap = await client.callAsync<string>("VM.snapshot", [vm.ref, `${str(vm.rec, "name_label")}-image`], {
        signal,
      });
      try {
        await client.call("VM.add_to_other_config", [snap, OC_IMAGE_SNAPSHOT, imageId], { signal });
        const snapRec = await client.call<XapiRecord>("VM.get_record", [snap], { signal });
        const vdi = await this.#rootVdi(snapRec, signal);
        if (!vdi) throw new InvalidStateError(instance.uuid, "snapshot", "without a root disk");
        await options?.onTaskState?.(TaskState.IMAGE_UPLOADING, TaskState.IMAGE_PENDING_UPLOAD);
        const data = await client.exportRawVdi(vdi, "vhd", { signal });
        try {
          await images.update(imageId, snapshotImageMetadata(instance, "vhd", image.name), data, { signal });
        } catch (err) {
          // The image service may not have read it at all (an upload aborted while it waited).
          data.close();
          throw err;
        }
      } finally {
        await this.#destroySnapshot(snap, AbortSignal.timeout(30_000)).catch((err: unknown) =>
          this.#options.logger?.warn("could not remove the image snapshot's VM", { error: describe(err) }),
        );
      }
    });
  }

  async createInstanceSnapshot(
    instance: Instance,
    name: string,
    options?: OperationOptions & { readonly description?: string },
  ): Promise<InstanceSnapshot> {
    validateUuid(instance.uuid);
    validateInstanceSnapshotInput(name, options);
    return this.#run("createInstanceSnapshot", options, instance, async (signal) => {
      const vm = await this.#notRescued(instance, "createInstanceSnapshot", signal);
      const client = this.#ready();
      const state = toPowerState(power(vm));
      const taken = new Date().toISOString();
      const snap = await client.callAsync<string>("VM.snapshot", [vm.ref, name], { signal });
      const rec = await client.call<XapiRecord>("VM.get_record", [snap], { signal });
      // One write of the whole map: a mark the snapshot inherited (a VM reverted before) is replaced,
      // where adding a key that exists fails with MAP_DUPLICATE_KEY.
      const oc = {
        ...strMap(rec, "other_config"),
        [OC_SNAPSHOT_POWER]: powerStateName(state),
        [OC_SNAPSHOT_TAKEN]: taken,
      };
      await Promise.all([
        client.call("VM.set_other_config", [snap, oc], { signal }),
        options?.description
          ? client.call("VM.set_name_description", [snap, options.description], { signal })
          : undefined,
      ]);
      return toInstanceSnapshot(instance.uuid, { ...rec, other_config: oc }, options?.description);
    });
  }

  async listInstanceSnapshots(instance: Instance, options?: OperationOptions): Promise<readonly InstanceSnapshot[]> {
    validateUuid(instance.uuid);
    return this.#run("listInstanceSnapshots", options, instance, async (signal) => {
      const vm = await this.#get(instance, signal);
      const client = this.#ready();
      const recs = await Promise.all(
        refs(vm.rec, "snapshots").map((r) =>
          client.call<XapiRecord>("VM.get_record", [r], { signal }).catch(() => undefined),
        ),
      );
      return recs
        .filter((r): r is XapiRecord => r !== undefined && strMap(r, "other_config")[OC_IMAGE_SNAPSHOT] === undefined)
        .map((r) => toInstanceSnapshot(instance.uuid, r))
        .sort((a, b) => Date.parse(a.createdAt) - Date.parse(b.createdAt));
    });
  }

  async revertToInstanceSnapshot(instance: Instance, snapshotId: string, options?: OperationOptions): Promise<void> {
    validateUuid(instance.uuid);
    validateSnapshotId(snapshotId);
    await this.#run("revertToInstanceSnapshot", options, instance, async (signal) => {
      const vm = await this.#notRescued(instance, "revertToInstanceSnapshot", signal);
      const snap = await this.#snapshotOf(instance, vm, snapshotId, signal);
      const client = this.#ready();
      await client.callAsync("VM.revert", [snap.ref], { signal });
      // A disk-only snapshot leaves the VM halted; bring it to the state it was captured in.
      const after = await client.call<XapiRecord>("VM.get_record", [vm.ref], { signal });
      await this.#reassertIdentity(instance, vm.ref, after, signal);
      const want = strMap(snap.rec, "other_config")[OC_SNAPSHOT_POWER] ?? "SHUTDOWN";
      const now = str(after, "power_state").toLowerCase();
      if (want === "SHUTDOWN") {
        if (now !== "halted") await client.callAsync("VM.hard_shutdown", [vm.ref], { signal });
        return;
      }
      if (now === "halted") {
        // Started paused, the domain must carry the pause mark from its first moment (else it reads as crashed).
        if (want === "PAUSED") await this.#setPauseMark(vm.ref, after, PAUSED_AT_START, signal);
        await client.callAsync("VM.start_on", [vm.ref, this.#hostRef, want === "PAUSED", false], { signal });
        if (want === "PAUSED") {
          const rec = await client.call<XapiRecord>("VM.get_record", [vm.ref], { signal });
          await this.#setPauseMark(vm.ref, rec, str(rec, "domid"), signal);
        }
        if (want === "SUSPENDED") await client.callAsync("VM.suspend", [vm.ref], { signal });
      }
    });
  }

  async deleteInstanceSnapshot(instance: Instance, snapshotId: string, options?: OperationOptions): Promise<void> {
    validateUuid(instance.uuid);
    validateSnapshotId(snapshotId);
    await this.#run("deleteInstanceSnapshot", options, instance, async (signal) => {
      const vm = await this.#get(instance, signal);
      const snap = await this.#snapshotOf(instance, vm, snapshotId, signal);
      await this.#destroySnapshot(snap.ref, signal);
    });
  }

  // -- admin password --

  async setAdminPassword(instance: Instance, password: Secret, options?: OperationOptions): Promise<void> {
    validateUuid(instance.uuid);
    validateAdminPassword(password);
    await this.#run("setAdminPassword", options, instance, async (signal) => {
      await this.#setPassword(instance, password, signal, options?.timeoutMs);
    });
  }

  // -- live migration --

  planMigration(policy: MigrationPolicy, _facts?: MigrationHostFacts): MigrationPlan {
    return planXenapiMigration(policy, this.name);
  }

  async checkCanLiveMigrateDestination(
    instance: Instance,
    sourceHost: HostInfo,
    policy: MigrationPolicy,
    options?: OperationOptions,
  ): Promise<MigrateData> {
    validateUuid(instance.uuid);
    if (typeof sourceHost?.hostname !== "string") throw new InvalidInputError("sourceHost", "must be a HostInfo");
    let plan: MigrationPlan;
    try {
      plan = this.planMigration(policy);
    } catch (err) {
      if (err instanceof InvalidInputError) throw new MigrationPreCheckError(err.message, { cause: err });
      throw err;
    }
    return this.#run("checkCanLiveMigrateDestination", options, instance, async (signal) => {
      const client = this.#ready();
      const myName = str(this.#hostRec, "name_label");
      if (sourceHost.hostname === myName) {
        throw new MigrationPreCheckError(`source and destination are the same host (${myName})`);
      }
      const vm = await this.#find(instance, signal, true);
      if (vm && isOnHost(vm.rec, this.#hostRef)) {
        throw new MigrationPreCheckError(`instance ${instance.uuid} is already on host ${myName}`);
      }
      const need = vm ? num(vm.rec, "memory_static_max") : instance.flavor.memoryMb * MiB;
      const free = await this.#freeMemory(signal);
      if (free < need) {
        throw new MigrationPreCheckError(
          `host ${myName} has ${Math.floor(free / MiB)} MiB of free memory, instance ${instance.uuid} needs ${Math.ceil(need / MiB)} MiB`,
        );
      }
      if (policy.bandwidthMiBps > 0) {
        throw new MigrationPreCheckError(
          "XAPI has no migration bandwidth cap: a policy with bandwidthMiBps > 0 cannot be honoured",
        );
      }
      const base = { sourceHost: sourceHost.hostname, destHost: myName, policy: { ...policy }, plan };
      if (vm) {
        // Same pool: shared storage, so pool_migrate; a block migration has nothing to copy.
        if (policy.block)
          throw new MigrationPreCheckError(
            `hosts ${sourceHost.hostname} and ${myName} share storage: no block migration`,
          );
        const extra: MigrateExtra = {
          mode: "pool",
          destHostRef: this.#hostRef,
          destHostUuid: str(this.#hostRec, "uuid"),
        };
        return { ...base, extra: { ...extra } };
      }
      if (!policy.block) {
        throw new MigrationPreCheckError(
          `instance ${instance.uuid} is not in this host's pool: the hosts share no storage, a block migration is required (policy.block)`,
        );
      }
      const facts = await this.#poolFacts(signal);
      const network = pickNetwork(facts, undefined, this.#options.network);
      const receive = await client.call<Record<string, XapiValue>>(
        "host.migrate_receive",
        [this.#hostRef, network, {}],
        { signal },
      );
      const extra: MigrateExtra = {
        mode: "cross-pool",
        destHostRef: this.#hostRef,
        destHostUuid: str(this.#hostRec, "uuid"),
        receiveToken: Buffer.from(JSON.stringify(receive), "utf8").toString("base64"),
        destSr: facts.defaultSr,
        destNetwork: network,
      };
      return { ...base, extra: { ...extra } };
    });
  }

  async checkCanLiveMigrateSource(
    instance: Instance,
    data: MigrateData,
    options?: OperationOptions,
  ): Promise<MigrateData> {
    validateUuid(instance.uuid);
    const extra = readExtra(data);
    return this.#run("checkCanLiveMigrateSource", options, instance, async (signal) => {
      const vm = await this.#get(instance, signal);
      if (bool(strMap(vm.rec, "other_config"), OC_RESCUED))
        throw new MigrationPreCheckError(`instance ${instance.uuid} is rescued`);
      // XAPI's pool_migrate and migrate_send accept a Running VM, never a Paused one: a declared limit.
      if (power(vm) === "paused") {
        throw new UnsupportedOperationError("pausedMigration", this.name, {
          detail: `instance ${instance.uuid} is paused; XAPI migrates running VMs only`,
        });
      }
      if (power(vm) !== "running") throw new MigrationPreCheckError(`instance ${instance.uuid} is not running`);
      if (extra.mode === "cross-pool") {
        const maps = await this.#migrateMaps(vm, extra, signal);
        try {
          await this.#ready().call(
            "VM.assert_can_migrate",
            [vm.ref, receiveMap(extra), data.policy.live, maps.vdi, maps.vif, xapiMigrateOptions(data.plan), {}],
            { signal },
          );
        } catch (err) {
          if (isXapiError(err))
            throw new MigrationPreCheckError(`XAPI refuses the move: ${err.xapiCode}`, { cause: err });
          throw err;
        }
      }
      return data;
    });
  }

  async preLiveMigration(
    instance: Instance,
    data: MigrateData,
    _context?: MigrationContext,
    options?: OperationOptions,
  ): Promise<MigrateData> {
    validateUuid(instance.uuid);
    readExtra(data);
    // XAPI plugs the VIFs and attaches the VDIs itself during the move: nothing to prepare.
    return this.#run("preLiveMigration", options, instance, async () => data);
  }

  async liveMigration(instance: Instance, data: MigrateData, options?: LiveMigrationOptions): Promise<void> {
    validateUuid(instance.uuid);
    const extra = readExtra(data);
    // Known at once (before the first call): an abort or destroy that comes while the VM is still
    // being looked up waits for the task instead of finding "not migrating".
    let resolveTask!: (task: string) => void;
    const taskKnown = new Promise<string>((r) => (resolveTask = r));
    let ended!: () => void;
    const end = new Promise<void>((r) => (ended = r));
    this.#migrations.set(instance.uuid, taskKnown);
    this.#migrationEnds.set(instance.uuid, end);
    try {
      await this.#migrate(instance, data, extra, resolveTask, options);
    } finally {
      resolveTask("");
      ended();
      if (this.#migrations.get(instance.uuid) === taskKnown) this.#migrations.delete(instance.uuid);
      if (this.#migrationEnds.get(instance.uuid) === end) this.#migrationEnds.delete(instance.uuid);
    }
  }

  async #migrate(
    instance: Instance,
    data: MigrateData,
    extra: MigrateExtra,
    resolveTask: (task: string) => void,
    options?: LiveMigrationOptions,
  ): Promise<void> {
    await this.#run("liveMigration", options, instance, async (signal) => {
      const client = this.#ready();
      const vm = await this.#get(instance, signal);
      const started = performance.now();
      // XAPI reports a move as its task's progress, a fraction: told here as that fraction of the
      // guest's memory, the bulk of what a live move sends. Never after this call settles.
      const memory = num(vm.rec, "memory_dynamic_max") || num(vm.rec, "memory_static_max");
      let settled = false;
      let last = -1;
      const report = (fraction: number): void => {
        // The deadline or the caller's abort settles the call at once: nothing is told after it.
        if (settled || signal.aborted || !options?.onProgress || fraction < last) return;
        last = fraction;
        const processed = Math.round(fraction * memory);
        try {
          const r: unknown = options.onProgress({
            dataTotalBytes: memory,
            dataProcessedBytes: processed,
            dataRemainingBytes: memory - processed,
            elapsedMs: Math.round(performance.now() - started),
          });
          // An async callback that rejects is as much the caller's own as one that throws.
          if (r instanceof Promise) r.catch(() => undefined);
        } catch {
          // The caller's callback failing is no reason to fail the move.
        }
      };
      try {
        const { task, result } =
          extra.mode === "pool"
            ? await client.startAsync("VM.pool_migrate", [vm.ref, extra.destHostRef, xapiMigrateOptions(data.plan)], {
                signal,
                onTaskProgress: report,
              })
            : await (async () => {
                const maps = await this.#migrateMaps(vm, extra, signal);
                return client.startAsync(
                  "VM.migrate_send",
                  [vm.ref, receiveMap(extra), data.policy.live, maps.vdi, maps.vif, xapiMigrateOptions(data.plan), {}],
                  { signal, onTaskProgress: report },
                );
              })();
        resolveTask(task);
        await result;
        report(1);
      } catch (err) {
        settled = true;
        if (err instanceof OperationTimeoutError || err instanceof OperationAbortedError) throw err;
        const reason = isXapiError(err, "TASK_CANCELLED")
          ? "aborted"
          : isXapiError(err)
            ? `XAPI ${err.xapiCode}`
            : describe(err);
        throw new LiveMigrationFailedError(instance.uuid, reason, { cause: err });
      } finally {
        settled = true;
      }
    });
  }

  async postLiveMigrationAtDestination(
    instance: Instance,
    data: MigrateData,
    _context?: MigrationContext,
    options?: OperationOptions,
  ): Promise<void> {
    validateUuid(instance.uuid);
    readExtra(data);
    await this.#run("postLiveMigrationAtDestination", options, instance, async (signal) => {
      const vm = await this.#find(instance, signal, true);
      if (!vm) throw new InstanceNotFoundError(instance.uuid);
      // The VM now belongs to this host also when it is halted later.
      await this.#ready().call("VM.set_affinity", [vm.ref, this.#hostRef], { signal });
    });
  }

  async rollbackLiveMigrationAtDestination(
    instance: Instance,
    data: MigrateData,
    _context?: MigrationContext,
    options?: OperationOptions,
  ): Promise<void> {
    validateUuid(instance.uuid);
    readExtra(data);
    // XAPI undoes a failed or cancelled pool_migrate / migrate_send itself (the VM stays on the
    // source); preLiveMigration prepared nothing. What remains is to check nothing arrived here.
    await this.#run("rollbackLiveMigrationAtDestination", options, instance, async (signal) => {
      const vm = await this.#find(instance, signal);
      if (vm && power(vm) === "running") {
        throw new LiveMigrationFailedError(
          instance.uuid,
          "the instance already runs on the destination; nothing to roll back",
        );
      }
    });
  }

  async liveMigrationAbort(instance: Instance, options?: OperationOptions): Promise<void> {
    validateUuid(instance.uuid);
    await this.#run("liveMigrationAbort", options, instance, async (signal) => {
      const pending = this.#migrations.get(instance.uuid);
      const task = pending ? await pending : "";
      if (!task) {
        // An instance this host does not have is not found, as for every other call; one it has is not migrating.
        await this.#get(instance, signal);
        throw new InvalidStateError(instance.uuid, "liveMigrationAbort", "not migrating");
      }
      await this.#ready().call("task.cancel", [task], { signal });
    });
  }

  async liveMigrationForceComplete(instance: Instance, _options?: OperationOptions): Promise<void> {
    validateUuid(instance.uuid);
    throw new UnsupportedOperationError("forceCompleteMigration", this.name, {
      detail: "XAPI has no post-copy and no way to force a migration to complete",
    });
  }

  // -- events --

  registerEventListener(listener: LifecycleListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  // -- internals --

  async #target(): Promise<XenapiTarget> {
    if (this.#options.target) {
      const t = await this.#options.target();
      this.#closeTarget = t.close?.bind(t);
      return t;
    }
    const { url, username, password } = this.#options;
    if (!url) throw new InvalidInputError("url", "the XAPI url is required");
    if (!username) throw new InvalidInputError("username", "the XAPI user is required");
    if (!password)
      throw new InvalidInputError("password", "the XAPI password is required (VIRTKIT_XENAPI_PASSWORD or the prompt)");
    return { url, username, password: typeof password === "function" ? await password() : password };
  }

  #ready(): XapiClient {
    // The host's connection is what is missing, not an instance in a wrong state (an
    // InvalidStateError would name the host as if it were an instance's uuid).
    if (this.#closed) throw new HypervisorUnavailableError(this.#hostLabel || "driver", "the driver was cleaned up (cleanupHost)");
    if (!this.#client || !this.#events) throw new HypervisorUnavailableError("driver", "not initialised (call initHost)");
    return this.#client;
  }

  /** Runs a contract call under its deadline and maps every failure to a core error. */
  async #run<T>(
    operation: string,
    options: OperationOptions | undefined,
    instance: Instance | undefined,
    fn: (signal: AbortSignal) => Promise<T>,
  ): Promise<T> {
    // core's withDeadline puts one listener on the caller's signal however many operations share it.
    try {
      return await withDeadline(operation, options, this.#timeoutMs, fn);
    } catch (err) {
      throw mapXapiError(err, { operation, instanceId: instance?.uuid, host: this.#client?.masterUrl });
    }
  }

  #emit(instanceUuid: string, transition: LifecycleTransition): void {
    const event: LifecycleEvent = { instanceUuid, transition, host: this.#hostLabel, timestamp: Date.now() };
    deliverLifecycleEvent(this.#listeners, event, (err) => this.#options.logger?.warn("a lifecycle listener threw", { error: describe(err) }));
  }

  async #simple(
    operation: "suspend" | "resume",
    instance: Instance,
    options: OperationOptions | undefined,
    call: (vm: Vm) => [string, XapiValue[]],
  ): Promise<void> {
    validateUuid(instance.uuid);
    await this.#run(operation, options, instance, async (signal) => {
      const vm = await this.#notCrashed(instance, operation, signal);
      const [method, args] = call(vm);
      await this.#ready().callAsync(method, args, { signal });
    });
  }

  /**
   * Runs `method` on the VM for at most `ms`; true when it finished. On time-out its task is
   * cancelled and awaited, so a hard operation can follow (XAPI refuses one while another runs).
   */
  async #tryWithin(vmRef: string, method: string, ms: number, signal: AbortSignal): Promise<boolean> {
    const client = this.#ready();
    const { task, result } = await client.startAsync(method, [vmRef], { signal });
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<"timeout">((r) => (timer = setTimeout(() => r("timeout"), timerDelay(ms))));
    try {
      const outcome = await Promise.race([result.then(() => "done" as const), timedOut]);
      if (outcome === "done") return true;
    } finally {
      clearTimeout(timer);
    }
    await client.call("task.cancel", [task], { signal }).catch(() => undefined);
    await result.catch(() => undefined);
    return false;
  }

  async #list(options: OperationOptions | undefined): Promise<Vm[]> {
    return this.#run("listInstances", options, undefined, async (signal) => {
      const all = await this.#vmRecordsOnHost(signal);
      // Checked here as well: the host's filter narrows the reply, this decides.
      return Object.entries(all)
        .filter(([, rec]) => vmKind(rec).kind === "instance" && isOnHost(rec, this.#hostRef))
        .map(([ref, rec]) => ({ ref, rec }));
    });
  }

  /**
   * The VM records that can be instances on this host, filtered by the host (get_all_records_where):
   * a pool's templates (a hundred on a XenServer install), snapshots, control domains and other
   * hosts' VMs never cross the wire. A host without the filter gets get_all_records.
   */
  async #vmRecordsOnHost(signal: AbortSignal): Promise<Record<string, XapiRecord>> {
    const host = this.#hostRef;
    const where = host.includes('"')
      ? undefined
      : 'field "is_a_template" = "false" and field "is_a_snapshot" = "false" and field "is_control_domain" = "false" and ' +
        `(field "resident_on" = "${host}" or (field "resident_on" = "OpaqueRef:NULL" and field "affinity" = "${host}"))`;
    return this.#recordsWhere("VM", where, signal);
  }

  /**
   * `<cls>.get_all_records_where(where)`; every record instead on a host without the filter
   * (MESSAGE_METHOD_UNKNOWN, remembered) or with no `where`: callers check what they need anyway.
   */
  async #recordsWhere(cls: "VM" | "VDI", where: string | undefined, signal: AbortSignal): Promise<Record<string, XapiRecord>> {
    const client = this.#ready();
    const every = () => client.call<Record<string, XapiRecord>>(`${cls}.get_all_records`, [], { signal });
    if (this.#noFilter || where === undefined) return every();
    try {
      return await client.call<Record<string, XapiRecord>>(`${cls}.get_all_records_where`, [where], { signal });
    } catch (err) {
      if (!isXapiError(err, "MESSAGE_METHOD_UNKNOWN")) throw err;
      this.#noFilter = true;
      return every();
    }
  }

  /**
   * The instance's VM on this host (or, with `anyHost`, anywhere in the pool). Looked up through
   * the event loop's index, then by name label (Nova's lookup), each hit verified by its record.
   */
  async #find(instance: Instance, signal: AbortSignal, anyHost = false): Promise<Vm | undefined> {
    const client = this.#ready();
    const matches = (rec: XapiRecord) => {
      const k = vmKind(rec);
      return k.kind === "instance" && k.instanceUuid === instance.uuid;
    };
    const accept = (vm: Vm | undefined) => (vm && (anyHost || isOnHost(vm.rec, this.#hostRef)) ? vm : undefined);
    const hint = this.#events?.instanceRef(instance.uuid);
    if (hint) {
      const rec = await client.call<XapiRecord>("VM.get_record", [hint], { signal }).catch((err: unknown) => {
        if (isXapiError(err, "HANDLE_INVALID")) return undefined;
        throw err;
      });
      if (rec && matches(rec)) return accept({ ref: hint, rec });
    }
    const byName = await client.call<string[]>("VM.get_by_name_label", [instance.name], { signal });
    for (const ref of byName) {
      if (ref === hint) continue;
      const rec = await client.call<XapiRecord>("VM.get_record", [ref], { signal }).catch(() => undefined);
      if (rec && matches(rec)) return accept({ ref, rec });
    }
    return undefined;
  }

  async #get(instance: Instance, signal: AbortSignal): Promise<Vm> {
    const vm = await this.#find(instance, signal);
    if (!vm) throw new InstanceNotFoundError(instance.uuid);
    return vm;
  }

  /** The instance's VM, refusing with InvalidStateError while it is rescued (only unrescue and destroy apply then). */
  async #notRescued(instance: Instance, operation: string, signal: AbortSignal): Promise<Vm> {
    const vm = await this.#get(instance, signal);
    if (bool(strMap(vm.rec, "other_config"), OC_RESCUED))
      throw new InvalidStateError(instance.uuid, operation, "RESCUED");
    return vm;
  }

  /** Not rescued, and not crashed: pause, unpause, suspend and resume have no meaning for a crashed domain. */
  async #notCrashed(instance: Instance, operation: string, signal: AbortSignal): Promise<Vm> {
    const vm = await this.#notRescued(instance, operation, signal);
    if (power(vm) === "crashed") throw new InvalidStateError(instance.uuid, operation, "CRASHED");
    return vm;
  }

  /** Marks the domain as paused by the driver (a crash pauses it too), before the pause itself. */
  async #markPaused(vm: Vm, signal: AbortSignal): Promise<void> {
    await this.#setPauseMark(vm.ref, vm.rec, str(vm.rec, "domid"), signal);
  }

  async #setPauseMark(ref: string, rec: XapiRecord, value: string, signal: AbortSignal): Promise<void> {
    const client = this.#ready();
    // add_to_other_config refuses a key that is there (MAP_DUPLICATE_KEY), as XAPI does.
    if (strMap(rec, "other_config")[OC_PAUSED_DOMID] !== undefined) {
      await client.call("VM.remove_from_other_config", [ref, OC_PAUSED_DOMID], { signal });
    }
    await client.call("VM.add_to_other_config", [ref, OC_PAUSED_DOMID, value], { signal });
  }

  async #rescueVm(instance: Instance, signal: AbortSignal): Promise<Vm | undefined> {
    const client = this.#ready();
    const isRescue = (rec: XapiRecord) => {
      const k = vmKind(rec);
      return k.kind === "rescue" && k.instanceUuid === instance.uuid;
    };
    const hint = this.#events?.rescueRef(instance.uuid);
    if (hint) {
      const rec = await client.call<XapiRecord>("VM.get_record", [hint], { signal }).catch(() => undefined);
      if (rec && isRescue(rec)) return { ref: hint, rec };
    }
    for (const ref of await client.call<string[]>("VM.get_by_name_label", [`${instance.name}-rescue`], { signal })) {
      const rec = await client.call<XapiRecord>("VM.get_record", [ref], { signal }).catch(() => undefined);
      if (rec && isRescue(rec)) return { ref, rec };
    }
    return undefined;
  }

  /**
   * Clone, provision, shape, disk, VIFs: the VM of an instance or of its rescue, halted. Undone on
   * failure. With `kept` resolving to a VDI, that disk is attached instead of a new one (and not
   * removed if the VM is undone); `keptDisk` says whether it was.
   */
  async #createVm(
    instance: Instance,
    imageMeta: ImageMeta,
    networkInfo: NetworkInfo | undefined,
    role: "instance" | "rescue",
    signal: AbortSignal,
    kept?: Promise<string | undefined>,
  ): Promise<{ ref: string; keptDisk: boolean }> {
    const client = this.#ready();
    const [template, facts] = await Promise.all([this.#templateRef(signal), this.#poolFacts(signal)]);
    const image = await this.#bootImage(imageMeta, signal);
    const diskBytes = Math.max(instance.flavor.rootGb * GiB, image ? roundUp(image.byteLength, MiB) : 0, MiB);
    if (image && instance.flavor.rootGb > 0 && image.byteLength > instance.flavor.rootGb * GiB) {
      throw new InvalidInputError("instance.flavor.rootGb", "the image is larger than the flavor's root disk");
    }
    const label = role === "rescue" ? `${instance.name}-rescue` : instance.name;
    const ref = await client.callAsync<string>("VM.clone", [template.ref, label], { signal });
    let keptDisk: string | undefined;
    try {
      await client.callAsync("VM.provision", [ref], { signal });
      // The clone carries the template's fields, read once per driver.
      const rec = template.rec;
      const memory = instance.flavor.memoryMb * MiB;
      const vcpus = instance.flavor.vcpus;
      const otherConfig: Record<string, string> =
        role === "rescue"
          ? { [OC_ROLE]: "rescue", [OC_RESCUE_OF]: instance.uuid }
          : { [OC_ROLE]: "instance", [OC_INSTANCE_UUID]: instance.uuid };
      // A clone that has the flavor's vCPUs from its template already needs no setter.
      const vcpuCalls: [string, number][] =
        num(rec, "VCPUs_max") === vcpus && num(rec, "VCPUs_at_startup") === vcpus
          ? []
          : vcpus > num(rec, "VCPUs_max")
            ? [
                ["VM.set_VCPUs_max", vcpus],
                ["VM.set_VCPUs_at_startup", vcpus],
              ]
            : [
                ["VM.set_VCPUs_at_startup", vcpus],
                ["VM.set_VCPUs_max", vcpus],
              ];
      // Independent of each other: one wave of calls (a failure undoes the whole VM below).
      await Promise.all([
        client.call("VM.set_is_a_template", [ref, false], { signal }),
        client.call("VM.set_memory_limits", [ref, memory, memory, memory, memory], { signal }),
        (async () => {
          for (const [m, n] of vcpuCalls) await client.call(m, [ref, n], { signal });
        })(),
        client.call("VM.set_affinity", [ref, this.#hostRef], { signal }),
        // A crash stays visible until the next hard shutdown or reboot (XAPI shows the kept domain paused).
        client.call("VM.set_actions_after_crash", [ref, "preserve"], { signal }).catch((err: unknown) => {
          // Older hosts (and XAPIs where the field is read-only) keep their default.
          if (!isXapiError(err, "MESSAGE_METHOD_UNKNOWN")) throw err;
        }),
        // Nova marked Windows guests with viridian; the agent there sets Administrator.
        isWindows(instance, imageMeta)
          ? client.call("VM.set_platform", [ref, { ...strMap(rec, "platform"), viridian: "true" }], { signal })
          : undefined,
        client.call("VM.set_other_config", [ref, { ...strMap(rec, "other_config"), ...otherConfig }], { signal }),
        (async () => {
          keptDisk = await kept;
          if (keptDisk !== undefined) {
            await this.#createVbd(ref, keptDisk, "0", true, signal);
            return;
          }
          const vdi = await client.call<string>(
            "VDI.create",
            [
              {
                name_label: `${label} root`,
                name_description: `root disk of ${instance.uuid}`,
                SR: facts.defaultSr,
                virtual_size: String(diskBytes),
                type: "user",
                sharable: false,
                read_only: false,
                xenstore_data: {},
                other_config: {
                  [OC_VDI_ROLE]: role === "rescue" ? "rescue-root" : "root",
                  [OC_INSTANCE_UUID]: instance.uuid,
                },
                sm_config: {},
                tags: [],
              },
            ],
            { signal },
          );
          await Promise.all([
            image && image.byteLength > 0 ? client.importRawVdi(vdi, image, { signal }) : undefined,
            this.#createVbd(ref, vdi, "0", true, signal),
          ]);
        })(),
        ...(role === "instance" ? (networkInfo ?? []) : []).map((nic, i) =>
          client.call(
            "VIF.create",
            [
              {
                device: String(i),
                network: pickNetwork(facts, nic.bridge ?? nic.networkId, this.#options.network),
                VM: ref,
                MAC: nic.address,
                MTU: "1500",
                other_config: { nicira_iface_id: nic.id },
                qos_algorithm_type: "",
                qos_algorithm_params: {},
              },
            ],
            { signal },
          ),
        ),
      ]);
      return { ref, keptDisk: keptDisk !== undefined };
    } catch (err) {
      const disks = keptDisk !== undefined ? "keep-disks" : "all";
      await this.#destroyVm({ ref, rec: {} }, disks, AbortSignal.timeout(30_000)).catch((e: unknown) =>
        this.#options.logger?.warn("could not remove the VM of a failed spawn", { error: describe(e) }),
      );
      throw err;
    }
  }

  /**
   * Removes, in the background, the VM of a spawn whose start failed or was cut short. The host may
   * still be ending the start's task (a cancelled or hung VM.start_on): the VM is busy
   * (OTHER_OPERATION_IN_PROGRESS) until then, so the removal is tried again for up to 30 s.
   */
  #removeFailedSpawn(uuid: string, ref: string, disks: "all" | "keep-disks"): void {
    const signal = AbortSignal.timeout(30_000);
    const remove = async (): Promise<void> => {
      for (;;) {
        try {
          await this.#destroyVm({ ref, rec: {} }, disks, signal);
          return;
        } catch (err) {
          if (isXapiError(err, "HANDLE_INVALID")) return;
          if (!isXapiError(err, "OTHER_OPERATION_IN_PROGRESS") || signal.aborted || this.#closed) throw err;
          await sleep(250, signal);
        }
      }
    };
    const removal = remove()
      .catch((e: unknown) => this.#options.logger?.warn("could not remove the VM of a failed spawn", { error: describe(e) }))
      .finally(() => {
        if (this.#removals.get(uuid) === removal) this.#removals.delete(uuid);
      });
    this.#removals.set(uuid, removal);
  }

  /** Waits (within `signal`) for the removal of a failed spawn's VM of `uuid`, if one is under way. */
  async #afterRemoval(uuid: string, signal: AbortSignal): Promise<void> {
    const removal = this.#removals.get(uuid);
    if (removal) await raceSignal(removal, signal);
  }

  async #createVbd(
    vm: string,
    vdi: string,
    userdevice: string,
    bootable: boolean,
    signal: AbortSignal,
  ): Promise<string> {
    return this.#ready().call<string>(
      "VBD.create",
      [
        {
          VM: vm,
          VDI: vdi,
          userdevice,
          bootable,
          mode: "RW",
          type: "Disk",
          unpluggable: !bootable,
          empty: false,
          other_config: {},
          qos_algorithm_type: "",
          qos_algorithm_params: {},
        },
      ],
      { signal },
    );
  }

  async #templateRef(signal: AbortSignal): Promise<Vm> {
    if (this.#template) return this.#template;
    const name = this.#options.template ?? DEFAULT_TEMPLATE;
    // The event stream's baseline carries every VM record, templates included.
    const seen = this.#events?.template(name);
    if (seen) {
      this.#template = seen;
      return seen;
    }
    const client = this.#ready();
    for (const ref of await client.call<string[]>("VM.get_by_name_label", [name], { signal })) {
      const rec = await client.call<XapiRecord>("VM.get_record", [ref], { signal });
      if (bool(rec, "is_a_template")) {
        this.#template = { ref, rec };
        return this.#template;
      }
    }
    throw new InvalidInputError("template", `the pool has no template called ${JSON.stringify(name)}`);
  }

  /** The boot image's bytes from the image service (none: a blank disk). */
  async #bootImage(imageMeta: ImageMeta, signal: AbortSignal): Promise<Uint8Array | undefined> {
    const images = this.#options.imageService;
    if (!imageMeta?.id || !images) return undefined;
    try {
      return await images.download(imageMeta.id, { signal });
    } catch (err) {
      if (err instanceof ImageNotFoundError) throw err;
      throw err;
    }
  }

  /** The pool's master, default SR and networks: read once (again after a failed read). */
  #poolFacts(signal: AbortSignal): Promise<PoolFacts> {
    if (!this.#poolFactsRead) {
      const client = this.#client!;
      // Its own deadline: a caller giving up does not fail the read for the others waiting on it.
      const read = withDeadline("read the pool", undefined, this.#timeoutMs, async (s) => {
        const [pools, networks] = await Promise.all([
          client.call<Record<string, XapiRecord>>("pool.get_all_records", [], { signal: s }),
          client.call<Record<string, XapiRecord>>("network.get_all_records", [], { signal: s }),
        ]);
        const pool = Object.values(pools)[0] ?? {};
        return {
          master: str(pool, "master"),
          defaultSr: str(pool, "default_SR"),
          networks: Object.entries(networks).map(([ref, rec]) => ({ ref, rec })),
        };
      });
      this.#poolFactsRead = read;
      read.catch(() => {
        if (this.#poolFactsRead === read) this.#poolFactsRead = undefined;
      });
    }
    return raceSignal(this.#poolFactsRead, signal);
  }

  /** The VDI behind the VM's userdevice 0 (its root disk). */
  async #rootVdi(rec: XapiRecord, signal: AbortSignal): Promise<string | undefined> {
    const client = this.#ready();
    const vbds = await Promise.all(
      refs(rec, "VBDs").map((r) => client.call<XapiRecord>("VBD.get_record", [r], { signal })),
    );
    const disks = vbds.filter((v) => str(v, "type") === "Disk" && !isNullRef(str(v, "VDI")));
    const root = disks.find((v) => str(v, "userdevice") === "0") ?? disks[0];
    return root ? str(root, "VDI") : undefined;
  }

  /**
   * Halts and destroys a VM with its disks: `all` of them, none (`keep-disks`), or for a rescue VM
   * only its own (the instance's disk is attached to it too).
   */
  async #destroyVm(vm: Vm, disks: "all" | "keep-disks" | "rescue", signal: AbortSignal): Promise<void> {
    const client = this.#ready();
    const rec =
      Object.keys(vm.rec).length > 0 ? vm.rec : await client.call<XapiRecord>("VM.get_record", [vm.ref], { signal });
    const state = str(rec, "power_state").toLowerCase();
    if (state !== "halted" && state !== "") {
      await client.callAsync("VM.hard_shutdown", [vm.ref], { signal }).catch(async (err: unknown) => {
        // Stopped meanwhile by a call already under way (a clean shutdown that finished): the VM
        // is where the destroy wants it. Anything else is a refusal to report.
        if (!isXapiError(err, "VM_BAD_POWER_STATE")) throw err;
        const now = await client.call<string>("VM.get_power_state", [vm.ref], { signal });
        if (now.toLowerCase() !== "halted") throw err;
      });
    }
    const vdis: string[] = [];
    if (disks !== "keep-disks") {
      // A VBD gone meanwhile (another destroy of this VM got there first) has nothing left to remove.
      const vbds = await Promise.all(
        refs(rec, "VBDs").map((r) =>
          client.call<XapiRecord>("VBD.get_record", [r], { signal }).catch((e: unknown) => {
            if (isXapiError(e, "HANDLE_INVALID")) return undefined;
            throw e;
          }),
        ),
      );
      for (const vbd of vbds) {
        if (!vbd) continue;
        const vdi = str(vbd, "VDI");
        if (str(vbd, "type") !== "Disk" || isNullRef(vdi)) continue;
        if (disks === "rescue") {
          const role = await client
            .call<Record<string, string>>("VDI.get_other_config", [vdi], { signal })
            .catch(() => ({}));
          if ((role as Record<string, string>)[OC_VDI_ROLE] !== "rescue-root") continue;
        }
        vdis.push(vdi);
      }
    }
    await client.call("VM.destroy", [vm.ref], { signal }).catch((err: unknown) => {
      // Gone meanwhile (a failed spawn's own cleanup got there first): what a destroy wants.
      if (!isXapiError(err, "HANDLE_INVALID")) throw err;
    });
    await Promise.all(
      vdis.map((vdi) =>
        client.call("VDI.destroy", [vdi], { signal }).catch((err: unknown) => {
          if (!isXapiError(err, "HANDLE_INVALID")) throw err;
        }),
      ),
    );
  }

  /**
   * The disks a destroy with `destroyDisks: false` left of an instance whose VM is gone: found by
   * the description spawn gave them, each confirmed by its instance tag and attached to no VM (a
   * VDI in use, by the instance now running on another host of the pool, is not kept).
   */
  async #keptDisks(uuid: string, signal: AbortSignal): Promise<[string, XapiRecord][]> {
    const vdis = await this.#recordsWhere("VDI", `field "name__description" = "root disk of ${uuid}"`, signal);
    return Object.entries(vdis).filter(
      ([, rec]) => strMap(rec, "other_config")[OC_INSTANCE_UUID] === uuid && refs(rec, "VBDs").length === 0,
    );
  }

  /** The kept root disk (not a rescue system's) a spawn of `uuid` boots, if there is one. */
  async #keptRootDisk(uuid: string, signal: AbortSignal): Promise<string | undefined> {
    const kept = await this.#keptDisks(uuid, signal);
    return kept.find(([, rec]) => strMap(rec, "other_config")[OC_VDI_ROLE] === "root")?.[0];
  }

  /** Destroys the disks a destroy with `destroyDisks: false` left of an instance whose VM is gone. */
  async #destroyKeptDisks(uuid: string, signal: AbortSignal): Promise<void> {
    const client = this.#ready();
    const kept = await this.#keptDisks(uuid, signal);
    await Promise.all(
      kept.map(([ref]) =>
        client.call("VDI.destroy", [ref], { signal }).catch((err: unknown) => {
          if (!isXapiError(err, "HANDLE_INVALID")) throw err;
        }),
      ),
    );
  }

  /** Destroys a snapshot VM and its VDIs (Nova's way of deleting a snapshot). */
  async #destroySnapshot(ref: string, signal: AbortSignal): Promise<void> {
    await this.#destroyVm({ ref, rec: {} }, "all", signal).catch((err: unknown) => {
      if (!isXapiError(err, "HANDLE_INVALID")) throw err;
    });
  }

  async #snapshotOf(instance: Instance, vm: Vm, snapshotId: string, signal: AbortSignal): Promise<Vm> {
    const client = this.#ready();
    const ref = await client.call<string>("VM.get_by_uuid", [snapshotId], { signal }).catch((err: unknown) => {
      if (isXapiError(err, "UUID_INVALID", "HANDLE_INVALID")) return undefined;
      throw err;
    });
    const rec = ref
      ? await client.call<XapiRecord>("VM.get_record", [ref], { signal }).catch(() => undefined)
      : undefined;
    if (!ref || !rec || !bool(rec, "is_a_snapshot") || str(rec, "snapshot_of") !== vm.ref) {
      throw new SnapshotNotFoundError(instance.uuid, snapshotId);
    }
    return { ref, rec };
  }

  /** After a revert the VM carries the snapshot's metadata: put the instance's name and marks back. */
  async #reassertIdentity(instance: Instance, ref: string, rec: XapiRecord, signal: AbortSignal): Promise<void> {
    const client = this.#ready();
    const oc = strMap(rec, "other_config");
    const calls: Promise<unknown>[] = [];
    if (str(rec, "name_label") !== instance.name)
      calls.push(client.call("VM.set_name_label", [ref, instance.name], { signal }));
    if (
      oc[OC_INSTANCE_UUID] !== instance.uuid ||
      oc[OC_ROLE] !== "instance" ||
      oc[OC_SNAPSHOT_POWER] !== undefined ||
      oc[OC_SNAPSHOT_TAKEN] !== undefined
    ) {
      // A revert copies the snapshot's own marks onto the VM; the next snapshot must not inherit them.
      const { [OC_SNAPSHOT_POWER]: _power, [OC_SNAPSHOT_TAKEN]: _taken, ...rest } = oc;
      calls.push(
        client.call(
          "VM.set_other_config",
          [ref, { ...rest, [OC_ROLE]: "instance", [OC_INSTANCE_UUID]: instance.uuid }],
          { signal },
        ),
      );
    }
    if (str(rec, "affinity") !== this.#hostRef)
      calls.push(client.call("VM.set_affinity", [ref, this.#hostRef], { signal }));
    await Promise.all(calls);
  }

  async #undoRescue(instance: Instance, ref: string): Promise<void> {
    const signal = AbortSignal.timeout(30_000);
    const rescue = await this.#rescueVm(instance, signal);
    if (rescue) await this.#destroyVm(rescue, "rescue", signal);
    const client = this.#ready();
    await client.call("VM.remove_from_blocked_operations", [ref, "start"], { signal }).catch(() => undefined);
    await client.call("VM.remove_from_other_config", [ref, OC_RESCUED], { signal }).catch(() => undefined);
  }

  async #setPassword(
    instance: Instance,
    password: Secret,
    signal: AbortSignal,
    timeoutMs: number | undefined,
  ): Promise<void> {
    if (!agentEnabled(instance.imageMeta)) throw new GuestAgentNotEnabledError(instance.uuid);
    checkAgentAccount(instance, instance.imageMeta);
    const vm = await this.#notRescued(instance, "setAdminPassword", signal);
    if (power(vm) !== "running") throw new InstanceNotRunningError(instance.uuid);
    await this.#agentPassword(instance, vm.ref, password, signal, timeoutMs);
  }

  async #agentPassword(
    instance: Instance,
    vmRef: string,
    password: Secret,
    signal: AbortSignal,
    timeoutMs: number | undefined,
  ): Promise<void> {
    const client = this.#ready();
    const budget = timeoutMs ?? (this.#options.agentTimeoutSec ?? 30) * 1000;
    const agent = new GuestAgent(
      client,
      {
        instanceId: instance.uuid,
        hostRef: this.#hostRef,
        domId: async (s) => String(await client.call<number | string>("VM.get_domid", [vmRef], { signal: s })),
      },
      Date.now() + budget,
      signal,
    );
    await agent.setPassword(password);
  }

  /** A password given at spawn or rescue: set through the agent where there is one; a failure is logged, not fatal. */
  async #injectPassword(
    instance: Instance,
    imageMeta: ImageMeta,
    password: Secret,
    signal: AbortSignal,
    operation: "spawn" | "rescue",
    vmRef?: string,
  ): Promise<void> {
    if (!agentEnabled(imageMeta)) {
      // Spawn refused such a password up front; a rescue goes on without it, as Nova's does
      // without injection, and says so rather than dropping it silently.
      this.#options.logger?.warn(`the ${operation} password cannot be delivered: the image enables no guest agent`, {
        instance: instance.uuid,
      });
      return;
    }
    try {
      const ref = vmRef ?? (await this.#get(instance, signal)).ref;
      await this.#agentPassword(instance, ref, password, signal, undefined);
    } catch (err) {
      throwIfAborted(operation, signal);
      this.#options.logger?.warn(`could not set the ${operation} password at boot`, {
        instance: instance.uuid,
        error: describe(err),
      });
    }
  }

  async #hostMetrics(signal: AbortSignal): Promise<{ total: number; free: number }> {
    const client = this.#ready();
    const metricsRef = str(this.#hostRec, "metrics");
    if (isNullRef(metricsRef)) return { total: 0, free: 0 };
    const m = await client.call<XapiRecord>("host_metrics.get_record", [metricsRef], { signal });
    return { total: num(m, "memory_total"), free: num(m, "memory_free") };
  }

  /** Memory guests can have on the host: free memory plus the guests' own (never more than the total). */
  async #guestCapacity(host: XapiRecord, signal: AbortSignal, total: number): Promise<number> {
    const client = this.#ready();
    const [free, recs] = await Promise.all([
      this.#freeMemory(signal),
      Promise.all(
        refs(host, "resident_VMs").map((r) =>
          client.call<XapiRecord>("VM.get_record", [r], { signal }).catch(() => undefined),
        ),
      ),
    ]);
    const guests = recs
      .filter((r): r is XapiRecord => r !== undefined && !bool(r, "is_control_domain"))
      .reduce((sum, r) => sum + num(r, "memory_static_max"), 0);
    return Math.min(total || Number.MAX_SAFE_INTEGER, free + guests);
  }

  async #freeMemory(signal: AbortSignal): Promise<number> {
    const client = this.#ready();
    try {
      return Number(await client.call<number | string>("host.compute_free_memory", [this.#hostRef], { signal }));
    } catch (err) {
      if (!isXapiError(err, "MESSAGE_METHOD_UNKNOWN")) throw err;
      return (await this.#hostMetrics(signal)).free;
    }
  }

  /** migrate_send's maps: every disk to the destination SR, every VIF to the destination network. */
  async #migrateMaps(
    vm: Vm,
    extra: MigrateExtra,
    signal: AbortSignal,
  ): Promise<{ vdi: Record<string, string>; vif: Record<string, string> }> {
    const client = this.#ready();
    const vbds = await Promise.all(
      refs(vm.rec, "VBDs").map((r) => client.call<XapiRecord>("VBD.get_record", [r], { signal })),
    );
    const vdi: Record<string, string> = {};
    for (const v of vbds)
      if (str(v, "type") === "Disk" && !isNullRef(str(v, "VDI"))) vdi[str(v, "VDI")] = extra.destSr ?? "";
    const vif: Record<string, string> = {};
    for (const r of refs(vm.rec, "VIFs")) vif[r] = extra.destNetwork ?? "";
    return { vdi, vif };
  }
}

/** The VM's power state, lower case, `crashed` for a preserved crash (see effectivePower). */
function power(vm: Vm): string {
  return effectivePower(vm.rec);
}

function validateInstance(instance: Instance): void {
  validateUuid(instance?.uuid, "instance.uuid");
  validateInstanceName(instance.name, "instance.name");
  validateFlavor(instance.flavor, "instance.flavor");
}

/** A duration option in seconds: absent, or a finite number >= 0. */
function seconds(value: unknown, field: string): void {
  if (value === undefined) return;
  if (typeof value !== "number" || !Number.isFinite(value) || value < 0) {
    throw new InvalidInputError(field, "must be a finite number of seconds >= 0");
  }
}

/** Windows per the instance, else its image (Nova's `os_type`). */
function isWindows(instance: Instance, imageMeta: ImageMeta | undefined = instance.imageMeta): boolean {
  return (instance.osType ?? imageMeta?.properties?.os_type) === "windows";
}

/**
 * The agent's `password` command names no account: nova-agent sets root on Linux and
 * Administrator on Windows. An image asking for another account cannot be served, and says so.
 */
function checkAgentAccount(instance: Instance, imageMeta: ImageMeta): void {
  const wanted = imageMeta?.properties?.os_admin_user;
  const account = isWindows(instance, imageMeta) ? "Administrator" : "root";
  if (typeof wanted === "string" && wanted !== "" && wanted !== account) {
    throw new UnsupportedOperationError("adminPasswordAnyUser", "xenapi", {
      detail: `the XenAPI guest agent sets the password of ${account} only; os_admin_user ${JSON.stringify(wanted.slice(0, 64))} cannot be served`,
    });
  }
}

/** The network a VIF goes to: the one asked for, else the configured default, else the first bridged one. */
function pickNetwork(facts: PoolFacts, wanted: string | undefined, fallback: string | undefined): string {
  const nets = facts.networks;
  const pick =
    (wanted &&
      nets.find((n) => [str(n.rec, "bridge"), str(n.rec, "name_label"), str(n.rec, "uuid")].includes(wanted))) ||
    (fallback && nets.find((n) => [str(n.rec, "bridge"), str(n.rec, "name_label")].includes(fallback))) ||
    nets.find(
      (n) => str(n.rec, "bridge") !== "" && !bool(strMap(n.rec, "other_config"), "is_host_internal_management_network"),
    ) ||
    nets[0];
  if (!pick) throw new InvalidInputError("network", "the pool has no network to plug the instance into");
  return pick.ref;
}

/** Waits for `p` to settle either way, or rejects with the signal's reason when it fires first. */
function settledOrAborted(p: Promise<unknown>, signal: AbortSignal): Promise<void> {
  return raceSignal(
    p.then(
      () => undefined,
      () => undefined,
    ),
    signal,
  );
}

/** Nova's xenapi asked the image (`xenapi_use_agent`); images for any driver say `hw_qemu_guest_agent`. */
function agentEnabled(imageMeta: ImageMeta | undefined): boolean {
  const props = imageMeta?.properties ?? {};
  const flag = props.xenapi_use_agent ?? props.hw_qemu_guest_agent;
  if (flag === undefined) return true;
  return flag === true || (typeof flag === "string" && ["true", "yes", "1", "on"].includes(flag.toLowerCase()));
}

function toInstanceSnapshot(instanceUuid: string, rec: XapiRecord, description?: string): InstanceSnapshot {
  const state = strMap(rec, "other_config")[OC_SNAPSHOT_POWER] ?? "SHUTDOWN";
  const desc = description ?? str(rec, "name_description");
  return {
    id: str(rec, "uuid"),
    name: str(rec, "name_label"),
    instanceUuid,
    createdAt: snapshotTaken(strMap(rec, "other_config")[OC_SNAPSHOT_TAKEN]) ?? xapiTime(str(rec, "snapshot_time")),
    powerState: (PowerState as Record<string, PowerState>)[state] ?? PowerState.SHUTDOWN,
    ...(desc ? { description: desc } : {}),
  };
}

/** virtkit's own record of when a snapshot was taken, if it is a well-formed ISO-8601 time. */
function snapshotTaken(value: string | undefined): string | undefined {
  return value !== undefined && /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/.test(value) ? value : undefined;
}

/** XAPI's `20261130T12:00:00Z` (or ISO) as ISO-8601. */
function xapiTime(t: string): string {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2}):(\d{2}):(\d{2})/.exec(t);
  if (m) return `${m[1]}-${m[2]}-${m[3]}T${m[4]}:${m[5]}:${m[6]}Z`;
  const d = new Date(t);
  return Number.isNaN(d.getTime()) ? new Date().toISOString() : d.toISOString();
}

function normaliseVersion(v: string): string {
  const parts = (v.match(/\d+/g) ?? ["0"]).slice(0, 3);
  while (parts.length < 3) parts.push("0");
  return parts.join(".");
}

function roundUp(n: number, to: number): number {
  return Math.ceil(n / to) * to;
}

function describe(err: unknown): string {
  if (err instanceof VirtkitError) return `${err.code}: ${err.message}`;
  if (err instanceof Error) return err.message;
  return String(err);
}

function readExtra(data: MigrateData): MigrateExtra {
  const e = data?.extra ?? {};
  if ((e.mode !== "pool" && e.mode !== "cross-pool") || typeof e.destHostRef !== "string") {
    throw new InvalidInputError(
      "migrateData.extra",
      "is not XenAPI migration data from checkCanLiveMigrateDestination",
    );
  }
  return e as unknown as MigrateExtra;
}

function receiveMap(extra: MigrateExtra): Record<string, string> {
  try {
    return JSON.parse(Buffer.from(extra.receiveToken ?? "", "base64").toString("utf8")) as Record<string, string>;
  } catch {
    throw new InvalidInputError("migrateData.extra.receiveToken", "is not host.migrate_receive's answer");
  }
}

/** Capabilities for the plugin's listing. */
export function xenapiCapabilityList(): Capability[] {
  return (Object.entries(XENAPI_CAPABILITIES) as [Capability, boolean][]).filter(([, v]) => v).map(([k]) => k);
}
