/**
 * The environment a conformance run needs besides the driver: hosts, the image service, and the
 * means to check effects from the outside (guest password, guest data) or to provoke faults.
 * Types only, so a driver package can offer its environment (`DriverPlugin.conformanceEnvironment`)
 * without depending on `@virtkit/conformance`.
 */
import type { ComputeDriver } from "./driver.js";
import type { ImageService } from "./image-service.js";
import type { ImageMeta, Instance } from "./model.js";
import type { Secret } from "./secret.js";

/** How the guest agent of one instance behaves, as set by the environment. */
export type GuestAgentMode = "ok" | "absent" | "unresponsive";

/** Environment-side control of guest agents (to provoke the password errors). */
export interface GuestAgentControls {
  setAgent(instance: Instance, mode: GuestAgentMode): Promise<void>;
}

/** Environment-side control of the guest itself. */
export interface GuestControls {
  /** Makes the guest ignore (or honour again) ACPI shutdown requests, so power-off needs the hard fallback. */
  ignoreAcpi?(instance: Instance, ignore: boolean): Promise<void>;
  /** Writes a marker into the guest's disk (to check that an instance snapshot revert restores data). */
  writeData?(instance: Instance, key: string, value: string): Promise<void>;
  /** Reads a marker back from the guest's disk; undefined when absent. */
  readData?(instance: Instance, key: string): Promise<string | undefined>;
}

/** Environment-side control of the hypervisor. */
export interface HypervisorControls {
  /** Makes every hypervisor call take at least `ms` (0 restores), to check deadlines and cancellation. */
  setLatency?(ms: number): Promise<void>;
  /** Makes live migrations take at least `ms` (0 restores), so they can be aborted mid-way. */
  setMigrationDuration?(ms: number): Promise<void>;
}

/**
 * One isolated environment for one conformance scenario: created by a
 * {@link ConformanceEnvironmentFactory}, torn down by `cleanup`.
 */
export interface ConformanceEnvironment {
  /** Hosts the environment offers; the first is the primary one. Two or more allow a real migration. */
  readonly hosts: readonly string[];
  /** A driver for `host` (default: the first), already `initHost`-ed. The kit calls `cleanupHost`. */
  createDriver(host?: string): Promise<ComputeDriver>;
  /** Where image snapshots land; the kit reads it, never the driver's word. */
  readonly imageService: ImageService;
  /** The image instances boot from (default: a qcow2 image with the guest agent enabled). */
  readonly bootImage?: ImageMeta;
  /** Checks, by the environment's own means (a guest login), that `user`'s password is `password`. */
  verifyAdminPassword?(instance: Instance, user: string, password: Secret): Promise<boolean>;
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
  /** What the driver left behind that the contract cannot list (disks, snapshots, domains), as descriptions. */
  leftovers?(): Promise<readonly string[]>;
  /** Releases everything the environment holds. */
  cleanup(): Promise<void>;
}

/** What a factory receives. */
export interface ConformanceEnvironmentContext {
  /** A unique prefix for names created in this environment (instances, hosts, images). */
  readonly prefix: string;
}

/** Creates a fresh, isolated environment per scenario (containerd's snapshotter-suite shape). */
export type ConformanceEnvironmentFactory = (context: ConformanceEnvironmentContext) => Promise<ConformanceEnvironment>;
