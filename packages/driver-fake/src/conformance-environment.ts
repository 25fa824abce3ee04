/**
 * The fake's conformance environment: a private cloud with three hosts per scenario, an in-memory
 * image service, and environment-side controls that act on the guests directly (password check by
 * hash, agent and ACPI faults, disk markers, latency and migration duration). It offers
 * `driverSetup`, so the kit builds each driver the way a service does: the plugin's `register`
 * into a container holding the scenario's cloud, resolved by its token.
 */
import {
  InMemoryImageService,
  MemoryLogger,
  TOKENS,
  createContainer,
  type ConformanceDriverSetup,
  type ConformanceEnvironment,
  type ConformanceEnvironmentContext,
  type ConformanceEnvironmentFactory,
  type ImageMeta,
  type Instance,
} from "@virtkit/core";
import { FakeCloud } from "./fake-cloud.js";
import { parseDisk } from "./fake-disk.js";
import { FakeDriver } from "./fake-driver.js";
import type { FakeGuest } from "./fake-guest.js";
import type { FakePluginOptions } from "./plugin.js";
import { FAKE_TOKENS } from "./plugin-tokens.js";

/** Where `writeData`/`readData` markers live on the guest's disk. */
const MARKER_DIR = "/var/lib/virtkit-markers";

/** The system the guest booted last, read from the kernel command line on its console (a rescue boot mounts vdb1). */
function bootedFromConsole(console: string): "rescue" | "instance" {
  const roots = console.match(/Command line: root=\S+/g);
  return roots?.at(-1)?.endsWith("/dev/vdb1") ? "rescue" : "instance";
}

/** What the fake's environment offers beyond the plugin's options. */
export interface FakeEnvironmentOptions {
  /** The boot image's disk format (default qcow2; the fake boots either, and snapshots raw ones as raw). */
  readonly bootDiskFormat?: "raw" | "qcow2";
}

