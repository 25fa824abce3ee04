import { DEFAULT_MIGRATION_POLICY, InvalidInputError, type MigrationPolicy } from "@virtkit/core";
import { describe, expect, it } from "vitest";
import { MigrateFlags } from "@virtkit/libvirt-rpc";
import { VIR_MIGRATE, effectiveMigrationFlags, migrateFlagNames, planMigration } from "./migration-flags.js";

const policy = (p: Partial<MigrationPolicy> = {}): MigrationPolicy => ({ ...DEFAULT_MIGRATION_POLICY, ...p });

describe("VIR_MIGRATE bits", () => {
  it("match libvirt-domain.h", () => {
    expect(VIR_MIGRATE).toEqual({
      LIVE: 1 << 0,
      PEER2PEER: 1 << 1,
      TUNNELLED: 1 << 2,
      PERSIST_DEST: 1 << 3,
      UNDEFINE_SOURCE: 1 << 4,
      NON_SHARED_INC: 1 << 7,
      UNSAFE: 1 << 9,
      AUTO_CONVERGE: 1 << 13,
      POSTCOPY: 1 << 15,
      TLS: 1 << 16,
      PARALLEL: 1 << 17,
    });
  });

  it("agree with the rpc client's MigrateFlags", () => {
    for (const [name, bit] of Object.entries(VIR_MIGRATE)) {
      expect(MigrateFlags[name as keyof typeof MigrateFlags], name).toBe(bit);
    }
  });
});

describe("planMigration (Nova's _parse_migration_flags)", () => {
  // [name, policy, facts, bitmask, flag names]
  const table: [
    string,
    Partial<MigrationPolicy>,
    { virtType?: string; postCopySupported?: boolean },
    number,
    string[],
  ][] = [
    ["default live", {}, {}, 27, ["LIVE", "PEER2PEER", "PERSIST_DEST", "UNDEFINE_SOURCE"]],
    ["xen has no PEER2PEER", {}, { virtType: "xen" }, 25, ["LIVE", "PERSIST_DEST", "UNDEFINE_SOURCE"]],
    ["block", { block: true }, {}, 155, ["LIVE", "PEER2PEER", "PERSIST_DEST", "UNDEFINE_SOURCE", "NON_SHARED_INC"]],
    ["tunnelled", { tunnelled: true }, {}, 31, ["LIVE", "PEER2PEER", "TUNNELLED", "PERSIST_DEST", "UNDEFINE_SOURCE"]],
    [
      "block + tunnelled",
      { block: true, tunnelled: true },
      {},
      159,
      ["LIVE", "PEER2PEER", "TUNNELLED", "PERSIST_DEST", "UNDEFINE_SOURCE", "NON_SHARED_INC"],
    ],
    ["native TLS", { nativeTls: true }, {}, 65563, ["LIVE", "PEER2PEER", "PERSIST_DEST", "UNDEFINE_SOURCE", "TLS"]],
    [
      "post-copy permitted and supported",
      { permitPostCopy: true },
      { postCopySupported: true },
      32795,
      ["LIVE", "PEER2PEER", "PERSIST_DEST", "UNDEFINE_SOURCE", "POSTCOPY"],
    ],
    [
      "post-copy permitted, unsupported",
      { permitPostCopy: true },
      { postCopySupported: false },
      27,
      ["LIVE", "PEER2PEER", "PERSIST_DEST", "UNDEFINE_SOURCE"],
    ],
    [
      "auto-converge",
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
      "auto-converge when post-copy is unsupported",
      { permitPostCopy: true, permitAutoConverge: true },
      { postCopySupported: false },
      8219,
      ["LIVE", "PEER2PEER", "PERSIST_DEST", "UNDEFINE_SOURCE", "AUTO_CONVERGE"],
    ],
    [
      "parallel",
      { parallelConnections: 4 },
      {},
      131099,
      ["LIVE", "PEER2PEER", "PERSIST_DEST", "UNDEFINE_SOURCE", "PARALLEL"],
    ],
    ["non-live drops LIVE", { live: false }, {}, 26, ["PEER2PEER", "PERSIST_DEST", "UNDEFINE_SOURCE"]],
  ];

  it.each(table)("%s", (_name, p, facts, bitmask, flags) => {
    const plan = planMigration(policy(p), facts);
    expect(plan.scheme).toBe("libvirt");
    expect(plan.bitmask).toBe(bitmask);
    expect(plan.flags).toEqual(flags);
    expect(migrateFlagNames(bitmask)).toEqual(flags);
  });

  it("carries bandwidth, downtime and parallel connections as params", () => {
    expect(planMigration(policy({ bandwidthMiBps: 100, maxDowntimeMs: 300 })).params).toEqual({
      bandwidth: 100,
      max_downtime_ms: 300,
    });
    expect(planMigration(policy({ parallelConnections: 3 })).params["parallel.connections"]).toBe(3);
  });

  it("refuses tunnelled + native TLS and nonsense numbers", () => {
    expect(() => planMigration(policy({ tunnelled: true, nativeTls: true }))).toThrow(InvalidInputError);
    expect(() => planMigration(policy({ parallelConnections: 0 }))).toThrow(InvalidInputError);
    expect(() => planMigration(policy({ parallelConnections: 1.5 }))).toThrow(InvalidInputError);
    expect(() => planMigration(policy({ bandwidthMiBps: -1 }))).toThrow(InvalidInputError);
    expect(() => planMigration(policy({ maxDowntimeMs: Number.NaN }))).toThrow(InvalidInputError);
  });
});

