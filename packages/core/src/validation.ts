/**
 * Validators for everything that crosses into a driver: instance names, uuids, flavors, image
 * meta, migration policies and whole instances. Each refuses bad input with
 * {@link InvalidInputError} (the field and the reason), never echoes the offending value (it may
 * hold control characters or be pasted from a secret), and changes nothing: the input is never
 * mutated, a normalised copy is returned.
 */
import { InvalidInputError } from "./errors.js";
import { DEFAULT_MIGRATION_POLICY, type MigrationPolicy } from "./migration-policy.js";
import type { ContainerFormat, DiskFormat, Flavor, ImageMeta, ImageProperties, Instance } from "./model.js";

/** Limits the validators enforce; exported so callers can show them. */
export const LIMITS = Object.freeze({
  /** Instance (and driver registration) names. */
  nameMaxLength: 63,
  /** Flavor memory: 16 TiB. */
  memoryMbMax: 16 * 1024 * 1024,
  /** QEMU's and Xen's practical ceiling. */
  vcpusMax: 4096,
  /** Root / ephemeral disk: 1 PiB. */
  diskGbMax: 1024 * 1024,
  /** Swap: 1 TiB. */
  swapMbMax: 1024 * 1024,
  /** Free-form strings (flavor names, ids, property values). */
  stringMaxLength: 255,
  /** Metadata entries per instance (Nova's default quota). */
  metadataMaxItems: 128,
  /** Parallel migration connections (QEMU multifd channels). */
  parallelConnectionsMax: 255,
  /** Unix user names. */
  userNameMaxLength: 32,
});

/** The disk formats Glance knows. */
export const DISK_FORMATS: readonly DiskFormat[] = Object.freeze([
  "raw",
  "qcow2",
  "vmdk",
  "vdi",
  "vhd",
  "vhdx",
  "iso",
  "ami",
  "ari",
  "aki",
  "ploop",
]);

