/**
 * The environment a conformance run needs besides the driver: hosts, the image service, and the
 * means to check effects from the outside (guest password, guest data) or to provoke faults.
 * Types only, so a driver package can offer its environment (`DriverPlugin.conformanceEnvironment`)
 * without depending on `@virtkit/conformance`.
 */
import type { DependencyContainer } from "tsyringe";
import type { ComputeDriver } from "./driver.js";
import type { ImageService, ImageServiceControls } from "./image-service.js";
import type { DiskFormat, Flavor, ImageMeta, Instance } from "./model.js";
import type { Secret } from "./secret.js";

/** How the guest agent of one instance behaves, as set by the environment. */
export type GuestAgentMode = "ok" | "absent" | "unresponsive";

/** Environment-side control of guest agents (to provoke the password errors). */
export interface GuestAgentControls {
  setAgent(instance: Instance, mode: GuestAgentMode): Promise<void>;
}

/** Environment-side control of the guest itself. */
export interface GuestControls {
  /**
   * Resolves once the guest has booted far enough to answer (its agent up): a real guest needs
   * seconds after `spawn` returns. The kit waits on it after every spawn it makes.
   */
  whenBooted?(instance: Instance, options?: { readonly signal?: AbortSignal; readonly timeoutMs?: number }): Promise<void>;
  /** Makes the guest ignore (or honour again) ACPI shutdown requests, so power-off needs the hard fallback. */
  ignoreAcpi?(instance: Instance, ignore: boolean): Promise<void>;
  /** Writes a marker into the guest's disk (to check that an instance snapshot revert restores data). */
  writeData?(instance: Instance, key: string, value: string): Promise<void>;
  /** Reads a marker back from the guest's disk; undefined when absent. */
  readData?(instance: Instance, key: string): Promise<string | undefined>;
  /**
   * Crashes the guest (a kernel panic the hypervisor notices), so the driver reports CRASHED.
   * Only an instance that is RUNNING can be crashed. Absent: CRASHED cells are skipped.
   */
  crash?(instance: Instance): Promise<void>;
  /**
   * How many times the guest has booted (kernel starts, counted inside the guest): a reboot or a
   * power cycle adds one, pause/unpause and suspend/resume add none.
   */
  bootCount?(instance: Instance): Promise<number>;
  /**
   * Reads a marker written with {@link GuestControls.writeData} from the data of an uploaded
   * image (an image snapshot), by the environment's own reading of the disk format; undefined
   * when the image holds no such marker.
   */
  readImageData?(imageId: string, key: string): Promise<string | undefined>;
  /**
   * What the guest itself saw of its reboots and power offs, by the environment's own means (its
   * console or journal, never the driver): the ACPI requests it received and whether its last
   * reboot and last power off were clean (it shut itself down on request) or hard (reset or cut
   * off). Absent: the checks that tell a soft reboot or clean power off from a hard one skip.
   */
  shutdownRecord?(instance: Instance): Promise<GuestShutdownRecord>;
  /**
   * Which system the guest is running now, read from the guest's side (e.g. the kernel command
   * line on its console): `rescue` while a rescued instance runs the rescue image, else `instance`.
   */
  bootedSystem?(instance: Instance): Promise<"rescue" | "instance">;
  /**
   * Makes sure the running guest has no account `user` (removed in the guest, as an image whose
   * `os_admin_user` names an account it never created), so a password set for it must fail.
   * Rejects when the environment cannot. Absent: the missing-account check skips.
   */
  removeAccount?(instance: Instance, user: string): Promise<void>;
}

/** What a guest saw of being rebooted and stopped (see {@link GuestControls.shutdownRecord}). */
export interface GuestShutdownRecord {
  /** ACPI requests (power-button presses, soft reboot requests) the guest received since it was created. */
  readonly acpiRequests: number;
  /** How it last rebooted: `clean` (it restarted itself on request) or `hard` (reset); undefined: never. */
  readonly lastReboot?: "clean" | "hard";
  /** How it last powered off: `clean` (its own shutdown on request) or `hard` (cut off); undefined: never. */
  readonly lastPowerOff?: "clean" | "hard";
}

