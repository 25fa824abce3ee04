/**
 * A neutral description of how to live-migrate, which each driver maps to its own flags
 * (libvirt's VIR_MIGRATE_* bits, XenAPI's pool_migrate options, ...).
 */

/** How a live migration should be done. */
export interface MigrationPolicy {
  /** Keep the guest running during the move (false: pause, move, resume). */
  readonly live: boolean;
  /** Copy the disks (no shared storage): Nova's block migration. */
  readonly block: boolean;
  /** Tunnel the migration stream through the hypervisor's control connection. */
  readonly tunnelled: boolean;
  /** Encrypt the migration stream with the hypervisor's native TLS. Refused together with `tunnelled`. */
  readonly nativeTls: boolean;
  /** Allow switching to post-copy when the hypervisor supports it. */
  readonly permitPostCopy: boolean;
  /** Allow auto-converge (CPU throttling); not used when post-copy is used. */
  readonly permitAutoConverge: boolean;
  /** Parallel migration connections (>= 1; > 1 enables parallel migration). */
  readonly parallelConnections: number;
  /** Bandwidth cap in MiB/s; 0 = unlimited. */
  readonly bandwidthMiBps: number;
  /** Maximum tolerated downtime in milliseconds. */
  readonly maxDowntimeMs: number;
}

/** Nova's defaults: live, shared storage, no tunnel, no TLS, no post-copy, no auto-converge. */
export const DEFAULT_MIGRATION_POLICY: MigrationPolicy = Object.freeze({
  live: true,
  block: false,
  tunnelled: false,
  nativeTls: false,
  permitPostCopy: false,
  permitAutoConverge: false,
  parallelConnections: 1,
  bandwidthMiBps: 0,
  maxDowntimeMs: 500,
});

/**
 * What a driver would hand its hypervisor for a policy: the driver's own representation.
 * `scheme` says which representation (`libvirt`: `bitmask` is the VIR_MIGRATE_* flags;
 * `xenapi`: `params` are pool_migrate/migrate_send options).
 */
export interface MigrationPlan {
  readonly scheme: string;
  /** Flag names in the driver's vocabulary (e.g. `LIVE`, `PEER2PEER`), sorted by bit. */
  readonly flags: readonly string[];
  /** The numeric flags word, where the hypervisor has one. */
  readonly bitmask?: number;
  /** Extra typed parameters (bandwidth, downtime, parallel connections, URIs, ...). */
  readonly params: Readonly<Record<string, string | number | boolean>>;
}

/** Host facts a plan depends on (which hypervisor type, what it supports). */
export interface MigrationHostFacts {
  /** The virtualization type on the host, e.g. `kvm`, `qemu`, `xen`. */
  readonly virtType?: string;
  /** Whether the hypervisor supports post-copy. */
  readonly postCopySupported?: boolean;
  /**
   * The hypervisor's version in libvirt's encoding (major * 1,000,000 + minor * 1,000 + release),
   * where a plan depends on it (parallel connections with post-copy need QEMU 10.1).
   */
  readonly hypervisorVersion?: number;
  /** The instance is paused when the move starts (libvirt cannot post-copy a paused guest). */
  readonly instancePaused?: boolean;
}
