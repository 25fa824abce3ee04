/**
 * The XenAPI driver's conformance environment (`plugin.conformanceEnvironment`).
 *
 * Without a `url` option every scenario gets its own embedded XAPI simulator
 * (@virtkit/xapi-simulator): a pool of two hosts (so live migration is a real VM.pool_migrate),
 * guest controls that act on the simulated guest (its agent, ACPI, disk markers), the admin
 * password verified by the simulated guest's own login, and leftovers read from the simulator.
 * With a `url` it targets that host: one host, no guest login, so those scenarios are limits.
 * Latency for the deadline checks is injected between the driver and XAPI, like libvirt's.
 */
import { randomBytes } from "node:crypto";
import {
  InMemoryImageService,
  MemoryLogger,
  Secret,
  TOKENS,
  createContainer,
  sleep,
  type ComputeDriver,
  type ConformanceEnvironment,
  type ConformanceEnvironmentContext,
  type ConformanceEnvironmentFactory,
  type ImageMeta,
  type Instance,
} from "@virtkit/core";
import { checkXenapiPasswordSource, resolveXenapiPassword } from "./password-source.js";
import {
  SIMULATED_DOM0_BYTES,
  simulatorModule,
  startWorkerSimulator,
  type Remote,
  type SimulatedAgentMode,
  type SimulatedGuestApi,
} from "./simulator.js";
import { OC_INSTANCE_UUID, str, strMap, vmKind, type XapiRecord } from "./vm-record.js";
import { XapiClient } from "./xapi-client.js";
import { XENAPI_TOKENS } from "./plugin-tokens.js";
import { XenapiDriver, type XenapiDriverOptions, type XenapiTarget } from "./xenapi-driver.js";

/**
 * What a slowed hypervisor slows: calls, not the long polls (`event.from`) nor the destroys of
 * finished tasks (a client's housekeeping, in bursts that outlive the call that ran the task).
 */
function isHypervisorWork(method: string): boolean {
  return method !== "event.from" && method !== "task.destroy";
}

/** The options the environment takes (the plugin's, minus services it makes itself). */
export type XenapiConformanceOptions = Omit<
  XenapiDriverOptions,
  "imageService" | "logger" | "beforeCall" | "password" | "target"
>;

/** What every report of a simulator run says. */
export const SIMULATOR_NOTE = "XenAPI results come from the XAPI simulator (@virtkit/xapi-simulator), not a XenServer host";

/** The size the environment gives each simulated host (so it knows it by its own means). */
const HOST_MEMORY = 64 * 1024 ** 3;
const HOST_CPUS = 8;

const MOVE_SCENARIOS = ["migration.pre-checks", "migration.live", "migration.rollback", "migration.abort"] as const;

/** The scenarios a real host cannot run here, with the reason. */
export function realHostLimits(): Record<string, string> {
  const noGuest = "no guest login on a real XenServer host from here: the password's effect cannot be verified";
  return {
    "admin-password.set": noGuest,
    "admin-password.generated": noGuest,
    "admin-password.agent-unresponsive": "the environment cannot make a real guest agent hang",
    "lifecycle.power-off-fallback": "the environment has no control over a real guest's ACPI handling",
    ...Object.fromEntries(MOVE_SCENARIOS.map((id) => [id, "one host given (--option url=...): no second host to move to"])),
  };
}

/** What the environment needs of a driver it tracks (duck-typed: the kit may load another copy of the class). */
interface TrackedDriver {
  readonly hostLabel: string;
  readonly isCleanedUp: boolean;
  cleanupHost(host: string): Promise<void>;
}

function isTracked(d: unknown): d is TrackedDriver {
  const t = d as Partial<TrackedDriver>;
  return typeof t?.hostLabel === "string" && typeof t.isCleanedUp === "boolean" && typeof t.cleanupHost === "function";
}

/** The environment's options as plugin options (strings and numbers only, as a service would give them). */
function plainOptions(options: XenapiConformanceOptions): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key of ["template", "network", "softRebootTimeoutSec", "agentTimeoutSec", "timeoutMs", "protocol"] as const) {
    if (options[key] !== undefined) out[key] = options[key];
  }
  return out;
}

