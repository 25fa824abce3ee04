import { describe, expect, it } from "vitest";
import { DEFAULT_MIGRATION_POLICY } from "./migration-policy.js";
import { refused } from "./testing/refused.js";
import { testInstance } from "./testing/stub-driver.js";
import {
  parseImageProperties,
  resolveMigrationPolicy,
  validateFlavor,
  validateImageMeta,
  validateInstance,
  validateInstanceName,
  validateMigrationPolicy,
  validateUserName,
  validateUuid,
} from "./validation.js";


describe("validateInstanceName", () => {
  it.each(["a", "vm-1", "web.example", "A_b-c.9", "9lives", "x".repeat(63)])("accepts %j", (name) => {
    expect(validateInstanceName(name)).toBe(name);
  });

  it.each([
    ["", "must not be empty"],
    ["x".repeat(64), "at most 63"],
    ["vm\n1", "control characters"],
    ["vm\u0000", "control characters"],
    ["vm\u007f", "control characters"],
    ["vm\u2028x", "control characters"],
    ['vm"1', "quotes"],
    ["vm'1", "quotes"],
    ["vm`1", "quotes"],
    ["<script>", "'<', '>' or '&'"],
    ["a&b", "'<', '>' or '&'"],
    ["a/b", "slashes"],
    ["a\\b", "slashes"],
    ["../etc", "slashes"],
    ["a b", "whitespace"],
    ["-lead", "starting with a letter or digit"],
    [".hidden", "starting with a letter or digit"],
    ["_x", "starting with a letter or digit"],
    ["vm:1", "only letters"],
    ["vm;rm", "only letters"],
    ["émile", "only letters"],
    [42, "must be a string"],
    [null, "must be a string"],
  ])("refuses %j (%s) without echoing it", (name, reason) => {
    const err = refused(() => validateInstanceName(name));
    expect(err.field).toBe("instance.name");
    expect(err.reason).toContain(reason);
    if (typeof name === "string" && name.length > 1) expect(err.message).not.toContain(name);
  });
});

describe("validateUuid", () => {
  // One rule for every uuid handed to virtkit (core, the fake, libvirt): canonical hyphenated
  // lower-case hex, any variant and version bits, never the nil uuid.
  it.each([
    ["a random v4", "3f1c2b9e-5a4d-4c3b-8a2f-1e0d9c8b7a6f", "3f1c2b9e-5a4d-4c3b-8a2f-1e0d9c8b7a6f"],
    ["v1", "123e4567-e89b-12d3-a456-426614174000", "123e4567-e89b-12d3-a456-426614174000"],
    ["v7", "017f22e2-79b0-7cc3-98c4-dc0c0c07398f", "017f22e2-79b0-7cc3-98c4-dc0c0c07398f"],
    ["version 0", "123e4567-e89b-02d3-a456-426614174000", "123e4567-e89b-02d3-a456-426614174000"],
    ["version f", "123e4567-e89b-f2d3-a456-426614174000", "123e4567-e89b-f2d3-a456-426614174000"],
    ["NCS variant 0xxx", "6695eb01-f6a4-8304-79aa-97f2502e193f", "6695eb01-f6a4-8304-79aa-97f2502e193f"],
    ["Microsoft variant 110x", "123e4567-e89b-12d3-c456-426614174000", "123e4567-e89b-12d3-c456-426614174000"],
    ["reserved variant 111x", "123e4567-e89b-12d3-e456-426614174000", "123e4567-e89b-12d3-e456-426614174000"],
    ["the max uuid", "ffffffff-ffff-ffff-ffff-ffffffffffff", "ffffffff-ffff-ffff-ffff-ffffffffffff"],
  ])("accepts %s: %s", (_what, uuid, normalised) => {
    expect(validateUuid(uuid)).toBe(normalised);
  });
  it("accepts crypto.randomUUID()", () => {
    const uuid = crypto.randomUUID();
    expect(validateUuid(uuid)).toBe(uuid);
  });
  it.each([
    ["the nil uuid", "00000000-0000-0000-0000-000000000000", "must not be the nil uuid"],
    ["upper case", "123E4567-E89B-12D3-A456-426614174000", "must be lower-case"],
    ["mixed case", "3F1c2B9e-5a4D-4c3B-8a2F-1e0D9c8B7a6F", "must be lower-case"],
    ["no hyphens", "123e4567e89b12d3a456426614174000", "canonical"],
    ["braces", "{123e4567-e89b-12d3-a456-426614174000}", "canonical"],
    ["urn form", "urn:uuid:123e4567-e89b-12d3-a456-426614174000", "canonical"],
    ["too short", "123e4567-e89b-12d3-a456-42661417400", "canonical"],
    ["too long", "123e4567-e89b-12d3-a456-4266141740000", "canonical"],
    ["hyphens misplaced", "123e456-7e89b-12d3-a456-426614174000", "canonical"],
    ["a non-hex digit", "123e4567-e89b-12d3-a456-42661417400g", "canonical"],
    ["leading space", " 123e4567-e89b-12d3-a456-426614174000", "canonical"],
    ["trailing newline", "123e4567-e89b-12d3-a456-426614174000\n", "canonical"],
    ["empty", "", "canonical"],
    ["undefined", undefined, "must be a string"],
    ["a number", 42, "must be a string"],
  ])("refuses %s with a typed error naming the field", (_what, uuid, reason) => {
    const err = refused(() => validateUuid(uuid, "spawn.instance.uuid"));
    expect(err.field).toBe("spawn.instance.uuid");
    expect(err.reason).toContain(reason);
    if (typeof uuid === "string" && uuid.length > 0) expect(err.message).not.toContain(uuid.trim());
  });
});

