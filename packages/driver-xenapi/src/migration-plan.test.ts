import { DEFAULT_MIGRATION_POLICY, type MigrationPolicy } from "@virtkit/core";
import { describe, expect, it } from "vitest";
import { planXenapiMigration, xapiMigrateOptions } from "./migration-plan.js";

const policy = (p: Partial<MigrationPolicy>): MigrationPolicy => ({ ...DEFAULT_MIGRATION_POLICY, ...p });

describe("planXenapiMigration", () => {
  it("maps the default policy to pool_migrate with live=true", () => {
    const plan = planXenapiMigration(policy({}));
    expect(plan).toEqual({
      scheme: "xenapi",
      flags: ["pool_migrate", "live"],
      params: { call: "pool_migrate", live: "true", bandwidth: 0, max_downtime_ms: 500 },
    });
    expect(xapiMigrateOptions(plan)).toEqual({ live: "true" });
  });

  it("maps block migration to migrate_send and non-live to live=false", () => {
    const plan = planXenapiMigration(policy({ block: true, live: false }));
    expect(plan.flags).toEqual(["migrate_send"]);
    expect(xapiMigrateOptions(plan)).toEqual({ live: "false" });
  });

  it.each([
    ["tunnelled", { tunnelled: true }, "tunnelledMigration"],
    ["native TLS", { nativeTls: true }, "nativeTlsMigration"],
    ["tunnelled + TLS", { tunnelled: true, nativeTls: true }, "tunnelledMigration"],
    ["post-copy", { permitPostCopy: true }, "postCopy"],
    ["auto-converge", { permitAutoConverge: true }, "autoConverge"],
  ] as const)("refuses %s as unsupported", (_what, p, capability) => {
    expect(() => planXenapiMigration(policy(p))).toThrow(expect.objectContaining({ code: "VIRTKIT_UNSUPPORTED_OPERATION", capability }));
  });

  it("refuses a malformed policy as invalid input", () => {
    expect(() => planXenapiMigration({ ...DEFAULT_MIGRATION_POLICY, parallelConnections: 0 })).toThrow(
      expect.objectContaining({ code: "VIRTKIT_INVALID_INPUT" }),
    );
  });
});