/** What the environment knows of a host by its own means (not from the driver). */
export interface HostFacts {
  /** Host memory in MiB. */
  readonly memoryMb: number;
  /** Host CPUs. */
  readonly vcpus: number;
}

/** Environment-side control of the hypervisor. */
export interface HypervisorControls {
  /** Makes every hypervisor call take at least `ms` (0 restores), to check deadlines and cancellation. */
  setLatency?(ms: number): Promise<void>;
  /** Makes live migrations take at least `ms` (0 restores), so they can be aborted mid-way. */
  setMigrationDuration?(ms: number): Promise<void>;
  /** The host's size as the environment knows it (to check the units of `getHostInfo`). */
  hostFacts?(host: string): Promise<HostFacts>;
}

/**
 * One isolated environment for one conformance scenario: created by a
 * {@link ConformanceEnvironmentFactory}, torn down by `cleanup`.
 */
export interface ConformanceEnvironment {
  /** Hosts the environment offers; the first is the primary one. Two or more allow a real migration. */
  readonly hosts: readonly string[];
  /**
   * A driver for `host` (default: the first), already `initHost`-ed. The kit calls `cleanupHost`.
   * Not called when the environment offers {@link ConformanceEnvironment.driverSetup}.
   */
  createDriver(host?: string): Promise<ComputeDriver>;
  /**
   * Optional, and the way to have the kit test the path production uses: what `host`'s driver
   * needs (options, and a container holding environment-side context). The kit then builds every
   * driver itself, exactly as `createDriver`/`DriverRegistry` do in a service: the plugin's
   * `register` into a child of `container`, resolved by `driverToken(host)`, checked to be a
   * driver, handed to `adopt`, then `initHost(host)`. A plugin that registers under another token
   * or registers something that is not a driver fails the run with one load error.
   * Absent: the kit calls `createDriver`, checks the plugin's `register` path once at load, and
   * its reports say that the drivers under test were built by the environment.
   */
  driverSetup?(host: string): ConformanceDriverSetup | Promise<ConformanceDriverSetup>;
  /**
   * Whether hosts `a` and `b` share instance storage: between such hosts a live migration must
   * not copy disks (a block migration is refused), between others it must (a non-block one is
   * refused). Absent: unknown, and the scenarios that depend on it are skipped.
   */
  sharesStorage?(a: string, b: string): boolean;
  /** Where image snapshots land; the kit reads it, never the driver's word. */
  readonly imageService: ImageService;
  /**
   * Holds `imageService`'s calls on one image (core's `InMemoryImageService` offers it), so the
   * kit can cut an image snapshot short while its upload is in the image service. Absent: the
   * checks that need it skip.
   */
  readonly imageControls?: ImageServiceControls;
  /** The image instances boot from (default: a qcow2 image with the guest agent enabled). */
  readonly bootImage?: ImageMeta;
  /**
   * The disk format this environment's driver uploads every image snapshot in, when it does not
   * keep the source image's (Nova's XenAPI driver: `vhd`; a libvirt host with
   * `snapshot_image_format` set, or copy-on-write disks over a raw image: `qcow2`). Absent: the
   * source image's format, as Nova's libvirt driver with raw or qcow2 disks of the image's format.
   * The kit checks the uploaded bytes against the format declared on the image either way.
   */
  readonly imageSnapshotFormat?: DiskFormat;
  /** The flavor instances get (default: m1.tiny, 64 MiB, 1 vCPU, 1 GiB disk); real guests need RAM to boot. */
  readonly flavor?: Flavor;
  /** Checks, by the environment's own means (a guest login), that `user`'s password is `password`. */
  verifyAdminPassword?(instance: Instance, user: string, password: Secret): Promise<boolean>;
  /**
   * The same for the rescue system a rescued instance boots (where `rescue`'s `rescuePassword`
   * goes). Absent: the rescue-password checks skip.
   */
  verifyRescuePassword?(instance: Instance, user: string, password: Secret): Promise<boolean>;
  readonly agentControls?: GuestAgentControls;
  readonly guestControls?: GuestControls;
  readonly hypervisorControls?: HypervisorControls;
  /**
   * Scenarios this environment cannot run, keyed by scenario id or group (`migration`), with the
   * reason, e.g. `{ migration: "test:///default has no second host" }`.
   */
  readonly limits: Readonly<Record<string, string>>;
  /** Notes every report shows, e.g. "XenAPI results come from a simulator". */
  readonly notes: readonly string[];
  /** Log lines the drivers wrote (for the check that no secret is logged). */
  logLines?(): readonly string[];
  /**
   * What the driver left behind that the contract cannot list (disks, snapshots, domains), as
   * descriptions. Each instance still present is named by its uuid or its name, so the kit can
   * tell a blind listing (one that never sees anything) from a clean host.
   */
  leftovers?(): Promise<readonly string[]>;
  /**
   * The disks the host's storage holds for `instance` (volume names, VDIs, files), read without the
   * driver, whether or not the instance itself still exists: the kit checks `destroy`'s
   * `destroyDisks` with it. Absent: those checks skip.
   */
  instanceDisks?(instance: Instance): Promise<readonly string[]>;
  /**
   * What broke in the environment itself (a host whose container died or was paused), or undefined:
   * asked when a scenario fails, so the report blames the environment, not the driver.
   */
  environmentFault?(): Promise<string | undefined>;
  /** Releases everything the environment holds. */
  cleanup(): Promise<void>;
}

