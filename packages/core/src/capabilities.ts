/**
 * What a driver declares it can do: a typed record, not Nova's drifting dictionary of strings.
 * The conformance kit checks the declaration against behaviour both ways ("declared but fails",
 * "refused but declared").
 */
import { InvalidInputError } from "./errors.js";

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
  "pausedMigration",
  "forceCompleteMigration",
  "adminPasswordAnyUser",
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
  pausedMigration: "live-migrate a paused instance, which arrives paused",
  forceCompleteMigration: "force a live migration in progress to complete (post-copy or pausing the guest)",
  adminPasswordAnyUser: "set the password of the account the image's os_admin_user names, not only root / Administrator",
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

/** True when `name` is one of {@link CAPABILITY_NAMES}. */
export function isCapability(name: unknown): name is Capability {
  return typeof name === "string" && (CAPABILITY_NAMES as readonly string[]).includes(name);
}

/**
 * The contract methods each capability covers: a driver that does not declare the capability
 * refuses them with `UnsupportedOperationError` (what `BaseComputeDriver` does by default).
 * Migration flavours (`blockMigration`, `postCopy`, `pausedMigration`, ...), `adminPasswordAnyUser`
 * and `softReboot` refine methods of another capability or of the base contract, so they list none
 * of their own. (XAPI, for one, migrates only running VMs, has no force-complete, and its agent
 * sets only the guest's admin account: such limits are declared, not failed.)
 * (`registerEventListener` is refused only when `lifecycleEvents` is not declared: `planMigration`
 * is the other synchronous one.)
 */
export const CAPABILITY_METHODS: Readonly<Record<Capability, readonly string[]>> = {
  pause: ["pause", "unpause"],
  suspend: ["suspend", "resume"],
  rescue: ["rescue", "unrescue"],
  softReboot: [],
  consoleOutput: ["getConsoleOutput"],
  imageSnapshot: ["snapshot"],
  instanceSnapshots: [
    "createInstanceSnapshot",
    "listInstanceSnapshots",
    "revertToInstanceSnapshot",
    "deleteInstanceSnapshot",
  ],
  setAdminPassword: ["setAdminPassword"],
  liveMigration: [
    "planMigration",
    "checkCanLiveMigrateDestination",
    "checkCanLiveMigrateSource",
    "preLiveMigration",
    "liveMigration",
    "postLiveMigrationAtDestination",
    "rollbackLiveMigrationAtDestination",
    "liveMigrationAbort",
  ],
  blockMigration: [],
  tunnelledMigration: [],
  nativeTlsMigration: [],
  postCopy: [],
  autoConverge: [],
  pausedMigration: [],
  forceCompleteMigration: ["liveMigrationForceComplete"],
  adminPasswordAnyUser: [],
  lifecycleEvents: ["registerEventListener"],
};

/** Capabilities that mean nothing without another one. */
const REQUIRES: Partial<Record<Capability, Capability>> = {
  blockMigration: "liveMigration",
  tunnelledMigration: "liveMigration",
  nativeTlsMigration: "liveMigration",
  postCopy: "liveMigration",
  autoConverge: "liveMigration",
  pausedMigration: "liveMigration",
  forceCompleteMigration: "liveMigration",
  adminPasswordAnyUser: "setAdminPassword",
};

/** The capability whose name is closest to `name` (a typo), if any is close. */
function closestCapability(name: string): Capability | undefined {
  let best: { c: Capability; d: number } | undefined;
  for (const c of CAPABILITY_NAMES) {
    const d = editDistance(name.toLowerCase(), c.toLowerCase());
    if (!best || d < best.d) best = { c, d };
  }
  return best && best.d <= Math.max(2, Math.floor(name.length / 4)) ? best.c : undefined;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length]!;
}

/** Options of {@link validateCapabilities}. */
export interface ValidateCapabilitiesOptions {
  /** Where the declaration comes from, for messages (default `capabilities`). */
  readonly field?: string;
  /** Missing names count as `false` (default: a missing name is an error, as the type demands). */
  readonly allowMissing?: boolean;
}

/**
 * The run-time twin of the {@link Capabilities} type, for declarations that come from JavaScript
 * or `as` casts: an object whose keys are all capability names (a misspelt one is refused with
 * the closest name), whose values are booleans, with every name present (unless `allowMissing`),
 * and no migration flavour without `liveMigration`. Returns a frozen copy; throws
 * `InvalidInputError` on `<field>.<name>`. Keys are shown: they are capability names, not secrets.
 */
export function validateCapabilities(value: unknown, options: ValidateCapabilitiesOptions = {}): Capabilities {
  const field = options.field ?? "capabilities";
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new InvalidInputError(field, "must be an object of capability names to booleans");
  }
  const out: Record<string, boolean> = {};
  for (const [key, v] of Object.entries(value)) {
    if (!isCapability(key)) {
      const near = closestCapability(key);
      throw new InvalidInputError(
        `${field}.${key.slice(0, 64)}`,
        `not a capability${near ? ` (did you mean "${near}"?)` : ""}; known: ${CAPABILITY_NAMES.join(", ")}`,
      );
    }
    if (typeof v !== "boolean") throw new InvalidInputError(`${field}.${key}`, `must be true or false, got ${typeof v}`);
    out[key] = v;
  }
  const missing = CAPABILITY_NAMES.filter((c) => !(c in out));
  if (missing.length > 0 && !options.allowMissing) {
    throw new InvalidInputError(field, `missing ${missing.join(", ")} (declare every capability, true or false)`);
  }
  for (const c of missing) out[c] = false;
  for (const [c, needs] of Object.entries(REQUIRES) as [Capability, Capability][]) {
    if (out[c] && !out[needs]) throw new InvalidInputError(`${field}.${c}`, `declared without ${needs}`);
  }
  return Object.freeze(out as Record<Capability, boolean>);
}

/**
 * A full declaration from the names a driver supports: `declareCapabilities("pause", "suspend")`.
 * A misspelt name does not compile; at run time it is refused like {@link validateCapabilities}.
 */
export function declareCapabilities(...names: readonly Capability[]): Capabilities {
  const out: Record<string, boolean> = { ...NO_CAPABILITIES };
  for (const name of names) {
    if (!isCapability(name)) validateCapabilities({ [String(name)]: true }, { allowMissing: true });
    out[name] = true;
  }
  return validateCapabilities(out);
}
