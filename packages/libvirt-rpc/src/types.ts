// Friendly, public shapes of libvirt objects and results, plus the libvirt enums callers need.

/** A domain (`remote_nonnull_domain`), with its UUID as a lowercase dashed string. */
export interface Domain {
  readonly name: string;
  readonly uuid: string;
  /** Hypervisor id; -1 when the domain is not running. */
  readonly id: number;
}

/** A storage pool (`remote_nonnull_storage_pool`). */
export interface StoragePool {
  readonly name: string;
  readonly uuid: string;
}

/** A storage volume (`remote_nonnull_storage_vol`). */
export interface StorageVol {
  /** Name of the pool holding the volume. */
  readonly pool: string;
  readonly name: string;
  /** Unique key (usually the path). */
  readonly key: string;
}

/** A domain snapshot (`remote_nonnull_domain_snapshot`). */
export interface DomainSnapshot {
  readonly name: string;
  readonly domain: Domain;
}

/** virDomainState. */
export const DomainState = {
  NOSTATE: 0,
  RUNNING: 1,
  BLOCKED: 2,
  PAUSED: 3,
  SHUTDOWN: 4,
  SHUTOFF: 5,
  CRASHED: 6,
  PMSUSPENDED: 7,
} as const;
/** A virDomainState value. */
export type DomainStateValue = (typeof DomainState)[keyof typeof DomainState];

/** virDomainPausedReason values the drivers act on (the `reason` of a PAUSED domain's state). */
export const DomainPausedReason = {
  USER: 1,
  /** The incoming side of a migration, paused until the move ends. */
  MIGRATION: 2,
} as const;

/** virDomainGetInfo result. Memory sizes are in KiB; cpuTime in nanoseconds. */
export interface DomainInfo {
  state: number;
  maxMemKiB: bigint;
  memoryKiB: bigint;
  nrVirtCpu: number;
  cpuTimeNs: bigint;
}

/** virDomainGetState result. */
export interface DomainStateInfo {
  state: number;
  reason: number;
}

/** virNodeGetInfo result. */
export interface NodeInfo {
  model: string;
  memoryKiB: bigint;
  cpus: number;
  mhz: number;
  nodes: number;
  sockets: number;
  cores: number;
  threads: number;
}

/** virConnectGetVersion / GetLibVersion value decoded from major*1e6 + minor*1e3 + release. */
export interface LibvirtVersion {
  major: number;
  minor: number;
  release: number;
  /** The raw number, e.g. 9000000n. */
  raw: bigint;
}

/** virStoragePoolGetInfo result (bytes). */
export interface StoragePoolInfo {
  state: number;
  capacity: bigint;
  allocation: bigint;
  available: bigint;
}

/** virStorageVolGetInfo result (bytes). */
export interface StorageVolInfo {
  type: number;
  capacity: bigint;
  allocation: bigint;
}

/** virDomainGetJobInfo result. */
export interface DomainJobInfo {
  type: number;
  timeElapsed: bigint;
  timeRemaining: bigint;
  dataTotal: bigint;
  dataProcessed: bigint;
  dataRemaining: bigint;
  memTotal: bigint;
  memProcessed: bigint;
  memRemaining: bigint;
  fileTotal: bigint;
  fileProcessed: bigint;
  fileRemaining: bigint;
}

/** A typed parameter (`remote_typed_param`), discriminated by `type`. */
export type TypedParam =
  | { field: string; type: "int"; value: number }
  | { field: string; type: "uint"; value: number }
  | { field: string; type: "llong"; value: bigint }
  | { field: string; type: "ullong"; value: bigint }
  | { field: string; type: "double"; value: number }
  | { field: string; type: "boolean"; value: boolean }
  | { field: string; type: "string"; value: string };

/** virDomainGetJobStats result. */
export interface DomainJobStats {
  type: number;
  params: TypedParam[];
}

/** virDomainJobType. */
export const DomainJobType = { NONE: 0, BOUNDED: 1, UNBOUNDED: 2, COMPLETED: 3, FAILED: 4, CANCELLED: 5 } as const;

/** virDomainEventType (lifecycle `event`). */
export const DomainEventType = {
  DEFINED: 0,
  UNDEFINED: 1,
  STARTED: 2,
  SUSPENDED: 3,
  RESUMED: 4,
  STOPPED: 5,
  SHUTDOWN: 6,
  PMSUSPENDED: 7,
  CRASHED: 8,
} as const;

/** virDomainEventID values. */
export const DomainEventId = { LIFECYCLE: 0, REBOOT: 1 } as const;

/** A domain lifecycle event (VIR_DOMAIN_EVENT_ID_LIFECYCLE). */
export interface DomainLifecycleEvent {
  domain: Domain;
  /** virDomainEventType, see `DomainEventType`. */
  event: number;
  /** Name of `event`, e.g. `"STARTED"`. */
  eventName: string;
  /** Event-specific detail enum (e.g. virDomainEventStartedDetailType). */
  detail: number;
}

