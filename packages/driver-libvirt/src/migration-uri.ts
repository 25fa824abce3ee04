/**
 * Migration URIs as Nova's libvirt driver builds them: `_live_migration_uri` (the destination
 * libvirtd, for peer-to-peer migration) and `_migrate_uri` (QEMU's own migration stream).
 * One implementation, in core, shared with the fake driver (they used to disagree on IPv6).
 */
export { escapeIpv6, liveMigrationUri, migrateUri } from "@virtkit/core";
export type { LiveMigrationUriOptions } from "@virtkit/core";
