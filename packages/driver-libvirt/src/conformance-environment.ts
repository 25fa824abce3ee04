/**
 * The libvirt driver's conformance environment (`plugin.conformanceEnvironment`): per scenario a
 * fresh {@link LibvirtDriver} on a NEW libvirt connection, an in-memory image service, a memory
 * logger, a latency control (injected between the driver and libvirtd), and `leftovers()` read
 * back from the daemon.
 *
 * libvirt's test driver keeps ONE `test:///default` state for all connections open at the same
 * time and starts afresh once the last one closed: serial scenarios each get a pristine hypervisor,
 * parallel ones share it (with unique names and uuids they do not collide). So `leftovers()` checks
 * what the scenario itself created (every domain it defined, every volume it created, recorded at
 * the connection) plus any domain carrying the scenario's name prefix, never a diff of everything
 * (that would blame a neighbour's instances). With `qemu://` the same holds on a shared daemon.
 */
import { hostname as osHostname } from "node:os";
import {
  InMemoryImageService,
  TOKENS,
  createContainer,
  MemoryLogger,
  redactOptions,
  sleep,
  type ConformanceDriverSetup,
  type ConformanceEnvironment,
  type ConformanceEnvironmentContext,
  type ConformanceEnvironmentFactory,
  type Flavor,
  type GuestAgentControls,
  type GuestControls,
  type HostFacts,
  type ImageMeta,
} from "@virtkit/core";
import { LibvirtConnection, type CallOptions, type Domain, type StorageVol, type TypedParam } from "@virtkit/libvirt-rpc";
import { DOMAIN_NAME_PATTERN, readDomainXml } from "./domain-xml.js";
import { LIBVIRT_CONNECTOR, type LibvirtApi, type LibvirtConnector } from "./libvirt-connection.js";
import { LibvirtDriver, virtTypeFromUri, type LibvirtDriverOptions } from "./libvirt-driver.js";

/** What the environment needs: the plugin's options (plus anything else the driver takes). */
export type LibvirtConformanceOptions = Omit<LibvirtDriverOptions, "imageService" | "logger" | "connector">;

const MOVE_SCENARIOS = ["migration.pre-checks", "migration.live", "migration.rollback", "migration.abort"] as const;

/** The scenarios this environment cannot run, with the reason, for `virtType`. */
export function libvirtEnvironmentLimits(virtType: string, uri: string): Record<string, string> {
  const isTest = virtType === "test";
  const noGuest = isTest
    ? "the test hypervisor has no guest to log into, so a password's effect cannot be verified"
    : `no guest login in this environment (${redactUri(uri)}): the password's effect in the guest cannot be verified`;
  const move = isTest
    ? "libvirt's test:///default hypervisor supports no migration; the real move runs in the nested-QEMU environment"
    : "this environment has a single libvirtd host; the real move runs in the nested-QEMU environment with two hosts";
  return {
    "lifecycle.power-off-fallback": isTest
      ? "the test hypervisor shuts a domain off at once on an ACPI request; it has no guest that could ignore it"
      : "the environment has no control over the guest, so it cannot make it ignore ACPI",
    ...(isTest
      ? { "lifecycle.cpu-time": "the test hypervisor reports the wall clock since the epoch as a domain's CPU time, also while it is paused" }
      : {}),
    "admin-password.set": noGuest,
    // The state cells that set a password for real need a guest agent that answers, too.
    ...(isTest ? {} : { "state.running.set-admin-password": noGuest, "state.rescued.set-admin-password": noGuest }),
    "admin-password.generated": noGuest,
    "admin-password.agent-unresponsive": isTest
      ? "the test hypervisor has no guest agent that could be made to hang"
      : "the environment cannot make the QEMU guest agent hang",
    ...Object.fromEntries(MOVE_SCENARIOS.map((id) => [id, move])),
  };
}

/** The notes every report of this environment shows. */
export function libvirtEnvironmentNotes(virtType: string, uri: string): string[] {
  const notes =
    virtType === "test"
      ? [
          "libvirt test:///default hypervisor through a private libvirtd: a simulated hypervisor without guests and without migration",
          "each scenario runs on its own libvirt connection; libvirt's test driver shares one test:///default state among the connections open at the same time (so --parallel scenarios share it)",
        ]
      : [
          `libvirt ${redactUri(uri)} (${virtType}) through libvirtd: real domains, but no guest login or guest control here`,
          "soft reboot falls back to hard after 5 s here (softRebootTimeoutSec) unless the option sets it",
        ];
  notes.push("hypervisor latency for the deadline checks is injected between the driver and libvirtd");
  return notes;
}

