/**
 * What a driver declares it can do: a typed record, not Nova's drifting dictionary of strings.
 * The conformance kit checks the declaration against behaviour both ways ("declared but fails",
 * "refused but declared").
 */

/** Every capability name, in a stable order (used by reports and the support matrix). */
export const CAPABILITY_NAMES = [
  "pause",
  "suspend",
  "rescue",
  "softReboot",
  "consoleOutput",
  "imageSnapshot",
  "instanceSnapshots",
  "setAdminPassword",
  "liveMigration",
  "blockMigration",
  "tunnelledMigration",
  "nativeTlsMigration",
  "postCopy",
  "autoConverge",
  "lifecycleEvents",
] as const;

/** One capability name. */
export type Capability = (typeof CAPABILITY_NAMES)[number];

/** A driver's full declaration: every capability, true or false. */
export type Capabilities = Readonly<Record<Capability, boolean>>;

/** Short explanations used in help output and reports. */
export const CAPABILITY_DESCRIPTIONS: Readonly<Record<Capability, string>> = {
  pause: "pause and unpause a running instance in memory",
  suspend: "suspend to disk and resume",
  rescue: "boot a rescue image and return from it",
  softReboot: "ask the guest to reboot itself (ACPI)",
  consoleOutput: "read the instance's console log",
  imageSnapshot: "write an instance's disk to the image service as a new image",
  instanceSnapshots: "create, list, revert and delete hypervisor-level snapshots",
  setAdminPassword: "set the admin password through a guest agent",
  liveMigration: "move a running instance to another host",
  blockMigration: "live migration without shared storage (copy the disks)",
  tunnelledMigration: "migration tunnelled through the hypervisor's control connection",
  nativeTlsMigration: "migration streams encrypted with the hypervisor's native TLS",
  postCopy: "post-copy live migration",
  autoConverge: "auto-converge (CPU throttling) during live migration",
  lifecycleEvents: "emit lifecycle events (started, stopped, paused, ...)",
};

/** A declaration with everything false, to spread over: `{ ...NO_CAPABILITIES, pause: true }`. */
export const NO_CAPABILITIES: Capabilities = Object.freeze(
  Object.fromEntries(CAPABILITY_NAMES.map((c) => [c, false])) as Record<Capability, boolean>,
);

/** A declaration with everything true. */
export const ALL_CAPABILITIES: Capabilities = Object.freeze(
  Object.fromEntries(CAPABILITY_NAMES.map((c) => [c, true])) as Record<Capability, boolean>,
);
