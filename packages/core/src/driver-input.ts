/**
 * Checks of the arguments every driver receives, shared so each driver refuses malformed input
 * the same way (`InvalidInputError` naming the field) before anything reaches a hypervisor.
 */
import { InvalidInputError } from "./errors.js";
import type { PowerOffOptions, RescueOptions } from "./driver.js";
import type { ImageMeta } from "./model.js";
import { isSecret, type Secret } from "./secret.js";
import { validateImageMeta, validateSafeString } from "./validation.js";

/**
 * spawn's request: an object; its `imageMeta` (when given) valid image meta; its `adminPassword`
 * (when given) a Secret. Returns the request's image meta normalised (undefined when not given),
 * so a driver need not check it a second time.
 */
export function validateSpawnRequest(request: unknown): ImageMeta | undefined {
  if (typeof request !== "object" || request === null) throw new InvalidInputError("request", "must be an object");
  const { instance, imageMeta, adminPassword } = request as { instance?: unknown; imageMeta?: unknown; adminPassword?: unknown };
  // Not read into by the caller's driver before its own checks: not an object is refused here.
  if (typeof instance !== "object" || instance === null) throw new InvalidInputError("request.instance", "must be an object");
  const meta = imageMeta === undefined ? undefined : validateImageMeta(imageMeta, "request.imageMeta");
  if (adminPassword !== undefined && !isSecret(adminPassword)) {
    throw new InvalidInputError("request.adminPassword", "must be a Secret");
  }
  return meta;
}

/** A reboot type other than SOFT or HARD, as the error to reject with. */
export function rebootTypeError(type: unknown): InvalidInputError | undefined {
  return type === "SOFT" || type === "HARD" ? undefined : new InvalidInputError("type", "must be SOFT or HARD");
}

/** Power-off options whose clean timeout or retry interval is not a finite number >= 0, as the error. */
export function powerOffOptionsError(options: PowerOffOptions | undefined): InvalidInputError | undefined {
  for (const field of ["cleanShutdownTimeoutSec", "retryIntervalSec"] as const) {
    const v: unknown = options?.[field];
    if (v !== undefined && !(typeof v === "number" && Number.isFinite(v) && v >= 0)) {
      return new InvalidInputError(field, "must be a finite number >= 0");
    }
  }
  return undefined;
}

/** rescue's image meta and `rescuePassword` (a Secret when given); returns the image meta normalised. */
export function validateRescueInput(rescueImageMeta: unknown, options: RescueOptions | undefined): ImageMeta {
  const meta = validateImageMeta(rescueImageMeta, "rescueImageMeta");
  const pw: unknown = options?.rescuePassword;
  if (pw !== undefined && !isSecret(pw)) throw new InvalidInputError("rescuePassword", "must be a Secret");
  return meta;
}

/** The image an image snapshot writes into: a non-empty id. */
export function validateImageId(imageId: unknown): string {
  if (typeof imageId !== "string" || imageId.length === 0) throw new InvalidInputError("imageId", "must be a non-empty string");
  return imageId;
}

/** The longest instance snapshot description (longer than an image property; XAPI and libvirt keep more). */
export const SNAPSHOT_DESCRIPTION_MAX = 1024;

/**
 * An instance snapshot's name (1 to 255 characters) and description (at most
 * {@link SNAPSHOT_DESCRIPTION_MAX}, may be empty), neither with control characters: the same rules
 * for every driver and for `ComputeService`, checked before anything reaches a hypervisor (a
 * megabyte description would otherwise fail as a broken link on libvirt's 4 MiB string limit).
 */
export function validateInstanceSnapshotInput(name: unknown, options: { readonly description?: unknown } | undefined): void {
  validateSafeString(name, "name");
  const description = options?.description;
  if (description === undefined) return;
  if (typeof description !== "string") throw new InvalidInputError("description", "must be a string");
  if (description.length > 0) validateSafeString(description, "description", SNAPSHOT_DESCRIPTION_MAX);
}

/**
 * The snapshot a revert or delete names: 1 to 255 characters without control characters (every
 * driver's ids are far shorter), so a refusal that names it never echoes a huge value.
 */
export function validateSnapshotId(snapshotId: unknown): string {
  return validateSafeString(snapshotId, "snapshotId");
}

/**
 * setAdminPassword's password: a non-empty Secret. The value is never echoed: a caller may have
 * passed the plain password by mistake.
 */
export function validateAdminPassword(password: unknown): Secret {
  if (!isSecret(password)) throw new InvalidInputError("password", "must be a Secret");
  if (password.length === 0) throw new InvalidInputError("password", "must not be empty");
  return password;
}
