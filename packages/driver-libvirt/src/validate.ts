/** Input checks the driver runs before anything reaches libvirt. */
import { InvalidInputError, validateFlavor, validateInstanceName, type Instance } from "@virtkit/core";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/**
 * Refuses an instance whose name, uuid or flavor libvirt should never see. Name and flavor use
 * core's validators; the uuid check is looser than core's RFC 4122 one on purpose, because
 * libvirt domains defined outside virtkit (the test driver's own `test` domain) carry uuids of
 * any variant.
 */
export function validateInstance(instance: Instance): void {
  if (typeof instance.uuid !== "string" || !UUID.test(instance.uuid)) {
    throw new InvalidInputError("instance.uuid", "must be a lower-case hyphenated uuid");
  }
  validateInstanceName(instance.name, "instance.name");
  validateFlavor(instance.flavor, "instance.flavor");
}

/** Glance-style boolean image property (`true`, `"true"`, `"yes"`, `"1"`). */
export function imagePropertyTrue(value: unknown): boolean {
  if (value === true) return true;
  return typeof value === "string" && ["true", "yes", "1", "on"].includes(value.toLowerCase());
}