/** A small raw boot disk: a boot-sector-like header and a marker, imported into each root VDI. */
function bootDisk(): Uint8Array {
  const disk = Buffer.alloc(64 * 1024);
  disk.write("virtkit xenapi conformance boot disk\n", 0, "utf8");
  randomBytes(512).copy(disk, 4096);
  disk[510] = 0x55;
  disk[511] = 0xaa;
  return disk;
}

/** The conformance environment factory for the XenAPI driver with these (validated) options. */
export function createXenapiConformanceEnvironment(options: XenapiConformanceOptions): ConformanceEnvironmentFactory {
  if (options.url) return realHostEnvironment(options);
  return simulatorEnvironment(options);
}

async function withBootImage(imageService: InMemoryImageService): Promise<ImageMeta> {
  const data = bootDisk();
  const rec = await imageService.create({
    name: "xenapi-conformance-boot",
    status: "active",
    diskFormat: "raw",
    containerFormat: "bare",
    properties: { os_type: "linux", hw_qemu_guest_agent: "true" },
  });
  await imageService.update(rec.id, {}, data);
  return {
    id: rec.id,
    name: rec.name,
    diskFormat: "raw",
    containerFormat: "bare",
    size: data.byteLength,
    properties: { hw_qemu_guest_agent: true, os_type: "linux" },
  };
}

/** The host names of the embedded simulator's layout, learnt through XAPI by the first environment. */
interface SimulatorHosts {
  /** Pool 1, its master first. */
  readonly pool1: readonly string[];
  /** Pool 2's hosts. */
  readonly pool2: readonly string[];
}

// Every scenario starts a simulator of the same layout (same options, same names): the first
// environment asks XAPI for the names, the others reuse them, so a probe logs in only when a
// guest control needs it (saving two logins, three record listings and two logouts a scenario).
let knownHosts: SimulatorHosts | undefined;

async function discoverHosts(probe: XapiClient, probe2: XapiClient): Promise<SimulatorHosts> {
  const [hosts, pools, hosts2] = await Promise.all([
    probe.call<Record<string, XapiRecord>>("host.get_all_records"),
    probe.call<Record<string, XapiRecord>>("pool.get_all_records"),
    probe2.call<Record<string, XapiRecord>>("host.get_all_records"),
  ]);
  const master = str(Object.values(pools)[0] ?? {}, "master");
  const pool1 = Object.entries(hosts)
    .sort(([a], [b]) => (a === master ? -1 : b === master ? 1 : 0))
    .map(([, r]) => str(r, "name_label"));
  return { pool1, pool2: Object.values(hosts2).map((r) => str(r, "name_label")) };
}

