// What the libvirt environment says about itself reaches reports: no secret of the URI may.
import { describe, expect, it } from "vitest";
import { libvirtEnvironmentLimits, libvirtEnvironmentNotes, migrationCapMiBps } from "./conformance-environment.js";

describe("environment notes and limits", () => {
  it.each(["qemu+tcp://admin:SECRETpw@127.0.0.1:1/system", "qemu+tcp://h/system?auth_pass=SECRETpw&keyfile=/k"])(
    "never carry the URI's password or query: %s",
    (uri) => {
      const text = JSON.stringify([libvirtEnvironmentNotes("qemu", uri), libvirtEnvironmentLimits("qemu", uri)]);
      expect(text).not.toContain("SECRET");
      expect(text).not.toContain("/k");
      expect(text).toContain("qemu+tcp://");
    },
  );
});

describe("migrationCapMiBps", () => {
  it("makes a move of the floor last at least the asked time, and not much longer", () => {
    for (const ms of [300, 600, 700, 2_000, 3_000]) {
      const cap = migrationCapMiBps(32, ms);
      expect(Number.isInteger(cap)).toBe(true);
      expect((32 / cap) * 1000).toBeGreaterThanOrEqual(ms);
      expect((32 / cap) * 1000).toBeLessThan(ms * 2);
    }
  });
  it("never goes below 1 MiB/s (libvirt's unit; 0 would mean no cap)", () => {
    expect(migrationCapMiBps(32, 20_000)).toBe(1);
    expect(migrationCapMiBps(32, 600_000)).toBe(1);
  });
});
