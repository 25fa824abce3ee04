import {
  DEFAULT_MIGRATION_POLICY,
  InvalidInputError,
  MigrationPreCheckError,
  liveMigrationUri as coreLiveMigrationUri,
  type MigrationPolicy,
} from "@virtkit/core";
import { describe, expect, it } from "vitest";
import { VIR_MIGRATE, liveMigrationUri, planLibvirtMigration, virMigrateFlagNames } from "./libvirt-migration-flags.js";

const policy = (p: Partial<MigrationPolicy> = {}): MigrationPolicy => ({ ...DEFAULT_MIGRATION_POLICY, ...p });

describe("VIR_MIGRATE bits", () => {
  it("match libvirt-domain.h", () => {
    expect(VIR_MIGRATE).toEqual({
      LIVE: 1,
      PEER2PEER: 2,
      TUNNELLED: 4,
      PERSIST_DEST: 8,
      UNDEFINE_SOURCE: 16,
      PAUSED: 32,
      NON_SHARED_DISK: 64,
      NON_SHARED_INC: 128,
      CHANGE_PROTECTION: 256,
      UNSAFE: 512,
      OFFLINE: 1024,
      COMPRESSED: 2048,
      ABORT_ON_ERROR: 4096,
      AUTO_CONVERGE: 8192,
      RDMA_PIN_ALL: 16384,
      POSTCOPY: 32768,
      TLS: 65536,
      PARALLEL: 131072,
    });
  });

  it("names flags sorted by bit", () => {
    expect(virMigrateFlagNames(32768 | 1 | 16)).toEqual(["LIVE", "UNDEFINE_SOURCE", "POSTCOPY"]);
  });
});

// Nova's expected bitmasks per configuration (nova/tests/unit/virt/libvirt/test_driver.py,
// test_parse_migration_flags_*): base = LIVE|PEER2PEER|UNDEFINE_SOURCE|PERSIST_DEST = 27.
const TABLE: [
  string,
  Partial<MigrationPolicy>,
  { virtType?: string; postCopySupported?: boolean },
  number,
  string[],
][] = [
  ["default kvm", {}, {}, 27, ["LIVE", "PEER2PEER", "PERSIST_DEST", "UNDEFINE_SOURCE"]],
  ["block", { block: true }, {}, 155, ["LIVE", "PEER2PEER", "PERSIST_DEST", "UNDEFINE_SOURCE", "NON_SHARED_INC"]],
  ["xen: no PEER2PEER", {}, { virtType: "xen" }, 25, ["LIVE", "PERSIST_DEST", "UNDEFINE_SOURCE"]],
  [
    "xen block",
    { block: true },
    { virtType: "xen" },
    153,
    ["LIVE", "PERSIST_DEST", "UNDEFINE_SOURCE", "NON_SHARED_INC"],
  ],
  ["qemu like kvm", {}, { virtType: "qemu" }, 27, ["LIVE", "PEER2PEER", "PERSIST_DEST", "UNDEFINE_SOURCE"]],
  ["tunnelled", { tunnelled: true }, {}, 31, ["LIVE", "PEER2PEER", "TUNNELLED", "PERSIST_DEST", "UNDEFINE_SOURCE"]],
  [
    "block tunnelled",
    { block: true, tunnelled: true },
    {},
    159,
    ["LIVE", "PEER2PEER", "TUNNELLED", "PERSIST_DEST", "UNDEFINE_SOURCE", "NON_SHARED_INC"],
  ],
  [
    "post-copy permitted and supported",
    { permitPostCopy: true },
    { postCopySupported: true },
    32795,
    ["LIVE", "PEER2PEER", "PERSIST_DEST", "UNDEFINE_SOURCE", "POSTCOPY"],
  ],
  [
    "post-copy permitted, not supported",
    { permitPostCopy: true },
    { postCopySupported: false },
    27,
    ["LIVE", "PEER2PEER", "PERSIST_DEST", "UNDEFINE_SOURCE"],
  ],
  [
    "post-copy permitted, support unknown",
    { permitPostCopy: true },
    {},
    27,
    ["LIVE", "PEER2PEER", "PERSIST_DEST", "UNDEFINE_SOURCE"],
  ],
  [
    "auto-converge permitted",
    { permitAutoConverge: true },
    {},
    8219,
    ["LIVE", "PEER2PEER", "PERSIST_DEST", "UNDEFINE_SOURCE", "AUTO_CONVERGE"],
  ],
  [
    "post-copy wins over auto-converge",
    { permitPostCopy: true, permitAutoConverge: true },
    { postCopySupported: true },
    32795,
    ["LIVE", "PEER2PEER", "PERSIST_DEST", "UNDEFINE_SOURCE", "POSTCOPY"],
  ],
  [
    "auto-converge when post-copy unsupported",
    { permitPostCopy: true, permitAutoConverge: true },
    { postCopySupported: false },
    8219,
    ["LIVE", "PEER2PEER", "PERSIST_DEST", "UNDEFINE_SOURCE", "AUTO_CONVERGE"],
  ],
  [
    "block + auto-converge",
    { block: true, permitAutoConverge: true },
    {},
    8347,
    ["LIVE", "PEER2PEER", "PERSIST_DEST", "UNDEFINE_SOURCE", "NON_SHARED_INC", "AUTO_CONVERGE"],
  ],
  [
    "block + post-copy",
    { block: true, permitPostCopy: true },
    { postCopySupported: true },
    32923,
    ["LIVE", "PEER2PEER", "PERSIST_DEST", "UNDEFINE_SOURCE", "NON_SHARED_INC", "POSTCOPY"],
  ],
  ["native TLS", { nativeTls: true }, {}, 65563, ["LIVE", "PEER2PEER", "PERSIST_DEST", "UNDEFINE_SOURCE", "TLS"]],
  [
    "parallel",
    { parallelConnections: 4 },
    {},
    131099,
    ["LIVE", "PEER2PEER", "PERSIST_DEST", "UNDEFINE_SOURCE", "PARALLEL"],
  ],
  [
    "one connection is not parallel",
    { parallelConnections: 1 },
    {},
    27,
    ["LIVE", "PEER2PEER", "PERSIST_DEST", "UNDEFINE_SOURCE"],
  ],
  ["non-live drops LIVE", { live: false }, {}, 26, ["PEER2PEER", "PERSIST_DEST", "UNDEFINE_SOURCE"]],
  [
    "everything compatible",
    { block: true, nativeTls: true, permitPostCopy: true, permitAutoConverge: true, parallelConnections: 2 },
    { postCopySupported: true },
    27 | 128 | 65536 | 32768 | 131072,
    ["LIVE", "PEER2PEER", "PERSIST_DEST", "UNDEFINE_SOURCE", "NON_SHARED_INC", "POSTCOPY", "TLS", "PARALLEL"],
  ],
];

