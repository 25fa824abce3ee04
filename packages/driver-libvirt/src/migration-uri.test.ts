import { InvalidInputError, MigrationPreCheckError } from "@virtkit/core";
import { describe, expect, it } from "vitest";
import { escapeIpv6, liveMigrationUri, migrateUri } from "./migration-uri.js";

describe("escapeIpv6", () => {
  it("brackets IPv6 addresses only", () => {
    expect(escapeIpv6("::1")).toBe("[::1]");
    expect(escapeIpv6("fe80::1:2")).toBe("[fe80::1:2]");
    expect(escapeIpv6("10.0.0.1")).toBe("10.0.0.1");
    expect(escapeIpv6("host.example")).toBe("host.example");
  });
});

describe("liveMigrationUri (Nova's _live_migration_uri)", () => {
  it("uses the per-virt-type template with the scheme for kvm/qemu", () => {
    expect(liveMigrationUri("dest", { virtType: "kvm" })).toBe("qemu+tcp://dest/system");
    expect(liveMigrationUri("dest", { virtType: "qemu", scheme: "tls" })).toBe("qemu+tls://dest/system");
    expect(liveMigrationUri("dest", { virtType: "xen" })).toBe("xenmigr://dest/system");
    expect(liveMigrationUri("dest", { virtType: "parallels" })).toBe("parallels+tcp://dest/system");
  });
  it("escapes IPv6 destinations", () => {
    expect(liveMigrationUri("2001:db8::5", { virtType: "kvm" })).toBe("qemu+tcp://[2001:db8::5]/system");
    expect(liveMigrationUri("::1", { virtType: "qemu", template: "qemu+ssh://%s/system" })).toBe(
      "qemu+ssh://[::1]/system",
    );
  });
  it("prefers an explicit template", () => {
    expect(liveMigrationUri("10.1.2.3", { virtType: "kvm", template: "qemu+tls://%s/system?no_verify=1" })).toBe(
      "qemu+tls://10.1.2.3/system?no_verify=1",
    );
  });
  it("refuses virt types without a URI and hosts that are not hosts", () => {
    expect(() => liveMigrationUri("dest", { virtType: "lxc" })).toThrow(MigrationPreCheckError);
    expect(() => liveMigrationUri("a/b", { virtType: "kvm" })).toThrow(InvalidInputError);
    expect(() => liveMigrationUri("u@h", { virtType: "kvm" })).toThrow(InvalidInputError);
    expect(() => liveMigrationUri("", { virtType: "kvm" })).toThrow(InvalidInputError);
  });
});

describe("migrateUri (Nova's _migrate_uri)", () => {
  it("is tcp://host for kvm/qemu only", () => {
    expect(migrateUri("dest", "kvm")).toBe("tcp://dest");
    expect(migrateUri("fe80::7", "qemu")).toBe("tcp://[fe80::7]");
    expect(migrateUri("dest", "xen")).toBeUndefined();
    expect(migrateUri("dest", "test")).toBeUndefined();
  });
});
