/**
 * The one implementation of Nova's libvirt migration logic that is pure computation: the
 * VIR_MIGRATE_* flags for a {@link MigrationPolicy} and the migration URIs. Both the libvirt
 * driver (which hands them to libvirtd) and the fake driver (which reports the plans a libvirt
 * host would run) use it, so the two cannot drift apart; the conformance kit's own table checks
 * the result independently. No I/O and no libvirt client here: `migration-policy.ts` stays
 * hypervisor-neutral, this file is the libvirt reading of it.
 */
import { isIPv6 } from "node:net";
import { InvalidInputError, MigrationPreCheckError } from "./errors.js";
import type { MigrationHostFacts, MigrationPlan, MigrationPolicy } from "./migration-policy.js";

/** `virDomainMigrateFlags` bits, as in libvirt's include/libvirt/libvirt-domain.h. */
export const VIR_MIGRATE = Object.freeze({
  LIVE: 1 << 0,
  PEER2PEER: 1 << 1,
  TUNNELLED: 1 << 2,
  PERSIST_DEST: 1 << 3,
  UNDEFINE_SOURCE: 1 << 4,
  PAUSED: 1 << 5,
  NON_SHARED_DISK: 1 << 6,
  NON_SHARED_INC: 1 << 7,
  CHANGE_PROTECTION: 1 << 8,
  UNSAFE: 1 << 9,
  OFFLINE: 1 << 10,
  COMPRESSED: 1 << 11,
  ABORT_ON_ERROR: 1 << 12,
  AUTO_CONVERGE: 1 << 13,
  RDMA_PIN_ALL: 1 << 14,
  POSTCOPY: 1 << 15,
  TLS: 1 << 16,
  PARALLEL: 1 << 17,
});

/** A VIR_MIGRATE_* flag name without its prefix. */
export type VirMigrateFlag = keyof typeof VIR_MIGRATE;

/** The plan scheme of libvirt plans. */
export const LIBVIRT_PLAN_SCHEME = "libvirt";

/**
 * Nova's `MIN_MULTIFD_WITH_POSTCOPY_QEMU_VERSION` (10.1.0) in libvirt's version encoding
 * (major * 1,000,000 + minor * 1,000 + release): older QEMU cannot switch a multifd (parallel)
 * migration to post-copy, and Nova refuses the combination at start-up.
 */
export const MIN_QEMU_PARALLEL_POSTCOPY_VERSION = 10_001_000;

const BY_BIT = (Object.entries(VIR_MIGRATE) as [VirMigrateFlag, number][]).sort((a, b) => a[1] - b[1]);

/** The flag names set in `bitmask`, sorted by bit. */
export function virMigrateFlagNames(bitmask: number): VirMigrateFlag[] {
  return BY_BIT.filter(([, bit]) => (bitmask & bit) !== 0).map(([name]) => name);
}

function checkPolicy(policy: MigrationPolicy): void {
  if (typeof policy !== "object" || policy === null) throw new InvalidInputError("policy", "must be an object");
  for (const k of ["live", "block", "tunnelled", "nativeTls", "permitPostCopy", "permitAutoConverge"] as const) {
    if (typeof policy[k] !== "boolean") throw new InvalidInputError(`policy.${k}`, "must be a boolean");
  }
  if (!Number.isInteger(policy.parallelConnections) || policy.parallelConnections < 1) {
    throw new InvalidInputError("policy.parallelConnections", "must be an integer >= 1");
  }
  if (!Number.isFinite(policy.bandwidthMiBps) || policy.bandwidthMiBps < 0) {
    throw new InvalidInputError("policy.bandwidthMiBps", "must be a number >= 0");
  }
  if (!Number.isFinite(policy.maxDowntimeMs) || policy.maxDowntimeMs < 0) {
    throw new InvalidInputError("policy.maxDowntimeMs", "must be a number >= 0");
  }
  if (policy.tunnelled && policy.nativeTls) {
    // Nova refuses this pair: the tunnel rides libvirtd's connection, native TLS needs a direct one.
    throw new InvalidInputError(
      "policy",
      "tunnelled and nativeTls cannot be combined (native TLS needs a direct migration connection)",
    );
  }
}

/**
 * The libvirt plan for `policy` on a host described by `facts` (virtType defaults to `kvm`,
 * post-copy to unsupported), as Nova's `_parse_migration_flags` builds it, then narrowed where
 * libvirt itself would refuse:
 * - post-copy only when permitted and supported, and then no auto-converge (Nova);
 * - a paused guest migrates without post-copy (Nova's `_live_migration_operation` drops the flag:
 *   libvirt refuses post-copy for a guest that is not running);
 * - a non-live move gets neither post-copy nor auto-converge (libvirt refuses post-copy without
 *   VIR_MIGRATE_LIVE; a paused guest dirties no memory to throttle);
 * - tunnelled + post-copy is refused typed (libvirt: post-copy is not supported with tunnelled
 *   migration), like tunnelled + native TLS;
 * - parallel connections + post-copy on QEMU older than 10.1 is refused typed (Nova's `init_host`
 *   check); when the version is not given the planner cannot tell and lets it through.
 *
 * `bitmask` is the flags word for virDomainMigratePerform3Params, `flags` its names sorted by bit,
 * `params` the typed parameters: `bandwidth` (MiB/s), `max_downtime_ms` (set with
 * virDomainMigrateSetMaxDowntime) and `parallel.connections` when parallel.
 * Pure; throws `InvalidInputError` for a policy this host cannot run.
 */
