/**
 * The fake's input checks: `@virtkit/core`'s validators (the same rules every driver applies),
 * run before anything changes so bad input rejects with `InvalidInputError` and leaves state alone.
 */
import {
  InvalidInputError,
  validateInstance as coreValidateInstance,
  validateUuid,
  type Instance,
} from "@virtkit/core";

/** Checks just the identity an operation looks an instance up by. */
export function validateInstanceRef(instance: Instance): void {
  if (typeof instance !== "object" || instance === null) throw new InvalidInputError("instance", "must be an object");
  validateUuid(instance.uuid, "instance.uuid");
}

/** Checks everything spawn needs; returns core's normalised, frozen copy. */
export function validateInstance(instance: Instance): Instance {
  return coreValidateInstance(instance, "instance");
}

/** Glance-style boolean image property (`true`, `"true"`, `"yes"`), for meta that skipped normalisation. */
export function imagePropertyTrue(value: unknown): boolean {
  if (value === true) return true;
  return typeof value === "string" && ["true", "yes"].includes(value.toLowerCase());
}