/** The conformance environment factory for the fake driver with plugin `options`. */
export function createFakeConformanceEnvironment(
  options: Partial<FakePluginOptions> = {},
  environment: FakeEnvironmentOptions = {},
): ConformanceEnvironmentFactory {
  const factory = async (context: ConformanceEnvironmentContext): Promise<ConformanceEnvironment> => {
    const safe = context.prefix.replace(/[^A-Za-z0-9.-]/g, "-").replace(/^-+/, "") || "env";
    const cloud = new FakeCloud({ name: safe });
    const imageService = new InMemoryImageService();
    // Core's MemoryLogger redacts secrets by construction; the kit still checks the lines.
    const logger = new MemoryLogger();
    // a and c share storage (a live migration between them moves no disk); b has its own, so a
    // move from a to b must be a block migration. A storage pool given in the options is shared by all.
    const hosts = [`${safe}-host-a`, `${safe}-host-b`, `${safe}-host-c`] as const;
    const poolOf = (host: string): string =>
      options.storagePool ?? (host === hosts[1] ? `local:${host}` : `${safe}-shared-pool`);
    const drivers: FakeDriver[] = [];
    let latencyMs = options.latencyMs ?? 0;
    let migrationMs = options.migrationDurationMs ?? 20;
    const guestOf = (instance: Instance): FakeGuest => cloud.guest(instance.uuid);
    const bootImage: ImageMeta = {
      id: "00000000-0000-4000-8000-00000000f4ce",
      name: "fake-cirros",
      diskFormat: environment.bootDiskFormat ?? "qcow2",
      containerFormat: "bare",
      properties: { hw_qemu_guest_agent: true, os_type: "linux" },
    };
    // One host's settings, the same as plugin options (the production path) and as driver options.
    const settings = (host: string) =>
      Object.fromEntries(
        Object.entries({
          host,
          capabilities: options.capabilities,
          virtType: options.virtType,
          postCopySupported: options.postCopySupported,
          memoryMb: options.memoryMb,
          vcpus: options.vcpus,
          storagePool: poolOf(host),
          defaultTimeoutMs: options.defaultTimeoutMs,
          latencyMs,
          migrationDurationMs: migrationMs,
        }).filter(([, v]) => v !== undefined),
      ) as { host: string } & Partial<Omit<FakePluginOptions, "host" | "cloud">>;
    return {
      hosts,
      imageService,
      imageControls: imageService,
      bootImage,
      // The path production uses: the kit registers the plugin into this container and resolves the
      // driver by its token; the scenario's private cloud travels as FAKE_TOKENS.Cloud.
      driverSetup(host: string): ConformanceDriverSetup {
        const container = createContainer();
        container.register(TOKENS.ImageService, { useValue: imageService });
        container.register(TOKENS.Logger, { useValue: logger });
        container.register(FAKE_TOKENS.Cloud, { useValue: cloud });
        return {
          options: settings(host),
          container,
          adopt(driver) {
            if (driver instanceof FakeDriver) drivers.push(driver);
          },
        };
      },
      // Used when the environment runs outside the kit's production path (a factory called directly).
      async createDriver(host = hosts[0]) {
        const driver = new FakeDriver({ ...settings(host), cloud, imageService, logger });
        await driver.initHost(host);
        drivers.push(driver);
        return driver;
      },
      sharesStorage: (a, b) => poolOf(a) === poolOf(b),
      async verifyAdminPassword(instance, user, password) {
        try {
          return await guestOf(instance).checkPassword(user, password);
        } catch {
          return false;
        }
      },
      async verifyRescuePassword(instance, user, password) {
        try {
          return await guestOf(instance).checkPassword(user, password, { rescue: true });
        } catch {
          return false;
        }
      },
      agentControls: {
        async setAgent(instance, mode) {
          guestOf(instance).agent = mode;
        },
      },
      guestControls: {
        async ignoreAcpi(instance, ignore) {
          guestOf(instance).ignoresAcpi = ignore;
        },
        async writeData(instance, key, value) {
          guestOf(instance).writeFile(`${MARKER_DIR}/${encodeURIComponent(key)}`, value);
        },
        async readData(instance, key) {
          return guestOf(instance).readTextFile(`${MARKER_DIR}/${encodeURIComponent(key)}`);
        },
        async crash(instance) {
          const host = cloud.locate(instance.uuid);
          if (!host) throw new RangeError(`instance ${instance.uuid} is on no fake host`);
          host.crash(instance.uuid);
        },
        async bootCount(instance) {
          return guestOf(instance).boots;
        },
        async shutdownRecord(instance) {
          const g = guestOf(instance);
          return { acpiRequests: g.acpiRequests, lastReboot: g.lastReboot, lastPowerOff: g.lastShutdown };
        },
        async bootedSystem(instance) {
          return bootedFromConsole(guestOf(instance).consoleOutput());
        },
        async removeAccount(instance, user) {
          guestOf(instance).removeUser(user);
        },
        async readImageData(imageId, key) {
          const files = parseDisk(await imageService.download(imageId));
          const data = files.get(`${MARKER_DIR}/${encodeURIComponent(key)}`);
          return data === undefined ? undefined : Buffer.from(data).toString("utf8");
        },
      },
      hypervisorControls: {
        async setLatency(ms) {
          latencyMs = ms;
          for (const d of drivers) d.setLatency(ms);
        },
        async setMigrationDuration(ms) {
          migrationMs = ms;
          for (const d of drivers) d.setMigrationDuration(ms);
        },
        async hostFacts(host) {
          const h = cloud.host(host);
          return { memoryMb: h.memoryMb, vcpus: h.vcpus };
        },
      },
      limits: {},
      notes: ["The fake driver simulates hypervisor hosts in memory; results say nothing about a real hypervisor."],
      logLines: () => logger.lines(),
      async leftovers() {
        const out: string[] = [];
        for (const h of cloud.hosts()) {
          for (const uuid of h.instanceUuids()) out.push(`instance ${uuid} (${h.instances.get(uuid)?.spec.name}) on ${h.name}`);
          for (const uuid of h.reservationUuids()) out.push(`migration reservation for ${uuid} on ${h.name}`);
        }
        out.push(...cloud.keptDiskDescriptions());
        return out;
      },
      async instanceDisks(instance) {
        return cloud.instanceDisks(instance.uuid);
      },
      async cleanup() {
        for (const d of drivers.splice(0)) {
          try {
            await d.cleanupHost(d.host);
          } catch {
            // Cleaning up must go on for the other drivers.
          }
        }
      },
    };
  };
  // In memory: a scenario's time is the latencies and durations it waits out, not CPU, so more at
  // once finish sooner than the CLI's 4, even on two cores. The kit's scenarios that wait on purpose
  // (0.3-1.1 s each) start first: at 8 lanes they held nearly all of them while the CPU idled.
  return Object.assign(factory, { defaultParallel: 12 });
}
