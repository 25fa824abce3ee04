import { DEFAULT_MIGRATION_POLICY, InvalidInputError, type MigrationPolicy } from "@virtkit/core";
import { describe, expect, it } from "vitest";
import { VIR_MIGRATE, migrateFlagNames, planMigration } from "./migration-flags.js";

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
      AUTO_CONVERGE: 1 << 13,
      POSTCOPY: 1 << 15,
      TLS: 1 << 16,
      PARALLEL: 1 << 17,
    });
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
