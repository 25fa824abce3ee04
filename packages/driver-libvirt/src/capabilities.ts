/** What the libvirt driver declares per hypervisor type: honest, measured on this platform. */
import { NO_CAPABILITIES, type Capabilities } from "@virtkit/core";

/** Facts the declaration depends on besides the virt type. */
export interface CapabilityFacts {
  /** A console log directory is configured and readable by the driver. */
  readonly consoleLog?: boolean;
  /**
   * A password may be sent on this connection: false on plain TCP (`xxx+tcp://`) unless the
   * operator allowed it (`allowPasswordOverTcp`), where every password call is refused.
   */
  readonly passwordTransport?: boolean;
}

/** The capabilities of the driver for `virtType`. */
export function libvirtCapabilities(virtType: string, facts: CapabilityFacts = {}): Capabilities {
  const caps = byVirtType(virtType, facts.consoleLog === true);
  // What the transport refuses is not declared: a run over plain TCP reads "unsupported", not "fails".
  return facts.passwordTransport === false ? { ...caps, setAdminPassword: false, adminPasswordAnyUser: false } : caps;
}

function byVirtType(virtType: string, consoleOutput: boolean): Capabilities {
  switch (virtType) {
    case "test":
      // The test driver runs through the daemon: it has snapshots, managed save, set-user-password
      // and events, but no volume download (so no image snapshot) and no migration at all.
      return {
        ...NO_CAPABILITIES,
        pause: true,
        suspend: true,
        rescue: true,
        softReboot: true,
        instanceSnapshots: true,
        setAdminPassword: true,
        adminPasswordAnyUser: true,
        lifecycleEvents: true,
        consoleOutput,
      };
    case "qemu":
    case "kvm":
      return {
        pause: true,
        suspend: true,
        rescue: true,
        softReboot: true,
        // Read from a console stream through the daemon (or from the console log when configured).
        consoleOutput: true,
        imageSnapshot: true,
        instanceSnapshots: true,
        setAdminPassword: true,
        liveMigration: true,
        blockMigration: true,
        tunnelledMigration: true,
        nativeTlsMigration: true,
        postCopy: true,
        autoConverge: true,
        // A paused domain migrates paused; force complete switches to post-copy or suspends the
        // guest; set-user-password names the account.
        pausedMigration: true,
        forceCompleteMigration: true,
        adminPasswordAnyUser: true,
        lifecycleEvents: true,
      };
    default:
      // Other libvirt hypervisors (xen, lxc, parallels, ...) are untested here: only what every
      // libvirt driver implements is declared.
      return { ...NO_CAPABILITIES, pause: true, softReboot: true, lifecycleEvents: true, consoleOutput };
  }
}
