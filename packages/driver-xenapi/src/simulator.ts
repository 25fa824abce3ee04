/**
 * The embedded XAPI simulator (`@virtkit/xapi-simulator`), loaded only when no `url` is given.
 * Imported by name at run time and typed here by what this package uses of it, so the driver
 * builds and runs against a real host without the simulator in the picture.
 */

/** How a simulated guest's agent behaves. */
export type SimulatedAgentMode = "ok" | "absent" | "slow" | "rebooting" | "broken" | "unresponsive";

/** One simulated guest (keyed by the XAPI VM uuid). */
export interface SimulatedGuestApi {
  setAgent(mode: SimulatedAgentMode): void;
  verifyPassword(user: string, password: string): boolean;
  ignoreAcpi(ignore: boolean): void;
  writeData(key: string, value: string): void;
  readData(key: string): string | undefined;
  readonly bootCount: number;
  /** The domain crashes; XAPI then acts per the VM's `actions_after_crash`. */
  crash(): void;
}

/** The fault switches this package uses. */
export interface SimulatorFaultsApi {
  setMigrationDuration?(ms: number): void;
  setLatency?(ms: number): void;
}

/** A running simulator. */
export interface XapiSimulatorApi {
  readonly url: string;
  readonly slaveUrl: string;
  readonly secondPoolUrl: string;
  readonly username: string;
  readonly password: string;
  readonly faults: SimulatorFaultsApi;
  guest(vmUuid: string): SimulatedGuestApi;
  leftovers(): readonly string[];
  close(): Promise<void>;
}

/** Options of `startXapiSimulator`. */
export interface StartSimulatorOptions {
  readonly host?: string;
  readonly username?: string;
  readonly password?: string;
  readonly poolHosts?: number;
  readonly logger?: (line: string) => void;
  /** Scale of the agent plugin's waits (its whole-second `timeout`, its 0.5 s poll). */
  readonly agentTimeScale?: number;
  /** How long a VM operation keeps the VM busy (ms). */
  readonly operationMs?: number;
  /** Memory of each host in bytes (dom0 keeps 2 GiB of it). */
  readonly hostMemory?: number;
  /** CPUs of each host. */
  readonly hostCpus?: number;
  /** How long a woken event.from waits before collecting (XAPI: 50 ms). */
  readonly eventBatchMs?: number;
}

/** What the simulator reserves for each host's control domain (its documented behaviour). */
export const SIMULATED_DOM0_BYTES = 2 * 1024 ** 3;

/** Every member of T as an async call (the simulator worker's view of a guest or of the faults). */
export type Remote<T> = {
  readonly [K in keyof T]: T[K] extends (...args: infer A) => infer R ? (...args: A) => Promise<R> : () => Promise<T[K]>;
};

/** A simulator hosted in the simulator's worker thread: the same simulator, its controls asynchronous. */
export interface WorkerXapiSimulatorApi {
  readonly url: string;
  readonly slaveUrl: string;
  readonly secondPoolUrl: string;
  readonly username: string;
  readonly password: string;
  readonly faults: Remote<Required<SimulatorFaultsApi>>;
  guest(vmUuid: string): Remote<SimulatedGuestApi>;
  leftovers(): Promise<readonly string[]>;
  close(): Promise<void>;
}

interface SimulatorModule {
  startXapiSimulator(options?: StartSimulatorOptions): Promise<XapiSimulatorApi>;
  startXapiSimulatorInWorker?(options?: Omit<StartSimulatorOptions, "logger">): Promise<WorkerXapiSimulatorApi>;
  readDataFromImage?(bytes: Uint8Array, format: "vhd" | "raw", key: string): string | undefined;
}

/** The package name, kept in a variable so TypeScript does not need the simulator to build this package. */
const SIMULATOR_PACKAGE: string = "@virtkit/xapi-simulator";

/** The simulator module, loaded once. */
export function simulatorModule(): Promise<SimulatorModule> {
  return import(SIMULATOR_PACKAGE) as Promise<SimulatorModule>;
}

/** Starts a simulator on loopback. */
export async function startEmbeddedSimulator(options: StartSimulatorOptions = {}): Promise<XapiSimulatorApi> {
  const mod = await simulatorModule();
  return mod.startXapiSimulator({ poolHosts: 2, ...options });
}

/**
 * Starts a simulator in the simulator's worker thread (one per process), so its request handling
 * runs on another core than the driver and the kit. With `inProcess` (or a simulator without the
 * worker entry) it runs on the caller's thread behind the same asynchronous controls: for
 * profiling one thread, and for measuring what the worker gains.
 */
export async function startWorkerSimulator(
  options: Omit<StartSimulatorOptions, "logger"> = {},
  inProcess = false,
): Promise<WorkerXapiSimulatorApi> {
  const mod = await simulatorModule();
  if (!inProcess && mod.startXapiSimulatorInWorker) return mod.startXapiSimulatorInWorker({ poolHosts: 2, ...options });
  const sim = await mod.startXapiSimulator({ poolHosts: 2, ...options });
  const later =
    <A extends unknown[], R>(fn: (...a: A) => R) =>
    async (...a: A): Promise<R> =>
      fn(...a);
  return {
    url: sim.url,
    slaveUrl: sim.slaveUrl,
    secondPoolUrl: sim.secondPoolUrl,
    username: sim.username,
    password: sim.password,
    faults: {
      setMigrationDuration: later((ms: number) => sim.faults.setMigrationDuration?.(ms)),
      setLatency: later((ms: number) => sim.faults.setLatency?.(ms)),
    },
    guest(vmUuid) {
      const g = () => sim.guest(vmUuid);
      return {
        setAgent: later((m: SimulatedAgentMode) => g().setAgent(m)),
        verifyPassword: later((u: string, p: string) => g().verifyPassword(u, p)),
        ignoreAcpi: later((i: boolean) => g().ignoreAcpi(i)),
        writeData: later((k: string, v: string) => g().writeData(k, v)),
        readData: later((k: string) => g().readData(k)),
        bootCount: later(() => g().bootCount),
        crash: later(() => g().crash()),
      };
    },
    leftovers: later(() => sim.leftovers()),
    close: () => sim.close(),
  };
}