/** The URI for notes and reports: its password masked and its query (socket paths, key files) dropped. */
function redactUri(uri: string): string {
  return (redactOptions({ uri }).uri ?? "").replace(/\?.*$/, "");
}

/** The host name the environment gives its one host: the URI's server, or this machine's name. */
function hostOf(uri: string): string {
  const m = /^[a-z][a-z0-9+]*:\/\/(?:[^@/?]*@)?(\[[^\]]+\]|[^/:?]*)/i.exec(uri);
  const h = m?.[1] ?? "";
  return h !== "" ? h : osHostname() || "localhost";
}

/** The signal of a call's options (the driver passes `{ signal }` last). */
function signalOf(args: readonly unknown[]): AbortSignal | undefined {
  for (let i = args.length - 1; i >= 0; i--) {
    const a = args[i];
    if (typeof a === "object" && a !== null && "signal" in a) {
      const s = (a as CallOptions).signal;
      if (s instanceof AbortSignal) return s;
    }
  }
  return undefined;
}

function isDomain(v: unknown): v is Domain {
  return (
    typeof v === "object" &&
    v !== null &&
    typeof (v as Domain).uuid === "string" &&
    typeof (v as Domain).name === "string"
  );
}

function isVol(v: unknown): v is StorageVol {
  return (
    typeof v === "object" &&
    v !== null &&
    typeof (v as StorageVol).pool === "string" &&
    typeof (v as StorageVol).key === "string"
  );
}

/** Volumes the driver names after an instance: `<uuid>_disk`, `<uuid>_disk.rescue`, `<uuid>_snapshot_*`. */
function instanceVolume(name: string, uuids: ReadonlySet<string>): boolean {
  const m = /^([0-9a-f-]{36})_(disk|snapshot)/.exec(name);
  return m !== null && uuids.has(m[1]!);
}

/** The conformance environment factory for the libvirt driver with these (validated) options. */
export function createLibvirtConformanceEnvironment(options: LibvirtConformanceOptions): ConformanceEnvironmentFactory {
  const virtType = options.virtType ?? virtTypeFromUri(options.uri);
  const limits = Object.freeze(libvirtEnvironmentLimits(virtType, options.uri));
  const notes = Object.freeze(libvirtEnvironmentNotes(virtType, options.uri));
  return (context) =>
    buildLibvirtEnvironment(context, {
      hosts: [{ name: hostOf(options.uri), options }],
      limits,
      notes,
    });
}

/** One libvirtd host of an environment: the name the driver knows it by, and its driver's options. */
export interface LibvirtEnvironmentHost {
  readonly name: string;
  readonly options: LibvirtConformanceOptions;
}

/**
 * What {@link buildLibvirtEnvironment} puts together: the hosts, and what the environment adds on
 * top of the drivers (the guest checks and controls of an environment that can reach its guests).
 */
export interface LibvirtEnvironmentSpec {
  readonly hosts: readonly LibvirtEnvironmentHost[];
  /** Where image snapshots land (default: a fresh in-memory one). */
  readonly imageService?: InMemoryImageService;
  readonly limits: Readonly<Record<string, string>>;
  readonly notes: readonly string[];
  readonly bootImage?: ImageMeta;
  readonly flavor?: Flavor;
  readonly verifyAdminPassword?: ConformanceEnvironment["verifyAdminPassword"];
  readonly verifyRescuePassword?: ConformanceEnvironment["verifyRescuePassword"];
  readonly agentControls?: GuestAgentControls;
  readonly guestControls?: GuestControls;
  /**
   * The least a guest's live migration here sends, in MiB: with it, `setMigrationDuration(ms)` caps
   * the link at this over `ms` (at least 1 MiB/s), so a move lasts at least `ms` and not much more.
   * Absent: migrations cannot be slowed.
   */
  readonly migrationFloorMiB?: number;
  /** A host's size by the environment's own means. */
  readonly hostFacts?: (host: string) => Promise<HostFacts>;
  /** Whether two hosts share instance storage (absent: unknown). */
  readonly sharesStorage?: (a: string, b: string) => boolean;
  /** What broke in the hosts themselves (a container that died), asked when a scenario fails. */
  readonly environmentFault?: () => Promise<string | undefined>;
}

/**
 * One scenario's environment on libvirtd hosts: a fresh {@link LibvirtDriver} per host on NEW
 * connections (recorded, with latency injected between driver and daemon), an in-memory image
 * service, a memory logger, and `leftovers()` read back from every host's daemon.
 */
