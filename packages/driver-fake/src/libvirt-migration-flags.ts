/**
 * libvirt's VIR_MIGRATE_* flags for a neutral {@link MigrationPolicy}, computed exactly as Nova's
 * libvirt driver does (`_prepare_migration_flags`, `_handle_live_migration_tunnelled`,
 * `_handle_live_migration_post_copy`, `_handle_live_migration_auto_converge`, plus newer Nova's
 * native TLS and parallel connections). Pure, so the libvirt driver can share it; the fake uses
 * it so its plans are the real bitmasks.
 */
import { InvalidInputError, type MigrationHostFacts, type MigrationPlan, type MigrationPolicy } from "@virtkit/core";

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

/** The plan scheme for libvirt flags. */
export const LIBVIRT_PLAN_SCHEME = "libvirt";

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
    throw new InvalidInputError("policy", "tunnelled and nativeTls cannot be combined");
  }
}

/**
 * The libvirt plan for `policy` on a host described by `facts` (virtType defaults to `kvm`,
 * post-copy to unsupported). `bitmask` is the flags word for virDomainMigrateToURI3,
 * `flags` its names sorted by bit, and `params` the typed parameters: `bandwidth` (MiB/s,
 * VIR_MIGRATE_PARAM_BANDWIDTH), `max_downtime_ms` (set with virDomainMigrateSetMaxDowntime) and
 * `parallel.connections` when parallel. Throws `InvalidInputError` for an impossible policy.
 */
export function planLibvirtMigration(policy: MigrationPolicy, facts: MigrationHostFacts = {}): MigrationPlan {
  checkPolicy(policy);
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
  // Post-copy only when permitted AND supported; then auto-converge is pointless (post-copy always converges).
  if (policy.permitPostCopy && facts.postCopySupported === true) flags |= VIR_MIGRATE.POSTCOPY;
  else if (policy.permitAutoConverge) flags |= VIR_MIGRATE.AUTO_CONVERGE;

  const params: Record<string, string | number | boolean> = {
    bandwidth: policy.bandwidthMiBps,
    max_downtime_ms: policy.maxDowntimeMs,
  };
  if (policy.parallelConnections > 1) params["parallel.connections"] = policy.parallelConnections;
  return { scheme: LIBVIRT_PLAN_SCHEME, flags: virMigrateFlagNames(flags), bitmask: flags, params };
}

/**
 * Nova's `_live_migration_uri`: where the source's libvirtd sends the migration for `virtType`
 * (`qemu+<scheme>://<dest>/system` for kvm/qemu, `xenmigr://<dest>/system` for xen, ...);
 * IPv6 addresses are bracketed. Throws `InvalidInputError` for a type without a migration URI.
 */
export function liveMigrationUri(virtType: string, dest: string, scheme = "tcp"): string {
  const host = dest.includes(":") && !dest.startsWith("[") ? `[${dest}]` : dest;
  switch (virtType) {
    case "kvm":
    case "qemu":
      return `qemu+${scheme}://${host}/system`;
    case "xen":
      return `xenmigr://${host}/system`;
    case "parallels":
      return `parallels+tcp://${host}/system`;
    default:
      throw new InvalidInputError("virtType", `no live migration URI is available for virt type ${virtType}`);
  }
}
