/**
 * libvirt's VIR_MIGRATE_* flags and migration URIs for the fake's plans: core's
 * `planLibvirtMigration` / `liveMigrationUri`, the same implementation the libvirt driver runs,
 * so the fake's plans are the real bitmasks and the two cannot drift apart.
 */
import { liveMigrationUri as coreLiveMigrationUri } from "@virtkit/core";

export { LIBVIRT_PLAN_SCHEME, VIR_MIGRATE, planLibvirtMigration, virMigrateFlagNames } from "@virtkit/core";
export type { VirMigrateFlag } from "@virtkit/core";

/**
 * Nova's `_live_migration_uri` for `dest` on `virtType` (`qemu+<scheme>://<dest>/system` for
 * kvm/qemu, ...); a bare IPv6 address is bracketed. The fake's argument order, core's rules.
 */
export function liveMigrationUri(virtType: string, dest: string, scheme = "tcp"): string {
  return coreLiveMigrationUri(dest, { virtType, scheme });
}
