// The libvirt driver applies core's one uuid rule: no looser (nil refused), no stricter (any variant).
import { InvalidInputError, type Instance } from "@virtkit/core";
import { describe, expect, it } from "vitest";
import { validateInstance } from "./validate.js";

const base: Instance = {
  uuid: "3f1c2b9e-5a4d-4c3b-8a2f-1e0d9c8b7a6f",
  name: "vm-1",
  flavor: { name: "m1.tiny", memoryMb: 64, vcpus: 1, rootGb: 1 },
  imageMeta: { properties: {} },
  projectId: "p",
};

describe("validateInstance (libvirt)", () => {
  it.each([
    ["a v4 uuid", "3f1c2b9e-5a4d-4c3b-8a2f-1e0d9c8b7a6f"],
    ["a non-RFC variant (libvirt's own test domain)", "6695eb01-f6a4-8304-79aa-97f2502e193f"],
    ["version 0", "123e4567-e89b-02d3-a456-426614174000"],
  ])("accepts %s", (_what, uuid) => {
    expect(() => validateInstance({ ...base, uuid })).not.toThrow();
  });

  it.each([
    ["the nil uuid", "00000000-0000-0000-0000-000000000000", "nil uuid"],
    ["upper case", "3F1C2B9E-5A4D-4C3B-8A2F-1E0D9C8B7A6F", "lower-case"],
    ["no hyphens", "3f1c2b9e5a4d4c3b8a2f1e0d9c8b7a6f", "canonical"],
    ["braces", "{3f1c2b9e-5a4d-4c3b-8a2f-1e0d9c8b7a6f}", "canonical"],
    ["a non-hex digit", "3f1c2b9e-5a4d-4c3b-8a2f-1e0d9c8b7a6g", "canonical"],
    ["empty", "", "canonical"],
  ])("refuses %s with InvalidInputError on instance.uuid", (_what, uuid, reason) => {
    let err: unknown;
    try {
      validateInstance({ ...base, uuid });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(InvalidInputError);
    expect(err).toMatchObject({ field: "instance.uuid", reason: expect.stringContaining(reason) });
  });

  it.each([null, undefined, 42, "i-1"])(
    "refuses an instance that is %j with InvalidInputError on instance, not a TypeError",
    (value) => {
      expect(() => validateInstance(value as never)).toThrow(
        expect.objectContaining({ field: "instance", name: "InvalidInputError" }),
      );
    },
  );
});