describe("post-copy where libvirt refuses it (Nova and libvirt's qemu_migration checks)", () => {
  const KVM = { virtType: "kvm", postCopySupported: true };
  const BASE = 27;
  const { POSTCOPY, TUNNELLED, PARALLEL, NON_SHARED_INC } = VIR_MIGRATE;

  it("a paused guest migrates without post-copy, and without auto-converge in its place (Nova)", () => {
    const p = policy({ permitPostCopy: true, permitAutoConverge: true });
    expect(planMigration(p, KVM).bitmask).toBe(BASE | POSTCOPY);
    expect(planMigration(p, { ...KVM, instancePaused: true }).bitmask).toBe(BASE);
  });

  it("a non-live move gets neither post-copy nor auto-converge", () => {
    const p = policy({ live: false, permitPostCopy: true, permitAutoConverge: true });
    expect(planMigration(p, KVM).bitmask).toBe(BASE & ~VIR_MIGRATE.LIVE);
    expect(planMigration(policy({ live: false, permitAutoConverge: true }), KVM).bitmask).toBe(
      BASE & ~VIR_MIGRATE.LIVE,
    );
  });

  it("tunnelled + post-copy is refused typed; tunnelled alone or with post-copy unsupported is fine", () => {
    expect(() => planMigration(policy({ tunnelled: true, permitPostCopy: true }), KVM)).toThrow(InvalidInputError);
    expect(planMigration(policy({ tunnelled: true, permitPostCopy: true }), { postCopySupported: false }).bitmask).toBe(
      BASE | TUNNELLED,
    );
    // A non-live tunnelled move never post-copies, so nothing conflicts.
    expect(planMigration(policy({ live: false, tunnelled: true, permitPostCopy: true }), KVM).bitmask).toBe(
      (BASE & ~VIR_MIGRATE.LIVE) | TUNNELLED,
    );
  });

  it("parallel + post-copy needs QEMU 10.1 (Nova's MIN_MULTIFD_WITH_POSTCOPY_QEMU_VERSION)", () => {
    const p = policy({ permitPostCopy: true, parallelConnections: 4 });
    expect(() => planMigration(p, { ...KVM, hypervisorVersion: 10_000_000 })).toThrow(InvalidInputError);
    expect(() => planMigration(p, { ...KVM, hypervisorVersion: 7_002_000 })).toThrow(/QEMU 10\.1/);
    expect(planMigration(p, { ...KVM, hypervisorVersion: 10_001_000 }).bitmask).toBe(BASE | POSTCOPY | PARALLEL);
    // Parallel alone is fine on any version; so is post-copy alone.
    expect(planMigration(policy({ parallelConnections: 4 }), { ...KVM, hypervisorVersion: 7_002_000 }).bitmask).toBe(
      BASE | PARALLEL,
    );
    expect(planMigration(policy({ permitPostCopy: true }), { ...KVM, hypervisorVersion: 7_002_000 }).bitmask).toBe(
      BASE | POSTCOPY,
    );
  });

  it("effective flags at the start: paused drops post-copy, a block move with no local disk drops NON_SHARED_INC", () => {
    expect(effectiveMigrationFlags(BASE | POSTCOPY, { paused: true, localDisks: undefined })).toBe(BASE);
    expect(effectiveMigrationFlags(BASE | POSTCOPY, { paused: false, localDisks: undefined })).toBe(BASE | POSTCOPY);
    expect(effectiveMigrationFlags(BASE | NON_SHARED_INC, { paused: false, localDisks: 0 })).toBe(BASE);
    expect(effectiveMigrationFlags(BASE | NON_SHARED_INC, { paused: false, localDisks: 2 })).toBe(
      BASE | NON_SHARED_INC,
    );
  });

  it("trusted shared storage adds UNSAFE to a shared-storage move only, never to a block migration", () => {
    const UNSAFE = VIR_MIGRATE.UNSAFE;
    expect(UNSAFE).toBe(1 << 9);
    expect(effectiveMigrationFlags(BASE, { paused: false, localDisks: undefined, trustedSharedStorage: true })).toBe(
      BASE | UNSAFE,
    );
    expect(effectiveMigrationFlags(BASE, { paused: false, localDisks: undefined, trustedSharedStorage: false })).toBe(BASE);
    expect(effectiveMigrationFlags(BASE, { paused: false, localDisks: undefined })).toBe(BASE);
    expect(
      effectiveMigrationFlags(BASE | NON_SHARED_INC, { paused: false, localDisks: 1, trustedSharedStorage: true }),
    ).toBe(BASE | NON_SHARED_INC);
  });
});