function simulatorEnvironment(options: XenapiConformanceOptions): ConformanceEnvironmentFactory {
  const factory = async (_context: ConformanceEnvironmentContext): Promise<ConformanceEnvironment> => {
    // The agent plugin's whole-second waits scaled to 1/20, so a hanging agent answers TIMEOUT
    // within the kit's 300 ms (its `timeout` argument stays whole seconds, as the plugin reads it).
    // VM operations take 1 ms (the simulator's default is 5): the kit slows what it needs slowed itself.
    // event.from batches as XAPI's does (below), at the same 1/20 scale.
    // In the simulator's worker thread: the kit and the drivers keep this thread, the simulator
    // takes the other core (VIRTKIT_XENAPI_SIMULATOR_THREAD=main keeps it here, to compare or profile).
    const sim = await startWorkerSimulator(
      {
        poolHosts: 2,
        agentTimeScale: 0.05,
        operationMs: 1,
        // XAPI's event.from waits 50 ms after a change woke it, so an operation's changes (its
        // task's end with the VM's new state) come back in one batch; scaled by the same 1/20.
        eventBatchMs: 2.5,
        hostMemory: HOST_MEMORY,
        hostCpus: HOST_CPUS,
      },
      process.env.VIRTKIT_XENAPI_SIMULATOR_THREAD === "main",
    );
    const simModule = await simulatorModule();
    const imageService = new InMemoryImageService();
    const logger = new MemoryLogger();
    const password = new Secret(sim.password);
    const probe = new XapiClient({ url: sim.url, username: sim.username, password, timeoutMs: 10_000 });
    const probe2 = new XapiClient({ url: sim.secondPoolUrl, username: sim.username, password, timeoutMs: 10_000 });
    // Drivers this environment made or was handed (possibly another copy of this package's class).
    const drivers: TrackedDriver[] = [];
    let latencyMs = 0;
    try {
      // The probes holding a session (the leak check allows exactly theirs).
      const loggedIn = new Set<XapiClient>();
      if (!knownHosts) {
        knownHosts = await discoverHosts(probe, probe2);
        loggedIn.add(probe).add(probe2);
      }
      const names = [...knownHosts.pool1];
      // Pool 2's master: no storage shared with pool 1, so moving there is a block migration
      // (host.migrate_receive + VM.migrate_send).
      const pool2 = knownHosts.pool2;
      const pool1 = new Set(names);
      const allHosts = [...names, ...pool2.slice(0, 1)];
      const urlOf = (host: string) => (host === names[0] ? sim.url : pool1.has(host) ? sim.slaveUrl : sim.secondPoolUrl);
      const bootImage = await withBootImage(imageService);
      const beforeCall = async (method: string, signal: AbortSignal) => {
        if (latencyMs > 0 && isHypervisorWork(method)) await sleep(latencyMs, signal, `XAPI ${method}`);
      };

      // Instance uuid -> its VM's uuid, as last found. A VM keeps its uuid through every operation
      // (a block migration included), so the next control goes straight to the guest; a guest
      // that is gone (the instance destroyed, spawned anew) is looked up again.
      const vmUuids = new Map<string, string>();

      /** The VM uuid of an instance, found as the driver finds it. */
      const lookUpGuest = async (instance: Instance): Promise<string> => {
        // Either pool: a block migration carries the instance to pool 2.
        for (const p of [probe, probe2]) {
          const found = await p.call<string[]>("VM.get_by_name_label", [instance.name]);
          loggedIn.add(p);
          for (const ref of found) {
            const rec = await p.call<XapiRecord>("VM.get_record", [ref]);
            const kind = vmKind(rec);
            if (kind.kind === "instance" && strMap(rec, "other_config")[OC_INSTANCE_UUID] === instance.uuid) {
              vmUuids.set(instance.uuid, str(rec, "uuid"));
              return str(rec, "uuid");
            }
          }
        }
        vmUuids.delete(instance.uuid);
        throw new Error(`the simulator has no VM for instance ${instance.uuid}`);
      };

      /** Runs `use` on the simulated guest of an instance (keyed by its VM's uuid). */
      const withGuest = async <T>(instance: Instance, use: (guest: Remote<SimulatedGuestApi>) => Promise<T>): Promise<T> => {
        const known = vmUuids.get(instance.uuid);
        if (known !== undefined) {
          try {
            return await use(sim.guest(known));
          } catch {
            // Gone, or another failure: look again and let a second failure through.
          }
        }
        return use(sim.guest(await lookUpGuest(instance)));
      };

      /** The running rescue VM of an instance (Nova's `<name>-rescue`), read by the simulator's own means. */
      const runningRescueOf = async (instance: Instance) => {
        for (const p of [probe, probe2]) {
          const found = await p.call<string[]>("VM.get_by_name_label", [`${instance.name}-rescue`]);
          loggedIn.add(p);
          for (const ref of found) {
            const rec = await p.call<XapiRecord>("VM.get_record", [ref]);
            const kind = vmKind(rec);
            if (kind.kind === "rescue" && kind.instanceUuid === instance.uuid && str(rec, "power_state") === "Running") {
              return sim.guest(str(rec, "uuid"));
            }
          }
        }
        return undefined;
      };

      const env: ConformanceEnvironment = {
        hosts: allHosts,
        imageService,
        imageControls: imageService,
        bootImage,
        // Nova's XenAPI driver: the root VDI exported as VHD, whatever the source image was.
        imageSnapshotFormat: "vhd",
        sharesStorage: (a, b) => a === b || (pool1.has(a) && pool1.has(b)),
        // The production path: the kit registers the plugin into this container and resolves the
        // driver by its token, exactly as a service's DriverRegistry does.
        driverSetup(host: string) {
          const c = createContainer();
          c.register(TOKENS.ImageService, { useValue: imageService });
          c.register(TOKENS.Logger, { useValue: logger.child({ host }) });
          const target: XenapiTarget = { url: urlOf(host), username: sim.username, password };
          c.register(XENAPI_TOKENS.Target, { useValue: target });
          c.register(XENAPI_TOKENS.BeforeCall, { useValue: beforeCall });
          return {
            options: { softRebootTimeoutSec: 1, agentTimeoutSec: 5, ...plainOptions(options) },
            container: c,
            adopt(driver: ComputeDriver) {
              if (isTracked(driver)) drivers.push(driver);
            },
          };
        },
        async createDriver(host = names[0]!) {
          const driver = new XenapiDriver({
            // The simulated guests answer ACPI at once unless told to ignore it: 1 s is ample.
            softRebootTimeoutSec: 1,
            agentTimeoutSec: 5,
            ...options,
            url: urlOf(host),
            username: sim.username,
            password,
            imageService,
            logger: logger.child({ host }),
            beforeCall,
          });
          drivers.push(driver);
          await driver.initHost(host);
          return driver;
        },
        async verifyAdminPassword(instance, user, pw) {
          try {
            return await withGuest(instance, (g) => g.verifyPassword(user, pw.reveal()));
          } catch {
            return false;
          }
        },
        async verifyRescuePassword(instance, user, pw) {
          try {
            return (await (await runningRescueOf(instance))?.verifyPassword(user, pw.reveal())) ?? false;
          } catch {
            return false;
          }
        },
        agentControls: {
          async setAgent(instance, mode) {
            await withGuest(instance, (g) => g.setAgent(mode as SimulatedAgentMode));
          },
        },
        guestControls: {
          async ignoreAcpi(instance, ignore) {
            await withGuest(instance, (g) => g.ignoreAcpi(ignore));
          },
          async writeData(instance, key, value) {
            await withGuest(instance, (g) => g.writeData(key, value));
          },
          async readData(instance, key) {
            return await withGuest(instance, (g) => g.readData(key));
          },
          async bootCount(instance) {
            return await withGuest(instance, (g) => g.bootCount());
          },
          async crash(instance) {
            // The guest the instance runs as: its rescue VM while rescued (its own VM is halted then).
            const rescue = await runningRescueOf(instance);
            if (rescue) await rescue.crash();
            else await withGuest(instance, (g) => g.crash());
          },
          async bootedSystem(instance) {
            // While rescued, the instance's own VM is halted and its rescue VM runs.
            return (await runningRescueOf(instance)) ? "rescue" : "instance";
          },
          ...(simModule.readDataFromImage
            ? {
                async readImageData(imageId: string, key: string) {
                  const rec = await imageService.get(imageId);
                  const format = rec.diskFormat === "vhd" ? "vhd" : "raw";
                  return simModule.readDataFromImage!(await imageService.download(imageId), format, key);
                },
              }
            : {}),
        },
        hypervisorControls: {
          async setLatency(ms) {
            latencyMs = Math.max(0, ms);
          },
          async hostFacts() {
            // As configured above; the simulator keeps 2 GiB of each host for dom0.
            return { memoryMb: (HOST_MEMORY - SIMULATED_DOM0_BYTES) / 1024 ** 2, vcpus: HOST_CPUS };
          },
          async setMigrationDuration(ms: number) {
            await sim.faults.setMigrationDuration(ms);
          },
        },
        limits: {},
        notes: [SIMULATOR_NOTE, "each scenario runs against its own simulator: a pool of two hosts sharing one SR"],
        logLines: () => logger.lines(),
        async instanceDisks(instance) {
          // Every VDI tagged with the instance, in either pool, attached or not.
          const out: string[] = [];
          for (const [pool, p] of [["pool1", probe], ["pool2", probe2]] as const) {
            const vdis = await p.call<Record<string, XapiRecord>>("VDI.get_all_records");
            loggedIn.add(p);
            for (const [ref, rec] of Object.entries(vdis)) {
              if (strMap(rec, "other_config")[OC_INSTANCE_UUID] === instance.uuid) out.push(`${pool}: VDI ${str(rec, "name_label")} (${ref})`);
            }
          }
          return out;
        },
        async leftovers() {
          // The kit asks before it cleans the drivers up: their sessions (and those of the probes
          // that logged in) are still rightly open. Only sessions beyond those count.
          const live = drivers.filter((d) => !d.isCleanedUp);
          const ours: Record<string, number> = {
            pool1: live.filter((d) => pool1.has(d.hostLabel)).length + (loggedIn.has(probe) ? 1 : 0),
            pool2: live.filter((d) => !pool1.has(d.hostLabel)).length + (loggedIn.has(probe2) ? 1 : 0),
          };
          return (await sim.leftovers()).flatMap((line) => {
            const m = /^(pool[12]): (\d+) session\(s\) still open$/.exec(line);
            if (!m) return [line];
            const extra = Number(m[2]) - (ours[m[1]!] ?? 0);
            return extra > 0 ? [`${m[1]}: ${extra} session(s) still open besides the live drivers'`] : [];
          });
        },
        async cleanup() {
          for (const d of drivers.splice(0)) await d.cleanupHost("").catch(() => undefined);
          await probe.close().catch(() => undefined);
          await probe2.close().catch(() => undefined);
          await sim.close();
        },
      };
      return env;
    } catch (err) {
      await probe.close().catch(() => undefined);
      await probe2.close().catch(() => undefined);
      await sim.close().catch(() => undefined);
      throw err;
    }
  };
  // Each scenario has a simulator of its own and mostly waits out the kit's timers: 16 at once
  // took the whole CLI run from about 7.8 s (the CLI's 4) to 5.5 s on two cores; 24 gained
  // nothing more (the client's CPU is then the limit). A real host keeps the CLI's default.
  return Object.assign(factory, { defaultParallel: 16 });
}

