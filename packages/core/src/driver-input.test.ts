import { describe, expect, it } from "vitest";
import {
  validateAdminPassword,
  validateImageId,
  validateInstanceSnapshotInput,
  validateRescueInput,
  validateSnapshotId,
  validateSpawnRequest,
} from "./driver-input.js";
import { Secret } from "./secret.js";
import { refused } from "./testing/refused.js";

describe("the shared driver input checks", () => {
  it("spawn and rescue return the image meta normalised, or refuse it naming the field", () => {
    expect(validateSpawnRequest({ instance: {} })).toBeUndefined();
    expect(validateSpawnRequest({ instance: {}, imageMeta: { properties: { hw_qemu_guest_agent: "yes" } } })).toMatchObject({
      properties: { hw_qemu_guest_agent: true },
    });
    expect(refused(() => validateSpawnRequest({ instance: {}, imageMeta: 42 })).field).toBe("request.imageMeta");
    for (const instance of [null, undefined, 42]) expect(refused(() => validateSpawnRequest({ instance })).field).toBe("request.instance");
    expect(validateRescueInput({ properties: {} }, undefined)).toEqual({ properties: {} });
    expect(refused(() => validateRescueInput(null, undefined)).field).toBe("rescueImageMeta");
  });

  it("snapshot ids, names and descriptions", () => {
    expect(validateImageId("img-1")).toBe("img-1");
    expect(refused(() => validateImageId("")).field).toBe("imageId");
    expect(validateSnapshotId("s-1")).toBe("s-1");
    for (const bad of ["", 42, undefined]) expect(refused(() => validateSnapshotId(bad)).field).toBe("snapshotId");
    validateInstanceSnapshotInput("n", { description: "d" });
    validateInstanceSnapshotInput("x".repeat(255), undefined);
    for (const bad of ["", "x".repeat(256), 42]) expect(refused(() => validateInstanceSnapshotInput(bad, undefined)).field).toBe("name");
    expect(refused(() => validateInstanceSnapshotInput("n", { description: 42 })).field).toBe("description");
    // One rule set with ComputeService: no control characters; a description may be empty, up to 1024.
    expect(refused(() => validateInstanceSnapshotInput("a\nb", undefined)).field).toBe("name");
    validateInstanceSnapshotInput("n", { description: "" });
    validateInstanceSnapshotInput("n", { description: "d".repeat(1024) });
    for (const bad of ["d".repeat(1025), "tab\there", "x".repeat(5 * 1024 * 1024)]) {
      expect(refused(() => validateInstanceSnapshotInput("n", { description: bad })).field).toBe("description");
    }
    // A huge or control-laden id is refused without being echoed back.
    const huge = refused(() => validateSnapshotId("s".repeat(5 * 1024 * 1024)));
    expect(huge.field).toBe("snapshotId");
    expect(huge.message.length).toBeLessThan(200);
    expect(refused(() => validateSnapshotId("s\u0000")).field).toBe("snapshotId");
  });

  it("an admin password is a non-empty Secret, and a plain one is not echoed", () => {
    const pw = new Secret("s3cret-Value");
    expect(validateAdminPassword(pw)).toBe(pw);
    expect(refused(() => validateAdminPassword(new Secret(""))).field).toBe("password");
    const plain = refused(() => validateAdminPassword("plain-Secret-42"));
    expect(plain.field).toBe("password");
    expect(`${plain.message} ${plain.reason}`).not.toContain("plain-Secret-42");
  });
});
