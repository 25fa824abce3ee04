/**
 * The fake driver's conformance environment: a private `FakeCloud` per scenario with two hosts,
 * an in-memory image service, a memory logger, and the environment-side powers the fake offers
 * (guest login, agent and ACPI faults, guest files, latency, migration duration).
 */
import { FakeCloud, FakeDriver, parseDisk, type FakeDriverOptions } from "@virtkit/driver-fake";
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

/** The system the guest booted last, read from the kernel command line on its console (a rescue boot mounts vdb1). */
function bootedFromConsole(console: string): "rescue" | "instance" {
  const roots = console.match(/Command line: root=\S+/g);
  return roots?.at(-1)?.endsWith("/dev/vdb1") ? "rescue" : "instance";
}

/** A factory of fresh fake environments, one private cloud each. */
export function fakeEnvironment(options: FakeEnvironmentOptions = {}): ConformanceEnvironmentFactory {
  return async ({ prefix }) => {
    const cloud = new FakeCloud({ name: prefix });
    const imageService = new InMemoryImageService();
    const logger = new MemoryLogger();
    // src and dst share storage; far has its own, so a move there must be a block migration.
    const hosts = [`${prefix}-src`, `${prefix}-dst`, `${prefix}-far`];
    const poolOf = (host: string): string =>
      options.driverOptions?.storagePool ?? (host === hosts[2] ? `${prefix}-far-pool` : `${prefix}-pool`);
    const drivers: FakeDriver[] = [];
    const wrapped: ComputeDriver[] = [];
    const hostOf = (inst: Instance) => cloud.locate(inst.uuid);
    const env: ConformanceEnvironment = {
      hosts,
      imageService,
      imageControls: imageService,
      async createDriver(host = hosts[0]!) {
        const driver = new FakeDriver({
          migrationDurationMs: 20,
          // A hung agent holds a call for seconds (the fake's default, 5 s): the caller's deadline must end it.
          // Shared storage, so the default (non-block) policy can really move an instance.
          storagePool: poolOf(host),
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
      sharesStorage: (a, b) => poolOf(a) === poolOf(b),
      verifyAdminPassword: (inst, user, password) => cloud.guest(inst.uuid).checkPassword(user, password),
      verifyRescuePassword: (inst, user, password) => cloud.guest(inst.uuid).checkPassword(user, password, { rescue: true }),
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
        async crash(inst) {
          const host = hostOf(inst);
          if (!host) throw new RangeError(`instance ${inst.uuid} is on no fake host`);
          host.faults.crash(inst.uuid);
        },
        async bootCount(inst) {
          return cloud.guest(inst.uuid).boots;
        },
        async shutdownRecord(inst) {
          const g = cloud.guest(inst.uuid);
          return { acpiRequests: g.acpiRequests, lastReboot: g.lastReboot, lastPowerOff: g.lastShutdown };
        },
        async bootedSystem(inst) {
          return bootedFromConsole(cloud.guest(inst.uuid).consoleOutput());
        },
        async removeAccount(inst, user) {
          cloud.guest(inst.uuid).removeUser(user);
        },
        async readImageData(imageId, key) {
          const data = parseDisk(await imageService.download(imageId)).get(key);
          return data === undefined ? undefined : Buffer.from(data).toString("utf8");
        },
      },
      hypervisorControls: {
        async setLatency(ms) {
          for (const d of drivers) d.setLatency(ms);
        },
        async setMigrationDuration(ms) {
          for (const d of drivers) d.setMigrationDuration(ms);
        },
        async hostFacts(host) {
          const h = cloud.host(host);
          return { memoryMb: h.memoryMb, vcpus: h.vcpus };
        },
      },
      limits: options.limits ?? {},
      notes: options.notes ?? [],
      logLines: () => logger.lines(),
      async leftovers() {
        return [
          ...cloud.hosts().flatMap((h) => h.instanceUuids().map((u) => `instance ${u} left on fake host ${h.name}`)),
          ...cloud.keptDiskDescriptions(),
        ];
      },
      async instanceDisks(instance) {
        return cloud.instanceDisks(instance.uuid);
      },
      async cleanup() {
        // A private cloud: dropping the references frees everything.
      },
    };
    return env;
  };
}