describe("validateFlavor", () => {
  const good = { name: "m1.tiny", memoryMb: 512, vcpus: 1, rootGb: 0 };
  it("accepts a flavor and returns a frozen copy", () => {
    const input = { ...good, extraSpecs: { "hw:cpu_policy": "dedicated" } };
    const out = validateFlavor(input);
    expect(out).toEqual(input);
    expect(out).not.toBe(input);
    expect(Object.isFrozen(out)).toBe(true);
  });
  it.each([
    [{ memoryMb: 0 }, "flavor.memoryMb", "positive"],
    [{ memoryMb: -1 }, "flavor.memoryMb", "positive"],
    [{ memoryMb: 1.5 }, "flavor.memoryMb", "integer"],
    [{ memoryMb: "512" }, "flavor.memoryMb", "integer"],
    [{ memoryMb: Number.NaN }, "flavor.memoryMb", "integer"],
    [{ memoryMb: Number.POSITIVE_INFINITY }, "flavor.memoryMb", "integer"],
    [{ memoryMb: 64 * 1024 * 1024 }, "flavor.memoryMb", "<="],
    [{ vcpus: 0 }, "flavor.vcpus", "positive"],
    [{ vcpus: 100000 }, "flavor.vcpus", "<="],
    [{ rootGb: -1 }, "flavor.rootGb", ">= 0"],
    [{ rootGb: 0.5 }, "flavor.rootGb", "integer"],
    [{ ephemeralGb: -2 }, "flavor.ephemeralGb", ">= 0"],
    [{ swapMb: 1.1 }, "flavor.swapMb", "integer"],
    [{ name: "" }, "flavor.name", "empty"],
    [{ name: "bad\nname" }, "flavor.name", "control"],
    [{ extraSpecs: { k: 1 } }, "flavor.extraSpecs.k", "string"],
    [{ extraSpecs: [] }, "flavor.extraSpecs", "object"],
  ])("refuses %j", (patch, field, reason) => {
    const err = refused(() => validateFlavor({ ...good, ...patch }));
    expect(err.field).toBe(field);
    expect(err.reason).toContain(reason);
  });
  it("refuses a non-object", () => {
    expect(refused(() => validateFlavor(null)).field).toBe("flavor");
  });
});

