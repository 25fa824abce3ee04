/** Input checks the driver runs before anything reaches libvirt. */
import { InvalidInputError, validateFlavor, validateInstanceName, validateUuid, type Instance } from "@virtkit/core";

/**
 * Refuses an instance whose name, uuid or flavor libvirt should never see, with core's
 * validators: the uuid rule is the one every driver applies (lower-case, any variant, since
 * domains defined outside virtkit carry any; never the nil uuid).
 */
export function validateInstance(instance: Instance): void {
  // From JavaScript anything can come: not an object is refused as such, not read into.
  if (typeof instance !== "object" || instance === null) throw new InvalidInputError("instance", "must be an object");
  validateUuid(instance.uuid, "instance.uuid");
  validateInstanceName(instance.name, "instance.name");
  validateFlavor(instance.flavor, "instance.flavor");
}

/** Glance-style boolean image property (`true`, `"true"`, `"yes"`, `"1"`). */
export function imagePropertyTrue(value: unknown): boolean {
  if (value === true) return true;
  return typeof value === "string" && ["true", "yes", "1", "on"].includes(value.toLowerCase());
}