export async function buildLibvirtEnvironment(
  context: ConformanceEnvironmentContext,
  spec: LibvirtEnvironmentSpec,
): Promise<ConformanceEnvironment> {
  const imageService = spec.imageService ?? new InMemoryImageService();
  const logger = new MemoryLogger();
  const first = spec.hosts[0];
  if (!first) throw new Error("a libvirt environment needs at least one host");
  const connections = new Map<string, LibvirtConnection[]>();
  const createdDomains = new Map<string, Domain>();
  const createdVolumes = new Map<string, { host: string; vol: StorageVol }>();
  const drivers: { host: string; driver: LibvirtDriver }[] = [];
  let latencyMs = 0;
  let migrationMiBps = 0;

  /** Records what the driver creates and applies the injected latency to every call. */
  const instrument = (conn: LibvirtConnection, host: string): LibvirtApi =>
    new Proxy(conn as unknown as LibvirtApi, {
      get(target, prop) {
        // Read with the connection itself as `this`: its getters use private fields.
        const value: unknown = Reflect.get(target, prop, target);
        if (typeof value !== "function" || prop === "close" || prop === "constructor") {
          return typeof value === "function" ? (value as (...a: unknown[]) => unknown).bind(target) : value;
        }
        const fn = value as (...a: unknown[]) => Promise<unknown>;
        return async (...args: unknown[]) => {
          if (latencyMs > 0) await sleep(latencyMs, signalOf(args), `libvirt ${String(prop)}`);
          if (prop === "domainMigratePerform3Params" && migrationMiBps > 0 && isDomain(args[0])) {
            // A slow link, so a migration lasts long enough to be aborted mid-way: the bandwidth
            // parameter the driver sent would override the cap, so it goes.
            await conn.domainMigrateSetMaxSpeed(args[0], migrationMiBps, 0, { timeoutMs: 10_000 });
            args[2] = (args[2] as readonly TypedParam[]).filter((p) => p.field !== "bandwidth");
          }
          const result = await fn.apply(target, args);
          if (prop === "domainDefineXml" && isDomain(result)) createdDomains.set(result.uuid, result);
          if ((prop === "storageVolCreateXml" || prop === "storageVolCreateXmlFrom") && isVol(result)) {
            createdVolumes.set(`${host}/${result.pool}/${result.name}`, { host, vol: result });
          }
          return result;
        };
      },
    });

  const hostNamed = (h: string): LibvirtEnvironmentHost => {
    const host = spec.hosts.find((x) => x.name === h);
    if (!host) throw new Error(`this environment has no host ${h} (it has ${spec.hosts.map((x) => x.name).join(", ")})`);
    return host;
  };
  // The default boot image has no OS that answers ACPI: a soft reboot falls back to hard after
  // this many seconds instead of the production 120 (an explicit option wins).
  const driverOptions = (host: LibvirtEnvironmentHost): LibvirtConformanceOptions => ({ softRebootTimeoutSec: 5, ...host.options });
  const connectorFor =
    (h: string): LibvirtConnector =>
    async (uri, connectOptions) => {
      const conn = await LibvirtConnection.open(uri, connectOptions);
      const list = connections.get(h) ?? [];
      list.push(conn);
      connections.set(h, list);
      return instrument(conn, h);
    };

  const env: ConformanceEnvironment = {
    hosts: spec.hosts.map((h) => h.name),
    imageService,
    imageControls: imageService,
    ...(spec.bootImage ? { bootImage: spec.bootImage } : {}),
    ...(spec.flavor ? { flavor: spec.flavor } : {}),
    ...(spec.verifyAdminPassword ? { verifyAdminPassword: spec.verifyAdminPassword } : {}),
    ...(spec.verifyRescuePassword ? { verifyRescuePassword: spec.verifyRescuePassword } : {}),
    ...(spec.agentControls ? { agentControls: spec.agentControls } : {}),
    ...(spec.guestControls ? { guestControls: spec.guestControls } : {}),
    ...(spec.sharesStorage ? { sharesStorage: spec.sharesStorage } : {}),
    async createDriver(h = first.name) {
      const host = hostNamed(h);
      const driver = new LibvirtDriver({
        ...driverOptions(host),
        imageService,
        logger: logger.child({ host: h }),
        connector: connectorFor(h),
      });
      drivers.push({ host: h, driver });
      await driver.initHost(h);
      return driver;
    },
    // The path production uses: the kit registers the plugin into this container and resolves the
    // driver by its token; the instrumented connector travels as LIBVIRT_CONNECTOR.
    driverSetup(h: string): ConformanceDriverSetup {
      const host = hostNamed(h);
      const container = createContainer();
      container.register(TOKENS.ImageService, { useValue: imageService });
      container.register(TOKENS.Logger, { useValue: logger.child({ host: h }) });
      container.register(LIBVIRT_CONNECTOR, { useValue: connectorFor(h) });
      return {
        options: driverOptions(host),
        container,
        adopt(driver) {
          if (driver instanceof LibvirtDriver) drivers.push({ host: h, driver });
        },
      };
    },
    hypervisorControls: {
      async setLatency(ms: number) {
        latencyMs = Math.max(0, ms);
      },
      ...(spec.hostFacts ? { hostFacts: spec.hostFacts } : {}),
      ...(spec.migrationFloorMiB !== undefined
        ? {
            async setMigrationDuration(ms: number) {
              migrationMiBps = ms > 0 ? migrationCapMiBps(spec.migrationFloorMiB!, ms) : 0;
            },
          }
        : {}),
    },
    limits: spec.limits,
    notes: spec.notes,
    ...(spec.environmentFault ? { environmentFault: spec.environmentFault } : {}),
    logLines: () => logger.lines(),
    async leftovers() {
      const out: string[] = [];
      const call: CallOptions = { timeoutMs: 10_000 };
      const seen = new Set<string>();
      const ours = new Set(createdDomains.keys());
      for (const host of spec.hosts) {
        const where = spec.hosts.length > 1 ? `${host.name} (${redactUri(host.options.uri)})` : redactUri(host.options.uri);
        const conn = connections.get(host.name)?.find((c) => c.isOpen);
        if (!conn) continue;
        const add = (what: string) => {
          const line = `${what} left on ${where}`;
          if (!seen.has(line)) {
            seen.add(line);
            out.push(line);
          }
        };
        for (const d of await conn.connectListAllDomains(0, call)) {
          // The driver names domains from the uuid; the display name (with the prefix) is in its metadata.
          const name = DOMAIN_NAME_PATTERN.test(d.name)
            ? await conn
                .domainGetXmlDesc(d, 0, call)
                .then((xml) => readDomainXml(xml).displayName ?? d.name)
                .catch(() => d.name)
            : d.name;
          if (ours.has(d.uuid) || name.startsWith(context.prefix)) {
            ours.add(d.uuid);
            add(`domain ${name} (${d.uuid})`);
          }
        }
        for (const { host: h, vol } of createdVolumes.values()) {
          if (h !== host.name) continue;
          try {
            const pool = await conn.storagePoolLookupByName(vol.pool, call);
            await conn.storageVolLookupByName(pool, vol.name, call);
            add(`volume ${vol.pool}/${vol.name}`);
          } catch {
            // Gone, as it should be.
          }
        }
        // Volumes named after one of our instances, however they were made (a migration's copy too).
        for (const pool of await conn.connectListAllStoragePools(0, call)) {
          const vols = await conn.storagePoolListAllVolumes(pool, 0, call).catch(() => []);
          for (const v of vols) if (instanceVolume(v.name, ours)) add(`volume ${v.pool}/${v.name}`);
        }
      }
      return out;
    },
    async instanceDisks(instance) {
      const out: string[] = [];
      const call: CallOptions = { timeoutMs: 10_000 };
      const one = new Set([instance.uuid]);
      for (const host of spec.hosts) {
        const conn = connections.get(host.name)?.find((c) => c.isOpen);
        if (!conn) continue;
        for (const pool of await conn.connectListAllStoragePools(0, call)) {
          const vols = await conn.storagePoolListAllVolumes(pool, 0, call).catch(() => []);
          for (const v of vols) if (instanceVolume(v.name, one)) out.push(`volume ${v.pool}/${v.name} on ${host.name}`);
        }
      }
      return out;
    },
    async cleanup() {
      for (const { host, driver } of drivers.splice(0)) {
        await driver.cleanupHost(host).catch(() => undefined);
      }
      for (const list of connections.values()) {
        for (const conn of list.splice(0)) {
          if (conn.isOpen) await conn.close({ timeoutMs: 5_000 }).catch(() => undefined);
        }
      }
    },
  };
  return env;
}

/**
 * The bandwidth cap (MiB/s) that makes a move of at least `floorMiB` last at least `ms`: a whole
 * number (libvirt's unit), at least 1. A fixed 1 MiB/s made a 600 ms ask last 88 s on nested QEMU.
 * An ask beyond `floorMiB` seconds still gets 1 MiB/s, the smallest cap libvirt takes, so the move
 * may then finish sooner than asked.
 */
export function migrationCapMiBps(floorMiB: number, ms: number): number {
  return Math.max(1, Math.floor(floorMiB / (ms / 1000)));
}