export function planLibvirtMigration(policy: MigrationPolicy, facts: MigrationHostFacts = {}): MigrationPlan {
  checkPolicy(policy);
  const postCopy = policy.permitPostCopy && facts.postCopySupported === true && policy.live;
  if (postCopy && policy.tunnelled) {
    throw new InvalidInputError(
      "policy",
      "post-copy cannot be combined with a tunnelled migration (libvirt refuses it)",
    );
  }
  if (
    postCopy &&
    policy.parallelConnections > 1 &&
    facts.hypervisorVersion !== undefined &&
    facts.hypervisorVersion < MIN_QEMU_PARALLEL_POSTCOPY_VERSION
  ) {
    throw new InvalidInputError("policy", "parallel connections with post-copy need QEMU 10.1 or newer on this host");
  }
  let flags = 0;
  // Nova always migrates live; a non-live policy leaves LIVE out so libvirt pauses the guest for the copy.
  if (policy.live) flags |= VIR_MIGRATE.LIVE;
  // Xen does not support peer-to-peer migration.
  if ((facts.virtType ?? "kvm") !== "xen") flags |= VIR_MIGRATE.PEER2PEER;
  // Without UNDEFINE_SOURCE the migrated instance would stay defined on the source host.
  flags |= VIR_MIGRATE.UNDEFINE_SOURCE | VIR_MIGRATE.PERSIST_DEST;
  // Without NON_SHARED_INC a block migration would silently be a shared-storage one.
  if (policy.block) flags |= VIR_MIGRATE.NON_SHARED_INC;
  if (policy.tunnelled) flags |= VIR_MIGRATE.TUNNELLED;
  if (policy.nativeTls) flags |= VIR_MIGRATE.TLS;
  if (policy.parallelConnections > 1) flags |= VIR_MIGRATE.PARALLEL;
  // Post-copy always converges, so auto-converge would only slow the guest down (Nova).
  if (postCopy) flags |= VIR_MIGRATE.POSTCOPY;
  else if (policy.permitAutoConverge && policy.live) flags |= VIR_MIGRATE.AUTO_CONVERGE;
  // Nova computes the flags once, then drops POSTCOPY for a paused guest (no auto-converge instead).
  if (facts.instancePaused === true) flags &= ~VIR_MIGRATE.POSTCOPY;

  const params: Record<string, string | number | boolean> = {
    bandwidth: policy.bandwidthMiBps,
    max_downtime_ms: policy.maxDowntimeMs,
  };
  if (policy.parallelConnections > 1) params["parallel.connections"] = policy.parallelConnections;
  return { scheme: LIBVIRT_PLAN_SCHEME, flags: virMigrateFlagNames(flags), bitmask: flags, params };
}

/** Nova's per-virt-type `_live_migration_uri` templates; `%s` is the scheme (kvm/qemu only), then the host. */
const LIVE_MIGRATION_URIS: Readonly<Record<string, string>> = {
  kvm: "qemu+%s://%s/system",
  qemu: "qemu+%s://%s/system",
  xen: "xenmigr://%s/system",
  parallels: "parallels+tcp://%s/system",
};

/** oslo's `escape_ipv6`: brackets around a bare IPv6 address, anything else (names, `host:port`) unchanged. */
export function escapeIpv6(host: string): string {
  return isIPv6(host) ? `[${host}]` : host;
}

function checkHost(dest: string): void {
  // A host that could smuggle a path, query or credentials into the URI is refused.
  if (typeof dest !== "string" || dest === "" || /[\s/?#@]/.test(dest)) {
    throw new InvalidInputError("destHost", "not a host name or address");
  }
}

/** Inputs of {@link liveMigrationUri}. */
export interface LiveMigrationUriOptions {
  readonly virtType: string;
  /** Transport for kvm/qemu (`tcp`, `tls`, `ssh`); default `tcp`. */
  readonly scheme?: string;
  /** A full template with one `%s` for the host (Nova's deprecated `live_migration_uri`); wins over the rest. */
  readonly template?: string;
}

/**
 * Nova's `_live_migration_uri`: the destination libvirtd a peer-to-peer migration goes to.
 * Throws `MigrationPreCheckError` for a virt type without one, `InvalidInputError` for a bad host.
 */
export function liveMigrationUri(dest: string, options: LiveMigrationUriOptions): string {
  checkHost(dest);
  const host = escapeIpv6(dest);
  if (options.template) return options.template.replace("%s", host);
  const template = LIVE_MIGRATION_URIS[options.virtType];
  if (template === undefined) {
    throw new MigrationPreCheckError(`live migration URI not available for virt type ${options.virtType}`);
  }
  if (options.virtType === "kvm" || options.virtType === "qemu") {
    return template.replace("%s", options.scheme ?? "tcp").replace("%s", host);
  }
  return template.replace("%s", host);
}

/** Nova's `_migrate_uri`: QEMU's own migration stream (`migrate_uri`), kvm/qemu only; `undefined` otherwise. */
export function migrateUri(dest: string, virtType: string): string | undefined {
  checkHost(dest);
  if (virtType !== "qemu" && virtType !== "kvm") return undefined;
  return `tcp://${escapeIpv6(dest)}`;
}