function realHostEnvironment(options: XenapiConformanceOptions): ConformanceEnvironmentFactory {
  const url = options.url!;
  const username = options.username ?? "root";
  let password: Promise<Secret> | undefined;
  const host = options.xapiHost ?? new URL(url).hostname;
  // Now, while the run is being set up: a usage error, not every scenario's "driver setup failed".
  checkXenapiPasswordSource();
  // One login per run, before any scenario creates anything: an unreachable host (or refused
  // credentials) fails each environment at once with the same typed error, and no scenario
  // leaves a boot image behind that the kit would count as its leak.
  let reachable: Promise<void> | undefined;
  const probeHost = async (pw: Secret): Promise<void> => {
    const probe = new XapiClient({
      url,
      username,
      password: pw,
      insecure: options.insecure,
      ...(options.allowHttp !== undefined ? { allowHttp: options.allowHttp } : {}),
      timeoutMs: options.timeoutMs ?? 15_000,
    });
    try {
      await probe.login();
    } finally {
      await probe.close().catch(() => undefined);
    }
  };
  return async (): Promise<ConformanceEnvironment> => {
    password ??= resolveXenapiPassword(`${username}@${new URL(url).host}`);
    reachable ??= password.then(probeHost);
    await reachable;
    const imageService = new InMemoryImageService();
    const logger = new MemoryLogger();
    const drivers: XenapiDriver[] = [];
    let latencyMs = 0;
    const bootImage = await withBootImage(imageService);
    return {
      hosts: [host],
      imageService,
      imageControls: imageService,
      bootImage,
      // Nova's XenAPI driver: the root VDI exported as VHD, whatever the source image was.
      imageSnapshotFormat: "vhd",
      async createDriver(h = host) {
        const driver = new XenapiDriver({
          ...options,
          url,
          username,
          password: await password!,
          imageService,
          logger: logger.child({ host: h }),
          beforeCall: async (method, signal) => {
            if (latencyMs > 0 && isHypervisorWork(method)) await sleep(latencyMs, signal, `XAPI ${method}`);
          },
        });
        drivers.push(driver);
        await driver.initHost(h);
        return driver;
      },
      hypervisorControls: {
        async setLatency(ms) {
          latencyMs = Math.max(0, ms);
        },
      },
      limits: realHostLimits(),
      notes: [`XenAPI results come from the host at ${new URL(url).origin}`],
      logLines: () => logger.lines(),
      async cleanup() {
        for (const d of drivers.splice(0)) await d.cleanupHost(host).catch(() => undefined);
      },
    };
  };
}