describe("validateImageMeta / parseImageProperties", () => {
  it.each([
    ["yes", true],
    ["YES", true],
    ["true", true],
    ["True", true],
    [true, true],
    ["no", false],
    ["false", false],
    ["FALSE", false],
    [false, false],
  ])("normalises hw_qemu_guest_agent %j to %s without touching the input", (raw, expected) => {
    const input = { diskFormat: "qcow2", properties: { hw_qemu_guest_agent: raw } };
    const snapshot = JSON.stringify(input);
    const out = validateImageMeta(input);
    expect(out.properties.hw_qemu_guest_agent).toBe(expected);
    expect(JSON.stringify(input)).toBe(snapshot);
  });

  it.each([
    [{ diskFormat: "qcow3" }, "imageMeta.diskFormat"],
    [{ diskFormat: "QCOW2" }, "imageMeta.diskFormat"],
    [{ containerFormat: "zip" }, "imageMeta.containerFormat"],
    [{ minDisk: -1 }, "imageMeta.minDisk"],
    [{ minRam: 1.5 }, "imageMeta.minRam"],
    [{ size: -5 }, "imageMeta.size"],
    [{ id: "" }, "imageMeta.id"],
    [{ properties: { hw_qemu_guest_agent: "maybe" } }, "imageMeta.properties.hw_qemu_guest_agent"],
    [{ properties: { hw_qemu_guest_agent: "1" } }, "imageMeta.properties.hw_qemu_guest_agent"],
    [{ properties: { hw_qemu_guest_agent: 1 } }, "imageMeta.properties.hw_qemu_guest_agent"],
    [{ properties: { os_admin_user: "root:x" } }, "imageMeta.properties.os_admin_user"],
    [{ properties: { os_admin_user: "ro ot" } }, "imageMeta.properties.os_admin_user"],
    [{ properties: { os_admin_user: "root\nadmin" } }, "imageMeta.properties.os_admin_user"],
    [{ properties: { os_admin_user: "" } }, "imageMeta.properties.os_admin_user"],
    [{ properties: { os_admin_user: "a".repeat(33) } }, "imageMeta.properties.os_admin_user"],
    [{ properties: { os_admin_user: 0 } }, "imageMeta.properties.os_admin_user"],
    [{ properties: { os_type: 7 } }, "imageMeta.properties.os_type"],
    [{ properties: { os_type: "" } }, "imageMeta.properties.os_type"],
    [{ properties: { custom: { nested: true } } }, "imageMeta.properties.custom"],
    [{ properties: { custom: Number.NaN } }, "imageMeta.properties.custom"],
    [{ properties: { custom: "a\u0000b" } }, "imageMeta.properties.custom"],
    [{ properties: { "bad key": "x" } }, "imageMeta.properties key"],
    [{ properties: "x" }, "imageMeta.properties"],
  ])("refuses %j", (patch, field) => {
    expect(refused(() => validateImageMeta({ properties: {}, ...patch })).field).toBe(field);
  });

  it.each(["root", "Administrator", "ubuntu", "_svc", "ec2-user", "machine$"])("accepts admin user %j", (u) => {
    expect(validateUserName(u)).toBe(u);
  });

  it("keeps unknown properties and typed ones", () => {
    const out = validateImageMeta({
      properties: { os_type: "linux", os_admin_user: "root", hw_disk_bus: "virtio", "custom:x": 3, flag: false },
    });
    expect(out.properties).toEqual({
      os_type: "linux",
      os_admin_user: "root",
      hw_disk_bus: "virtio",
      "custom:x": 3,
      flag: false,
    });
  });

  it("parses a raw string map as the image API returns it", () => {
    expect(parseImageProperties({ hw_qemu_guest_agent: "yes", os_admin_user: "Administrator", min: "5" })).toEqual({
      hw_qemu_guest_agent: true,
      os_admin_user: "Administrator",
      min: "5",
    });
    expect(refused(() => parseImageProperties({ a: 1 })).field).toBe("imageMeta.properties.a");
    expect(refused(() => parseImageProperties({ hw_qemu_guest_agent: "y" })).field).toBe(
      "imageMeta.properties.hw_qemu_guest_agent",
    );
    expect(refused(() => parseImageProperties(null)).field).toBe("imageMeta.properties");
  });
});