describe("planLibvirtMigration (Nova's flag logic)", () => {
  it.each(TABLE)("%s", (_name, p, facts, bitmask, flags) => {
    const plan = planLibvirtMigration(policy(p), facts);
    expect(plan.scheme).toBe("libvirt");
    expect(plan.bitmask).toBe(bitmask);
    expect(plan.flags).toEqual(flags);
  });

  it("puts bandwidth, downtime and parallel connections in params", () => {
    expect(planLibvirtMigration(policy({ bandwidthMiBps: 100, maxDowntimeMs: 300 })).params).toEqual({
      bandwidth: 100,
      max_downtime_ms: 300,
    });
    expect(planLibvirtMigration(policy({ parallelConnections: 8 })).params).toEqual({
      bandwidth: 0,
      max_downtime_ms: 500,
      "parallel.connections": 8,
    });
  });

  it("refuses tunnelled with native TLS", () => {
    expect(() => planLibvirtMigration(policy({ tunnelled: true, nativeTls: true }))).toThrow(InvalidInputError);
  });

  it.each([
    ["parallelConnections 0", { parallelConnections: 0 }],
    ["parallelConnections 1.5", { parallelConnections: 1.5 }],
    ["negative bandwidth", { bandwidthMiBps: -1 }],
    ["NaN downtime", { maxDowntimeMs: Number.NaN }],
    ["non-boolean live", { live: "yes" as unknown as boolean }],
  ])("refuses %s", (_n, p) => {
    expect(() => planLibvirtMigration(policy(p))).toThrow(InvalidInputError);
  });

  it("is pure: same input, same plan, input untouched", () => {
    const p = Object.freeze(policy({ block: true }));
    expect(planLibvirtMigration(p)).toEqual(planLibvirtMigration(p));
  });
});

describe("liveMigrationUri (Nova's _live_migration_uri)", () => {
  it.each([
    ["kvm", "dst", "qemu+tcp://dst/system"],
    ["qemu", "dst", "qemu+tcp://dst/system"],
    ["xen", "dst", "xenmigr://dst/system"],
    ["parallels", "dst", "parallels+tcp://dst/system"],
    ["kvm", "fe80::1", "qemu+tcp://[fe80::1]/system"],
    ["kvm", "[fe80::1]", "qemu+tcp://[fe80::1]/system"],
    // Not an IPv6 address: left alone (the fake's old copy bracketed anything with a colon).
    ["kvm", "dst:16509", "qemu+tcp://dst:16509/system"],
  ])("%s to %s", (virtType, dest, uri) => {
    expect(liveMigrationUri(virtType, dest)).toBe(uri);
  });

  it("uses the scheme for kvm", () => {
    expect(liveMigrationUri("kvm", "dst", "tls")).toBe("qemu+tls://dst/system");
  });

  it("refuses a virt type without a migration URI, and a host that is not one", () => {
    expect(() => liveMigrationUri("lxc", "dst")).toThrow(MigrationPreCheckError);
    expect(() => liveMigrationUri("kvm", "dst/evil")).toThrow(InvalidInputError);
  });

  it("is the libvirt driver's implementation (core's), not a copy", () => {
    for (const dest of ["dst", "fe80::1", "10.0.0.1", "dst:16509", "::ffff:10.0.0.1"]) {
      expect(liveMigrationUri("kvm", dest, "tls")).toBe(coreLiveMigrationUri(dest, { virtType: "kvm", scheme: "tls" }));
    }
  });
});