/** Common flag values, from libvirt-domain.h / libvirt-storage.h. */
export const Flags = {
  /** virDomainUndefineFlagsValues. */
  UNDEFINE_MANAGED_SAVE: 1,
  UNDEFINE_SNAPSHOTS_METADATA: 2,
  UNDEFINE_NVRAM: 4,
  UNDEFINE_KEEP_NVRAM: 8,
  UNDEFINE_CHECKPOINTS_METADATA: 16,
  /** virDomainDestroyFlagsValues. */
  DESTROY_DEFAULT: 0,
  DESTROY_GRACEFUL: 1,
  /** virDomainShutdownFlagValues. */
  SHUTDOWN_ACPI_POWER_BTN: 1,
  SHUTDOWN_GUEST_AGENT: 2,
  /** virDomainCreateFlags. */
  START_PAUSED: 1,
  START_AUTODESTROY: 2,
  START_BYPASS_CACHE: 4,
  START_FORCE_BOOT: 8,
  /** virDomainDefineFlags. */
  DEFINE_VALIDATE: 1,
  /** virDomainConsoleFlags: FORCE takes the console over from another session; SAFE refuses drivers without safe console handling. */
  CONSOLE_FORCE: 1,
  CONSOLE_SAFE: 2,
  /** virDomainXMLFlags. */
  XML_SECURE: 1,
  XML_INACTIVE: 2,
  XML_UPDATE_CPU: 4,
  XML_MIGRATABLE: 8,
  /** virDomainSetUserPasswordFlags. */
  PASSWORD_ENCRYPTED: 1,
  /** virConnectListAllDomainsFlags. */
  LIST_DOMAINS_ACTIVE: 1,
  LIST_DOMAINS_INACTIVE: 2,
} as const;

/** virDomainQemuAgentCommandTimeoutValues: besides a positive number of seconds. */
export const AgentCommandTimeout = {
  /** Wait for the agent as long as it takes. */
  BLOCK: -2,
  /** libvirt's default wait (5 s). */
  DEFAULT: -1,
  /** Do not wait for a reply. */
  NOWAIT: 0,
} as const;

/** virDomainMigrateFlags bits. */
export const MigrateFlags = {
  LIVE: 1,
  PEER2PEER: 2,
  TUNNELLED: 4,
  PERSIST_DEST: 8,
  UNDEFINE_SOURCE: 16,
  PAUSED: 32,
  NON_SHARED_DISK: 64,
  NON_SHARED_INC: 128,
  CHANGE_PROTECTION: 256,
  UNSAFE: 512,
  OFFLINE: 1024,
  COMPRESSED: 2048,
  ABORT_ON_ERROR: 4096,
  AUTO_CONVERGE: 8192,
  RDMA_PIN_ALL: 16384,
  POSTCOPY: 32768,
  TLS: 65536,
  PARALLEL: 131072,
  NON_SHARED_SYNCHRONOUS_WRITES: 262144,
  POSTCOPY_RESUME: 524288,
  ZEROCOPY: 1048576,
} as const;

/** Common migration parameters (VIR_MIGRATE_PARAM_*), converted by `migrateParams`. */
export interface MigrateParamsInput {
  /** VIR_MIGRATE_PARAM_URI ("migrate_uri"). */
  uri?: string;
  /** VIR_MIGRATE_PARAM_DEST_NAME ("destination_name"). */
  destinationName?: string;
  /** VIR_MIGRATE_PARAM_DEST_XML ("destination_xml"). */
  destinationXml?: string;
  /** VIR_MIGRATE_PARAM_PERSIST_XML ("persistent_xml"). */
  persistentXml?: string;
  /** VIR_MIGRATE_PARAM_BANDWIDTH ("bandwidth"), MiB/s. */
  bandwidthMiBs?: bigint | number;
  /** VIR_MIGRATE_PARAM_GRAPHICS_URI ("graphics_uri"). */
  graphicsUri?: string;
  /** VIR_MIGRATE_PARAM_LISTEN_ADDRESS ("listen_address"). */
  listenAddress?: string;
  /** VIR_MIGRATE_PARAM_MIGRATE_DISKS ("migrate_disks"), one entry per disk target. */
  migrateDisks?: readonly string[];
  /** VIR_MIGRATE_PARAM_DISKS_PORT ("disks_port"). */
  disksPort?: number;
  /** VIR_MIGRATE_PARAM_PARALLEL_CONNECTIONS ("parallel.connections"). */
  parallelConnections?: number;
  /** VIR_MIGRATE_PARAM_TLS_DESTINATION ("tls.destination"). */
  tlsDestination?: string;
  /** Anything else, passed through verbatim. */
  extra?: readonly TypedParam[];
}

/** Build the typed parameter list for the *3_PARAMS migration calls. */
export function migrateParams(input: MigrateParamsInput): TypedParam[] {
  const out: TypedParam[] = [];
  const str = (field: string, v: string | undefined): void => {
    if (v !== undefined) out.push({ field, type: "string", value: v });
  };
  str("migrate_uri", input.uri);
  str("destination_name", input.destinationName);
  str("destination_xml", input.destinationXml);
  str("persistent_xml", input.persistentXml);
  if (input.bandwidthMiBs !== undefined) {
    out.push({ field: "bandwidth", type: "ullong", value: BigInt(input.bandwidthMiBs) });
  }
  str("graphics_uri", input.graphicsUri);
  str("listen_address", input.listenAddress);
  for (const disk of input.migrateDisks ?? []) out.push({ field: "migrate_disks", type: "string", value: disk });
  if (input.disksPort !== undefined) out.push({ field: "disks_port", type: "int", value: input.disksPort });
  if (input.parallelConnections !== undefined) {
    out.push({ field: "parallel.connections", type: "int", value: input.parallelConnections });
  }
  str("tls.destination", input.tlsDestination);
  out.push(...(input.extra ?? []));
  return out;
}

/** Options every call accepts. */
export interface CallOptions {
  /** Reject with `LibvirtTimeoutError` when no reply arrives in time (default: the connection's). */
  timeoutMs?: number;
  /** Reject with `LibvirtAbortedError` when aborted. The daemon may still complete the call. */
  signal?: AbortSignal;
}