describe("validateMigrationPolicy", () => {
  it("accepts the default and resolves partials", () => {
    expect(validateMigrationPolicy(DEFAULT_MIGRATION_POLICY)).toEqual(DEFAULT_MIGRATION_POLICY);
    expect(resolveMigrationPolicy({ block: true, parallelConnections: 4 })).toMatchObject({
      block: true,
      parallelConnections: 4,
      live: true,
    });
  });
  it.each([
    [{ parallelConnections: 0 }, "migrationPolicy.parallelConnections"],
    [{ parallelConnections: 1.5 }, "migrationPolicy.parallelConnections"],
    [{ parallelConnections: 1000 }, "migrationPolicy.parallelConnections"],
    [{ bandwidthMiBps: -1 }, "migrationPolicy.bandwidthMiBps"],
    [{ bandwidthMiBps: Number.POSITIVE_INFINITY }, "migrationPolicy.bandwidthMiBps"],
    [{ maxDowntimeMs: 0 }, "migrationPolicy.maxDowntimeMs"],
    [{ maxDowntimeMs: -10 }, "migrationPolicy.maxDowntimeMs"],
    [{ live: "yes" }, "migrationPolicy.live"],
    [{ block: 1 }, "migrationPolicy.block"],
    [{ permitPostCopy: null }, "migrationPolicy.permitPostCopy"],
    [{ tunnelled: true, nativeTls: true }, "migrationPolicy.nativeTls"],
    [{ nativeTLS: true }, "migrationPolicy.nativeTLS"],
  ])("refuses %j", (patch, field) => {
    expect(refused(() => validateMigrationPolicy({ ...DEFAULT_MIGRATION_POLICY, ...patch })).field).toBe(field);
    expect(refused(() => resolveMigrationPolicy(patch as never)).field).toBe(field);
  });
  it("refuses a missing field", () => {
    const { live: _live, ...rest } = DEFAULT_MIGRATION_POLICY;
    expect(refused(() => validateMigrationPolicy(rest)).field).toBe("migrationPolicy.live");
  });
  it("allows bandwidth 0 (unlimited) and tunnelled alone", () => {
    expect(resolveMigrationPolicy({ bandwidthMiBps: 0, tunnelled: true }).tunnelled).toBe(true);
  });
});

describe("validateInstance", () => {
  it("returns a frozen, normalised copy and leaves the input alone", () => {
    const input = testInstance({
      imageMeta: { properties: { hw_qemu_guest_agent: "yes" as unknown as boolean } },
      metadata: { role: "web" },
      hostname: "web-1.example.org",
    });
    const before = JSON.stringify(input);
    const out = validateInstance(input);
    expect(out.imageMeta.properties.hw_qemu_guest_agent).toBe(true);
    expect(out.metadata).toEqual({ role: "web" });
    expect(Object.isFrozen(out)).toBe(true);
    expect(JSON.stringify(input)).toBe(before);
  });
  it("refuses an upper-case uuid (one spelling per instance) and the nil uuid", () => {
    expect(refused(() => validateInstance(testInstance({ uuid: "3F1C2B9E-5A4D-4C3B-8A2F-1E0D9C8B7A6F" }))).reason).toBe(
      "must be lower-case",
    );
    expect(refused(() => validateInstance(testInstance({ uuid: "00000000-0000-0000-0000-000000000000" }))).field).toBe(
      "instance.uuid",
    );
  });
  it.each([
    [{ uuid: "nope" }, "instance.uuid"],
    [{ name: "bad name" }, "instance.name"],
    [{ flavor: { name: "x", memoryMb: 0, vcpus: 1, rootGb: 0 } }, "instance.flavor.memoryMb"],
    [{ imageMeta: { diskFormat: "exe", properties: {} } }, "instance.imageMeta.diskFormat"],
    [{ imageMeta: undefined }, "instance.imageMeta"],
    [{ projectId: "" }, "instance.projectId"],
    [{ projectId: undefined }, "instance.projectId"],
    [{ hostname: "-bad-" }, "instance.hostname"],
    [{ hostname: "a..b" }, "instance.hostname"],
    [{ metadata: { k: 5 } }, "instance.metadata.k"],
    [{ userId: "" }, "instance.userId"],
    [{ osType: 3 }, "instance.osType"],
  ])("refuses %j", (patch, field) => {
    expect(refused(() => validateInstance({ ...testInstance(), ...patch })).field).toBe(field);
  });
  it("refuses non-objects", () => {
    expect(refused(() => validateInstance("vm")).field).toBe("instance");
    expect(refused(() => validateInstance([])).field).toBe("instance");
  });
});
