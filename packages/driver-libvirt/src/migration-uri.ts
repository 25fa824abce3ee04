/**
 * Migration URIs as Nova's libvirt driver builds them: `_live_migration_uri` (the destination
 * libvirtd, for peer-to-peer migration) and `_migrate_uri` (QEMU's own migration stream).
 */
import { InvalidInputError, MigrationPreCheckError } from "@virtkit/core";
import { isIPv6 } from "node:net";

/** Nova's per-virt-type templates; `%s` is the scheme (kvm/qemu only), then the host. */
const LIVE_MIGRATION_URIS: Readonly<Record<string, string>> = {
  kvm: "qemu+%s://%s/system",
  qemu: "qemu+%s://%s/system",
  xen: "xenmigr://%s/system",
  parallels: "parallels+tcp://%s/system",
};

/** oslo's `escape_ipv6`: brackets around a bare IPv6 address, anything else unchanged. */
export function escapeIpv6(host: string): string {
  return isIPv6(host) ? `[${host}]` : host;
}

function checkHost(dest: string): void {
  // A host that could smuggle a path, query or credentials into the URI is refused.
  if (dest === "" || /[\s/?#@]/.test(dest)) throw new InvalidInputError("destHost", "not a host name or address");
}

/** Inputs of {@link liveMigrationUri}. */
export interface LiveMigrationUriOptions {
  readonly virtType: string;
  /** Transport for kvm/qemu (`tcp`, `tls`, `ssh`); default `tcp`. */
  readonly scheme?: string;
  /** A full template with one `%s` for the host (Nova's deprecated `live_migration_uri`); wins over the rest. */
  readonly template?: string;
}

/** The destination libvirtd URI for peer-to-peer migration to `dest`. */
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

/** QEMU's migration stream URI (`migrate_uri`), only for kvm/qemu; `undefined` otherwise. */
export function migrateUri(dest: string, virtType: string): string | undefined {
  checkHost(dest);
  if (virtType !== "qemu" && virtType !== "kvm") return undefined;
  return `tcp://${escapeIpv6(dest)}`;
}
