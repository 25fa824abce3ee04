/**
 * The VIR_MIGRATE_* flags for a migration policy, computed as Nova's libvirt driver does
 * (`_prepare_migration_flags`, `_handle_live_migration_tunnelled`, `_handle_live_migration_post_copy`,
 * `_handle_live_migration_auto_converge`, native TLS and parallel connections) and narrowed where
 * libvirt refuses post-copy. The computation itself is core's `planLibvirtMigration`, the one
 * implementation the fake driver uses too; this module is the driver's view of it.
 */
import {
  LIBVIRT_PLAN_SCHEME,
  VIR_MIGRATE as ALL_VIR_MIGRATE,
  planLibvirtMigration,
  virMigrateFlagNames,
  type MigrationHostFacts,
  type MigrationPlan,
  type MigrationPolicy,
} from "@virtkit/core";

/** The VIR_MIGRATE_* bits the driver uses (libvirt-domain.h; the tests hold them to the rpc client's `MigrateFlags`). */
export const VIR_MIGRATE = {
  LIVE: ALL_VIR_MIGRATE.LIVE,
  PEER2PEER: ALL_VIR_MIGRATE.PEER2PEER,
  TUNNELLED: ALL_VIR_MIGRATE.TUNNELLED,
  PERSIST_DEST: ALL_VIR_MIGRATE.PERSIST_DEST,
  UNDEFINE_SOURCE: ALL_VIR_MIGRATE.UNDEFINE_SOURCE,
  NON_SHARED_INC: ALL_VIR_MIGRATE.NON_SHARED_INC,
  UNSAFE: ALL_VIR_MIGRATE.UNSAFE,
  AUTO_CONVERGE: ALL_VIR_MIGRATE.AUTO_CONVERGE,
  POSTCOPY: ALL_VIR_MIGRATE.POSTCOPY,
  TLS: ALL_VIR_MIGRATE.TLS,
  PARALLEL: ALL_VIR_MIGRATE.PARALLEL,
} as const;

/** A VIR_MIGRATE_* flag name (without the prefix). */
export type MigrateFlagName = keyof typeof VIR_MIGRATE;

export { LIBVIRT_PLAN_SCHEME };

/** Flag names present in `bitmask`, sorted by bit. */
export function migrateFlagNames(bitmask: number): MigrateFlagName[] {
  return virMigrateFlagNames(bitmask).filter((n): n is MigrateFlagName => n in VIR_MIGRATE);
}

/**
 * The libvirt plan for `policy` (see core's `planLibvirtMigration` for every rule and refusal):
 * `bitmask` is what virDomainMigratePerform3Params receives, `flags` its names sorted by bit,
 * `params` the typed parameters. Pure; throws `InvalidInputError` for a policy this host cannot run.
 */
export function planMigration(policy: MigrationPolicy, facts: MigrationHostFacts = {}): MigrationPlan {
  return planLibvirtMigration(policy, facts);
}

/**
 * The flags a planned migration really runs with, given what is known only when it starts:
 * a paused guest loses post-copy (Nova's `_live_migration_operation`), and a block migration
 * with no local disk to copy loses NON_SHARED_INC (nothing to copy; libvirt would otherwise
 * look for disks to mirror that live on shared storage).
 *
 * `trustedSharedStorage`: the operator said the pool is shared storage libvirt cannot recognise
 * (libvirt 9 knows NFS, GFS2, Ceph, ... by filesystem type and calls anything else "Migration
 * without shared storage is unsafe"; libvirt >= 10.6 has qemu.conf's `shared_filesystems` for this)
 * AND the driver's own probe found the destination's marker in the source's pool: only then does a
 * shared-storage move get VIR_MIGRATE_UNSAFE. A block migration never does.
 */
export function effectiveMigrationFlags(
  bitmask: number,
  at: { readonly paused: boolean; readonly localDisks: number | undefined; readonly trustedSharedStorage?: boolean },
): number {
  let flags = bitmask;
  if (at.paused) flags &= ~VIR_MIGRATE.POSTCOPY;
  if ((flags & VIR_MIGRATE.NON_SHARED_INC) !== 0 && at.localDisks === 0) flags &= ~VIR_MIGRATE.NON_SHARED_INC;
  if (at.trustedSharedStorage === true && (flags & VIR_MIGRATE.NON_SHARED_INC) === 0) flags |= VIR_MIGRATE.UNSAFE;
  return flags;
}