/**
 * What the environment supplies for one host's driver when the kit builds it (see
 * {@link ConformanceEnvironment.driverSetup}). Context that is not an option (a private
 * simulated cloud, an instrumented connection) travels as a token in `container`, which the
 * plugin's `register` resolves when registered, as it resolves `TOKENS.ImageService`.
 */
export interface ConformanceDriverSetup {
  /** Raw options for the plugin's `optionsSchema` (validated by it, as in a service). */
  readonly options: Readonly<Record<string, unknown>>;
  /**
   * The container the environment prepared: `TOKENS.ImageService` (the environment's
   * `imageService`), `TOKENS.Logger` (so `logLines` sees what the driver logs), and any
   * plugin-specific token. Default: a fresh one holding the environment's `imageService`.
   */
  readonly container?: DependencyContainer;
  /** Receives the driver the kit resolved, before `initHost`, so the environment's controls and cleanup reach it. */
  adopt?(driver: ComputeDriver): void;
}

/** What a factory receives. */
export interface ConformanceEnvironmentContext {
  /** A unique prefix for names created in this environment (instances, hosts, images). */
  readonly prefix: string;
}

/**
 * Creates a fresh, isolated environment per scenario (containerd's snapshotter-suite shape).
 * A factory may share costly resources between the scenarios of one run (hosts in containers,
 * started once): it then offers `dispose`, which the kit calls once after the last scenario.
 */
export type ConformanceEnvironmentFactory = ((context: ConformanceEnvironmentContext) => Promise<ConformanceEnvironment>) & {
  /** Releases what the factory shares between scenarios; idempotent. */
  readonly dispose?: () => Promise<void>;
  /**
   * About how long one guest start takes here, in ms (a real guest booting to its agent). With
   * each scenario's count of guest starts, runners that run several scenarios at once start the
   * longest first, so the run does not end with one long scenario running alone. Absent: 0
   * (guests start at once, as the fake's).
   */
  readonly guestStartMs?: number;
  /**
   * True when the run's scenarios share this factory's hosts (containers started once per run),
   * so a scenario that changes a whole host for everyone (`exclusive` in the kit's table: it
   * fills a host's memory) must run alone. Absent: every scenario has hosts of its own.
   */
  readonly sharedHosts?: boolean;
  /**
   * How many scenarios run well at once here when the run does not say (`--parallel`): more where
   * scenarios spend their time waiting on timers rather than on the CPU (an in-memory driver).
   * Absent: the runner's own default (the CLI's is 4).
   */
  readonly defaultParallel?: number;
};