/** The container formats Glance knows. */
export const CONTAINER_FORMATS: readonly ContainerFormat[] = Object.freeze([
  "bare",
  "ovf",
  "ova",
  "ami",
  "ari",
  "aki",
  "docker",
  "compressed",
]);

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
// RFC 4122 / 9562 canonical form: lower-case, version 1-8, variant 10xx.
const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[1-8][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
// eslint-disable-next-line no-control-regex
const CONTROL_RE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/;
const USER_RE = /^[A-Za-z_][A-Za-z0-9._-]*\$?$/;
const HOSTNAME_LABEL_RE = /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;
const PROPERTY_KEY_RE = /^[A-Za-z0-9_][A-Za-z0-9_:.-]*$/;

function fail(field: string, reason: string): never {
  throw new InvalidInputError(field, reason);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function requireRecord(value: unknown, field: string): Record<string, unknown> {
  if (!isRecord(value)) fail(field, "must be an object");
  return value;
}

/**
 * A printable string of 1..max characters: no control characters. Used for display names, ids,
 * project ids and property values. Returns the string.
 */
export function validateSafeString(value: unknown, field: string, max: number = LIMITS.stringMaxLength): string {
  if (typeof value !== "string") fail(field, "must be a string");
  if (value.length === 0) fail(field, "must not be empty");
  if (value.length > max) fail(field, `must be at most ${max} characters`);
  if (CONTROL_RE.test(value)) fail(field, "must not contain control characters");
  return value;
}

/**
 * An instance name: 1..63 characters of letters, digits, `.`, `_`, `-`, starting with a letter
 * or digit. The reason names the first rule broken (control character, quote, `<>&`, slash,
 * whitespace) without echoing the value.
 */
export function validateInstanceName(value: unknown, field = "instance.name"): string {
  if (typeof value !== "string") fail(field, "must be a string");
  if (value.length === 0) fail(field, "must not be empty");
  if (value.length > LIMITS.nameMaxLength) fail(field, `must be at most ${LIMITS.nameMaxLength} characters`);
  if (CONTROL_RE.test(value)) fail(field, "must not contain control characters");
  if (/["'`]/.test(value)) fail(field, "must not contain quotes");
  if (/[<>&]/.test(value)) fail(field, "must not contain '<', '>' or '&'");
  if (/[/\\]/.test(value)) fail(field, "must not contain slashes");
  if (/\s/.test(value)) fail(field, "must not contain whitespace");
  if (!NAME_RE.test(value)) {
    fail(field, "must hold only letters, digits, '.', '_' and '-', starting with a letter or digit");
  }
  return value;
}

/** A canonical lower-case RFC 4122 uuid (version 1-8, RFC variant), e.g. from `crypto.randomUUID()`. */
export function validateUuid(value: unknown, field = "instance.uuid"): string {
  if (typeof value !== "string") fail(field, "must be a string");
  if (UUID_RE.test(value)) return value;
  if (UUID_RE.test(value.toLowerCase())) fail(field, "must be lower-case");
  fail(field, "must be a canonical RFC 4122 uuid (xxxxxxxx-xxxx-Mxxx-Nxxx-xxxxxxxxxxxx)");
}

function integerIn(value: unknown, field: string, min: number, max: number): number {
  if (typeof value !== "number" || !Number.isInteger(value)) fail(field, "must be an integer");
  if (value < min) fail(field, min === 1 ? "must be positive" : `must be >= ${min}`);
  if (value > max) fail(field, `must be <= ${max}`);
  return value;
}

function stringMap(value: unknown, field: string, maxItems: number): Readonly<Record<string, string>> {
  const rec = requireRecord(value, field);
  const entries = Object.entries(rec);
  if (entries.length > maxItems) fail(field, `must have at most ${maxItems} entries`);
  const out: Record<string, string> = {};
  for (const [k, v] of entries) {
    validateSafeString(k, `${field} key`);
    if (typeof v !== "string") fail(`${field}.${k}`, "must be a string");
    if (v.length > LIMITS.stringMaxLength)
      fail(`${field}.${k}`, `must be at most ${LIMITS.stringMaxLength} characters`);
    if (CONTROL_RE.test(v)) fail(`${field}.${k}`, "must not contain control characters");
    out[k] = v;
  }
  return Object.freeze(out);
}

/**
 * A flavor: positive integer `memoryMb` and `vcpus`, non-negative integer `rootGb`, optional
 * non-negative `ephemeralGb`/`swapMb`, all under {@link LIMITS}; `extraSpecs` a string map.
 */
export function validateFlavor(value: unknown, field = "flavor"): Flavor {
  const f = requireRecord(value, field);
  const flavor: Flavor = {
    name: validateSafeString(f.name, `${field}.name`),
    memoryMb: integerIn(f.memoryMb, `${field}.memoryMb`, 1, LIMITS.memoryMbMax),
    vcpus: integerIn(f.vcpus, `${field}.vcpus`, 1, LIMITS.vcpusMax),
    rootGb: integerIn(f.rootGb, `${field}.rootGb`, 0, LIMITS.diskGbMax),
    ...(f.ephemeralGb === undefined
      ? {}
      : { ephemeralGb: integerIn(f.ephemeralGb, `${field}.ephemeralGb`, 0, LIMITS.diskGbMax) }),
    ...(f.swapMb === undefined ? {} : { swapMb: integerIn(f.swapMb, `${field}.swapMb`, 0, LIMITS.swapMbMax) }),
    ...(f.extraSpecs === undefined
      ? {}
      : { extraSpecs: stringMap(f.extraSpecs, `${field}.extraSpecs`, LIMITS.metadataMaxItems) }),
  };
  return Object.freeze(flavor);
}

/**
 * Glance's boolean strings for `hw_qemu_guest_agent`: `true`/`yes` and `false`/`no`
 * (any case), or a real boolean. Anything else is refused, rather than read as false.
 */
export function parseImageBoolean(value: unknown, field: string): boolean {
  if (typeof value === "boolean") return value;
  if (typeof value === "string") {
    const v = value.toLowerCase();
    if (v === "true" || v === "yes") return true;
    if (v === "false" || v === "no") return false;
  }
  fail(field, "must be a boolean or one of 'true', 'yes', 'false', 'no'");
}

/** A guest user name (`root`, `Administrator`, `ubuntu`): no `:` or whitespace, which would corrupt `chpasswd` input. */
export function validateUserName(value: unknown, field = "os_admin_user"): string {
  if (typeof value !== "string") fail(field, "must be a string");
  if (value.length === 0) fail(field, "must not be empty");
  if (value.length > LIMITS.userNameMaxLength) fail(field, `must be at most ${LIMITS.userNameMaxLength} characters`);
  if (CONTROL_RE.test(value)) fail(field, "must not contain control characters");
  if (!USER_RE.test(value)) {
    fail(field, "must start with a letter or '_' and hold only letters, digits, '.', '_', '-' (and a final '$')");
  }
  return value;
}

const STRING_PROPERTIES = new Set(["os_type", "hw_disk_bus", "kernel_id", "ramdisk_id", "architecture"]);

function validateProperties(value: unknown, field: string): ImageProperties {
  const raw = requireRecord(value, field);
  const out: Record<string, string | number | boolean> = {};
  for (const [key, v] of Object.entries(raw)) {
    if (key.length === 0 || key.length > LIMITS.stringMaxLength || !PROPERTY_KEY_RE.test(key)) {
      fail(`${field} key`, "must be 1..255 characters of letters, digits, '_', ':', '.', '-'");
    }
    const f = `${field}.${key}`;
    if (v === undefined) continue;
    if (key === "hw_qemu_guest_agent") out[key] = parseImageBoolean(v, f);
    else if (key === "os_admin_user") out[key] = validateUserName(v, f);
    else if (STRING_PROPERTIES.has(key)) out[key] = validateSafeString(v, f);
    else if (typeof v === "string") {
      if (v.length > LIMITS.stringMaxLength) fail(f, `must be at most ${LIMITS.stringMaxLength} characters`);
      if (CONTROL_RE.test(v)) fail(f, "must not contain control characters");
      out[key] = v;
    } else if (typeof v === "boolean") out[key] = v;
    else if (typeof v === "number" && Number.isFinite(v)) out[key] = v;
    else fail(f, "must be a string, a finite number or a boolean");
  }
  return Object.freeze(out);
}

/**
 * Image meta: a known disk and container format, non-negative integer sizes, and typed
 * properties (`hw_qemu_guest_agent` normalised to a boolean, `os_admin_user` a valid user name,
 * `os_type` a string). Returns a normalised copy.
 */
export function validateImageMeta(value: unknown, field = "imageMeta"): ImageMeta {
  const m = requireRecord(value, field);
  if (m.diskFormat !== undefined && !DISK_FORMATS.includes(m.diskFormat as DiskFormat)) {
    fail(`${field}.diskFormat`, `must be one of ${DISK_FORMATS.join(", ")}`);
  }
  if (m.containerFormat !== undefined && !CONTAINER_FORMATS.includes(m.containerFormat as ContainerFormat)) {
    fail(`${field}.containerFormat`, `must be one of ${CONTAINER_FORMATS.join(", ")}`);
  }
  const meta: ImageMeta = {
    ...(m.id === undefined ? {} : { id: validateSafeString(m.id, `${field}.id`) }),
    ...(m.name === undefined ? {} : { name: validateSafeString(m.name, `${field}.name`) }),
    ...(m.diskFormat === undefined ? {} : { diskFormat: m.diskFormat as DiskFormat }),
    ...(m.containerFormat === undefined ? {} : { containerFormat: m.containerFormat as ContainerFormat }),
    ...(m.minDisk === undefined ? {} : { minDisk: integerIn(m.minDisk, `${field}.minDisk`, 0, LIMITS.diskGbMax) }),
    ...(m.minRam === undefined ? {} : { minRam: integerIn(m.minRam, `${field}.minRam`, 0, LIMITS.memoryMbMax) }),
    ...(m.size === undefined ? {} : { size: integerIn(m.size, `${field}.size`, 0, Number.MAX_SAFE_INTEGER) }),
    properties: validateProperties(m.properties ?? {}, `${field}.properties`),
  };
  return Object.freeze(meta);
}

/**
 * Image properties as the image API returns them (every value a string): converts
 * `hw_qemu_guest_agent` to a boolean and validates the typed keys; other values stay strings.
 */
export function parseImageProperties(raw: unknown, field = "imageMeta.properties"): ImageProperties {
  const rec = requireRecord(raw, field);
  for (const [k, v] of Object.entries(rec)) {
    if (typeof v !== "string") fail(`${field}.${k}`, "must be a string");
  }
  return validateProperties(rec, field);
}

const POLICY_BOOLEANS = ["live", "block", "tunnelled", "nativeTls", "permitPostCopy", "permitAutoConverge"] as const;
const POLICY_KEYS = new Set<string>([...POLICY_BOOLEANS, "parallelConnections", "bandwidthMiBps", "maxDowntimeMs"]);

/**
 * A complete {@link MigrationPolicy}: booleans are booleans, `parallelConnections` an integer
 * 1..255, `bandwidthMiBps` >= 0, `maxDowntimeMs` > 0; `tunnelled` with `nativeTls` is refused
 * (the tunnel bypasses TLS). Unknown keys are refused: a misspelt `nativeTLS` must not silently
 * give an unencrypted migration.
 */
export function validateMigrationPolicy(value: unknown, field = "migrationPolicy"): MigrationPolicy {
  const p = requireRecord(value, field);
  for (const key of Object.keys(p))
    if (!POLICY_KEYS.has(key)) fail(`${field}.${key}`, "is not a migration policy field");
  for (const key of POLICY_BOOLEANS) if (typeof p[key] !== "boolean") fail(`${field}.${key}`, "must be a boolean");
  const parallelConnections = integerIn(
    p.parallelConnections,
    `${field}.parallelConnections`,
    1,
    LIMITS.parallelConnectionsMax,
  );
  const bw = p.bandwidthMiBps;
  if (typeof bw !== "number" || !Number.isFinite(bw) || bw < 0)
    fail(`${field}.bandwidthMiBps`, "must be a number >= 0");
  const dt = p.maxDowntimeMs;
  if (typeof dt !== "number" || !Number.isFinite(dt) || dt <= 0) fail(`${field}.maxDowntimeMs`, "must be a number > 0");
  if (p.tunnelled === true && p.nativeTls === true) {
    fail(`${field}.nativeTls`, "cannot be combined with tunnelled (the tunnel bypasses native TLS)");
  }
  return Object.freeze({
    ...(p as unknown as MigrationPolicy),
    parallelConnections,
    bandwidthMiBps: bw,
    maxDowntimeMs: dt,
  });
}

/** {@link DEFAULT_MIGRATION_POLICY} overlaid with `partial`, then validated. */
export function resolveMigrationPolicy(
  partial: Partial<MigrationPolicy> = {},
  field = "migrationPolicy",
): MigrationPolicy {
  requireRecord(partial, field);
  return validateMigrationPolicy({ ...DEFAULT_MIGRATION_POLICY, ...partial }, field);
}

function validateHostname(value: unknown, field: string): string {
  if (typeof value !== "string" || value.length === 0 || value.length > 253) fail(field, "must be 1..253 characters");
  if (!value.split(".").every((l) => HOSTNAME_LABEL_RE.test(l))) {
    fail(field, "must be dot-separated labels of letters, digits and inner '-' (RFC 1123)");
  }
  return value;
}

/**
 * A whole instance: uuid, name, flavor, image meta, project id and the optional fields. Returns a
 * normalised, frozen copy (image properties typed) and leaves the argument untouched.
 */
export function validateInstance(value: unknown, field = "instance"): Instance {
  const i = requireRecord(value, field);
  const opt = <T>(v: unknown, f: (x: unknown) => T): T | undefined => (v === undefined ? undefined : f(v));
  const instance: Instance = {
    uuid: validateUuid(i.uuid, `${field}.uuid`),
    name: validateInstanceName(i.name, `${field}.name`),
    flavor: validateFlavor(i.flavor, `${field}.flavor`),
    imageMeta: validateImageMeta(i.imageMeta, `${field}.imageMeta`),
    projectId: validateSafeString(i.projectId, `${field}.projectId`),
  };
  const extra: Record<string, unknown> = {
    userId: opt(i.userId, (v) => validateSafeString(v, `${field}.userId`)),
    hostname: opt(i.hostname, (v) => validateHostname(v, `${field}.hostname`)),
    kernelId: opt(i.kernelId, (v) => validateSafeString(v, `${field}.kernelId`)),
    ramdiskId: opt(i.ramdiskId, (v) => validateSafeString(v, `${field}.ramdiskId`)),
    osType: opt(i.osType, (v) => validateSafeString(v, `${field}.osType`)),
    metadata: opt(i.metadata, (v) => stringMap(v, `${field}.metadata`, LIMITS.metadataMaxItems)),
  };
  for (const [k, v] of Object.entries(extra))
    if (v !== undefined) (instance as unknown as Record<string, unknown>)[k] = v;
  return Object.freeze(instance);
}
