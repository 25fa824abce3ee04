/**
 * The fake driver's conformance environment: a private `FakeCloud` per scenario with two hosts,
 * an in-memory image service, a memory logger, and the environment-side powers the fake offers
 * (guest login, agent and ACPI faults, guest files, latency, migration duration).
 */
import { FakeCloud, FakeDriver, type FakeDriverOptions } from "@virtkit/driver-fake";
import {
  InMemoryImageService,
  MemoryLogger,
  type Capabilities,
  type ComputeDriver,
  type ConformanceEnvironment,
  type ConformanceEnvironmentFactory,
  type ImageService,
  type Instance,
} from "@virtkit/core";

/** What a driver wrapper (a deliberately broken variant) gets besides the driver. */
export interface FakeWrapContext {
  /** The environment's logger (a broken variant may log through it). */
  readonly logger: MemoryLogger;
  readonly host: string;
  readonly cloud: FakeCloud;
  readonly imageService: ImageService;
  /** Every driver of the environment so far (wrapped), to reach other hosts. */
  readonly drivers: () => readonly ComputeDriver[];
}

/** Options of {@link fakeEnvironment}. */
export interface FakeEnvironmentOptions {
  /** Capability overrides for every driver. */
  readonly capabilities?: Partial<Capabilities>;
  /** Extra FakeDriver options (virtType, memory, ...). */
  readonly driverOptions?: Partial<Omit<FakeDriverOptions, "host" | "cloud" | "imageService" | "logger">>;
  /** Wraps every driver the environment builds (the kit's own tests use this for broken variants). */
  readonly wrapDriver?: (driver: FakeDriver, context: FakeWrapContext) => ComputeDriver;
  /** Notes for the report. */
  readonly notes?: readonly string[];
  /** Environment limits, keyed by scenario id or group. */
  readonly limits?: Readonly<Record<string, string>>;
}

/** A factory of fresh fake environments, one private cloud each. */
export function fakeEnvironment(options: FakeEnvironmentOptions = {}): ConformanceEnvironmentFactory {
  return async ({ prefix }) => {
    const cloud = new FakeCloud({ name: prefix });
    const imageService = new InMemoryImageService();
    const logger = new MemoryLogger();
    const hosts = [`${prefix}-src`, `${prefix}-dst`];
    const drivers: FakeDriver[] = [];
    const wrapped: ComputeDriver[] = [];
    const hostOf = (inst: Instance) => cloud.locate(inst.uuid);
    const env: ConformanceEnvironment = {
      hosts,
      imageService,
      async createDriver(host = hosts[0]!) {
        const driver = new FakeDriver({
          migrationDurationMs: 20,
          agentTimeoutMs: 100,
          // Shared storage, so the default (non-block) policy can really move an instance.
          storagePool: `${prefix}-pool`,
          // A smaller destination, so the pre-check has something to refuse.
          memoryMb: host === hosts[1] ? 2048 : 16384,
          ...options.driverOptions,
          host,
          cloud,
          imageService,
          logger: logger.child({ host }),
          ...(options.capabilities ? { capabilities: options.capabilities } : {}),
        });
        drivers.push(driver);
        await driver.initHost(host);
        const result = options.wrapDriver
          ? options.wrapDriver(driver, { logger, host, cloud, imageService, drivers: () => wrapped })
          : driver;
        wrapped.push(result);
        return result;
      },
      verifyAdminPassword: (inst, user, password) => cloud.guest(inst.uuid).checkPassword(user, password),
      agentControls: {
        async setAgent(inst, mode) {
          hostOf(inst)?.faults.guestAgent(inst.uuid, mode);
        },
      },
      guestControls: {
        async ignoreAcpi(inst, ignore) {
          hostOf(inst)?.faults.ignoreAcpi(inst.uuid, ignore);
        },
        async writeData(inst, key, value) {
          cloud.guest(inst.uuid).writeFile(key, value);
        },
        async readData(inst, key) {
          return cloud.guest(inst.uuid).readTextFile(key);
        },
      },
      hypervisorControls: {
        async setLatency(ms) {
          for (const d of drivers) d.setLatency(ms);
        },
        async setMigrationDuration(ms) {
          for (const d of drivers) d.setMigrationDuration(ms);
        },
      },
      limits: options.limits ?? {},
      notes: options.notes ?? [],
      logLines: () => logger.lines(),
      async leftovers() {
        return cloud.hosts().flatMap((h) => h.instanceUuids().map((u) => `instance ${u} left on fake host ${h.name}`));
      },
      async cleanup() {
        // A private cloud: dropping the references frees everything.
      },
    };
    return env;
  };
}
