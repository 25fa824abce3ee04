/**
 * The VIR_MIGRATE_* flags for a migration policy, computed as Nova's libvirt driver does
 * (`_prepare_migration_flags`, `_handle_live_migration_tunnelled`, `_handle_live_migration_post_copy`,
 * `_handle_live_migration_auto_converge`, plus native TLS and parallel connections).
 */
import { InvalidInputError, type MigrationHostFacts, type MigrationPlan, type MigrationPolicy } from "@virtkit/core";
import { MigrateFlags } from "@virtkit/libvirt-rpc";

/** The VIR_MIGRATE_* bits the driver uses: a subset of the rpc client's `MigrateFlags` (libvirt-domain.h). */
export const VIR_MIGRATE = {
  LIVE: MigrateFlags.LIVE,
  PEER2PEER: MigrateFlags.PEER2PEER,
  TUNNELLED: MigrateFlags.TUNNELLED,
  PERSIST_DEST: MigrateFlags.PERSIST_DEST,
  UNDEFINE_SOURCE: MigrateFlags.UNDEFINE_SOURCE,
  NON_SHARED_INC: MigrateFlags.NON_SHARED_INC,
  AUTO_CONVERGE: MigrateFlags.AUTO_CONVERGE,
  POSTCOPY: MigrateFlags.POSTCOPY,
  TLS: MigrateFlags.TLS,
  PARALLEL: MigrateFlags.PARALLEL,
} as const;

/** A VIR_MIGRATE_* flag name (without the prefix). */
export type MigrateFlagName = keyof typeof VIR_MIGRATE;

/** The plan's `scheme`. */
export const LIBVIRT_PLAN_SCHEME = "libvirt";

/** Flag names present in `bitmask`, sorted by bit. */
export function migrateFlagNames(bitmask: number): MigrateFlagName[] {
  return (Object.entries(VIR_MIGRATE) as [MigrateFlagName, number][])
    .filter(([, bit]) => (bitmask & bit) !== 0)
    .sort((a, b) => a[1] - b[1])
    .map(([name]) => name);
}

function checkPolicy(policy: MigrationPolicy): void {
  if (!Number.isInteger(policy.parallelConnections) || policy.parallelConnections < 1) {
    throw new InvalidInputError("policy.parallelConnections", "must be an integer >= 1");
  }
  if (!Number.isFinite(policy.bandwidthMiBps) || policy.bandwidthMiBps < 0) {
    throw new InvalidInputError("policy.bandwidthMiBps", "must be >= 0");
  }
  if (!Number.isFinite(policy.maxDowntimeMs) || policy.maxDowntimeMs < 0) {
    throw new InvalidInputError("policy.maxDowntimeMs", "must be >= 0");
  }
  if (policy.tunnelled && policy.nativeTls) {
    // Nova refuses the same combination at start-up: the tunnel already carries the stream over
    // libvirtd's own connection, native TLS would need a direct one.
    throw new InvalidInputError(
      "policy",
      "tunnelled and nativeTls cannot be combined (native TLS needs a direct migration connection)",
    );
  }
}

/**
 * The libvirt plan for `policy`: `bitmask` is what virDomainMigratePerform3Params receives,
 * `flags` its names sorted by bit, `params` the typed parameters (`bandwidth`,
 * `parallel.connections`) and the downtime to set (`max_downtime_ms`).
 * Pure; throws `InvalidInputError` for an impossible policy.
 */
export function planMigration(policy: MigrationPolicy, facts: MigrationHostFacts = {}): MigrationPlan {
  checkPolicy(policy);
  const virtType = facts.virtType ?? "kvm";
  let flags = 0;
  // Nova always migrates live; a non-live policy drops LIVE so libvirt pauses the guest for the move.
  if (policy.live) flags |= VIR_MIGRATE.LIVE;
  // Xen does not support peer-to-peer migration.
  if (virtType !== "xen") flags |= VIR_MIGRATE.PEER2PEER;
  // Without UNDEFINE_SOURCE the migrated instance stays defined on the source host.
  flags |= VIR_MIGRATE.UNDEFINE_SOURCE;
  flags |= VIR_MIGRATE.PERSIST_DEST;
  // Without NON_SHARED_INC a block migration would silently be a shared-storage one.
  if (policy.block) flags |= VIR_MIGRATE.NON_SHARED_INC;
  if (policy.tunnelled) flags |= VIR_MIGRATE.TUNNELLED;
  if (policy.nativeTls) flags |= VIR_MIGRATE.TLS;
  if (policy.parallelConnections > 1) flags |= VIR_MIGRATE.PARALLEL;
  if (policy.permitPostCopy && facts.postCopySupported === true) flags |= VIR_MIGRATE.POSTCOPY;
  // Post-copy guarantees convergence; auto-converge would only slow the guest down.
  if ((flags & VIR_MIGRATE.POSTCOPY) === 0 && policy.permitAutoConverge) flags |= VIR_MIGRATE.AUTO_CONVERGE;

  const params: Record<string, string | number | boolean> = {
    bandwidth: policy.bandwidthMiBps,
    max_downtime_ms: policy.maxDowntimeMs,
  };
  if (policy.parallelConnections > 1) params["parallel.connections"] = policy.parallelConnections;
  return { scheme: LIBVIRT_PLAN_SCHEME, flags: migrateFlagNames(flags), bitmask: flags, params };
}
