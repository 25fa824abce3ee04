/**
 * What a scenario is: a plain async function over the public contract, plus the declaration the
 * runner needs (id, group, capability, level, what to do when the capability is not declared).
 */
import type {
  Capability,
  ComputeDriver,
  ConformanceEnvironment,
  Instance,
  OperationOptions,
  Secret,
} from "@virtkit/core";
import type { ScenarioLevel } from "./types.js";

/** What a scenario body receives; built fresh for every scenario by `makeTest`. */
export interface ScenarioContext {
  readonly env: ConformanceEnvironment;
  /** The driver of the primary host. */
  readonly driver: ComputeDriver;
  readonly host: string;
  /** Unique prefix of every name this scenario creates. */
  readonly prefix: string;
  /** Fires at the scenario deadline. */
  readonly signal: AbortSignal;
  /** Names the step in progress; a failure reports it. */
  step(name: string): void;
  /** Options for a contract call: the scenario's signal, plus `extra`. */
  opts<T extends object = object>(extra?: T): OperationOptions & T;
  /** A new (not yet spawned) instance with a unique name, tracked for cleanup. */
  newInstance(overrides?: Partial<Instance>): Instance;
  /** Names of every instance this scenario made (`newInstance`), spawned or not. */
  instanceNames?(): ReadonlySet<string>;
  /** Spawns a new instance on the primary host and checks it is RUNNING. */
  spawn(overrides?: Partial<Instance>): Promise<Instance>;
  /** A driver for another host (created once, cleaned up by the kit). */
  driverFor(host: string): Promise<ComputeDriver>;
  /** Registers an image the scenario created, so cleanup deletes it. */
  trackImage(id: string): void;
  /** Registers a secret: it must appear in no error, log line or report. */
  trackSecret(secret: Secret): void;
  /** Records an error message the driver produced (checked for secrets). */
  recordError(err: unknown): void;
  /** The compute service over `driver`, when the run has one (the password group goes through it). */
  service?(): Promise<AdminPasswordService>;
}

/** The slice of core's `ComputeService` the admin-password group uses. */
export interface AdminPasswordService {
  /** Records an instance the kit spawned through the driver, RUNNING and idle, in the service's store. */
  adopt(instance: Instance): Promise<void>;
  /** Nova's `set_admin_password`: generates a password when none is given and returns the one set. */
  setAdminPassword(uuid: string, password: Secret | undefined, options?: OperationOptions): Promise<Secret>;
  /** The instance's task state in the service's store (null when idle). */
  taskState(uuid: string): Promise<string | null>;
  /** The service's log lines (joined to the secret check). */
  logLines?(): readonly string[];
}

/** Builds the service for one scenario over its driver. */
export type AdminPasswordServiceFactory = (
  driver: ComputeDriver,
  env: ConformanceEnvironment,
) => Promise<AdminPasswordService>;

/** One scenario of the table. */
export interface ScenarioDefinition {
  /** Stable id `group.name`: reports, matrices and `--focus` use it. */
  readonly id: string;
  readonly title: string;
  readonly group: string;
  /** The capability the scenario exercises; null for the base contract every driver implements. */
  readonly capability: Capability | null;
  readonly level: ScenarioLevel;
  /** Runs when the capability is declared (or is null). Throws on failure. */
  run(ctx: ScenarioContext): Promise<void>;
  /**
   * Runs when the capability is NOT declared: exercises the operation and expects
   * `UnsupportedOperationError` (use `expectUnsupported`). Absent: the scenario is reported
   * unsupported without a check.
   */
  refuse?(ctx: ScenarioContext): Promise<void>;
  /**
   * What `refuse` itself needs declared (a paused migration's refusal needs `liveMigration` and
   * `pause`): when one is missing too, the scenario is reported unsupported without a call.
   */
  readonly refuseNeeds?: readonly Capability[];
  /** Returns why this environment cannot run the scenario (then it is skipped), or undefined. */
  needs?(env: ConformanceEnvironment): string | undefined;
  /** When the body itself declares a capability-specific part, the extra capabilities it needs. */
  readonly alsoNeeds?: readonly Capability[];
  /**
   * This scenario's own deadline in ms, sized for the work it does, at the default pace (a run's
   * `scenarioTimeoutMs` of 10 000 ms); a run with another `scenarioTimeoutMs` scales it alike.
   * Absent: the run's `scenarioTimeoutMs` itself.
   */
  readonly timeoutMs?: number;
  /**
   * Real time in ms the scenario spends waiting on purpose, however fast the driver is (a clean
   * shutdown timeout it lets run out, a poll it waits for). Runners start the scenarios that wait
   * longest first, so those waits overlap the rest's work instead of trailing the run; reports
   * keep the table's order.
   */
  readonly waitsMs?: number;
  /**
   * How many times the scenario starts a guest (spawn, reboot, power on, rescue, unrescue, resume,
   * revert to a snapshot, a migration's arrival), when more than one: with the environment's
   * `guestStartMs`, what the scenario's time is made of on a real hypervisor, which runners use to
   * start the longest scenarios first. Absent: 1.
   */
  readonly guestStarts?: number;
  /**
   * Why the scenario must run alone where the run's scenarios share hosts (the environment's
   * `sharedHosts`): it changes a whole host for everyone, e.g. fills its memory, which would fail
   * the others' spawns and migrations. Runners start such scenarios first and hold the rest back
   * while one runs. Absent: it runs beside others.
   */
  readonly exclusive?: string;
}
