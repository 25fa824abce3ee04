/** Input checks the driver runs before anything reaches libvirt. */
import { InvalidInputError, type Instance } from "@virtkit/core";

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** Refuses an instance whose name, uuid or flavor libvirt should never see. */
export function validateInstance(instance: Instance): void {
  if (typeof instance.uuid !== "string" || !UUID.test(instance.uuid)) {
    throw new InvalidInputError("instance.uuid", "must be a lower-case hyphenated RFC 4122 uuid");
  }
  if (typeof instance.name !== "string" || !NAME.test(instance.name)) {
    throw new InvalidInputError(
      "instance.name",
      "letters, digits, '.', '_', '-', 1 to 63 characters, starting with a letter or digit",
    );
  }
  const f = instance.flavor;
  if (!Number.isInteger(f.memoryMb) || f.memoryMb < 1) throw new InvalidInputError("flavor.memoryMb", "must be >= 1");
  if (!Number.isInteger(f.vcpus) || f.vcpus < 1) throw new InvalidInputError("flavor.vcpus", "must be >= 1");
  if (!Number.isInteger(f.rootGb) || f.rootGb < 0) throw new InvalidInputError("flavor.rootGb", "must be >= 0");
}

/** Glance-style boolean image property (`true`, `"true"`, `"yes"`, `"1"`). */
export function imagePropertyTrue(value: unknown): boolean {
  if (value === true) return true;
  return typeof value === "string" && ["true", "yes", "1", "on"].includes(value.toLowerCase());
}
