// The conformance kit against the XenAPI driver and the XAPI simulator (results from a simulator,
// not a XenServer host), as `virtkit conformance run --driver xenapi` runs it: the plugin loaded by
// name, drivers built through its register (driverSetup), one simulator per scenario.
import { runConformance, resolveDriver, type RunReport } from "@virtkit/conformance";
import { beforeAll, describe, expect, it } from "vitest";

/**
 * Scenarios the kit asks for that XAPI itself cannot do; the driver refuses them typed (README,
 * "What XAPI cannot do"), so they fail as "declared but fails" with exactly that refusal.
 */
const XAPI_CANNOT: Readonly<Record<string, RegExp>> = {
  // xapi_vm_lifecycle: pool_migrate accepts Running VMs only.
  "migration.paused-moves-paused": /VIRTKIT_MIGRATION_PRECHECK_FAILED.*not running/,
  "events.migration-paused-source-not-stopped": /VIRTKIT_MIGRATION_PRECHECK_FAILED.*not running/,
  // No post-copy, no way to force a XAPI migration to finish.
  "migration.force-complete": /VIRTKIT_UNSUPPORTED_OPERATION/,
  // The agent's password command names no account (root on Linux, Administrator on Windows).
  "admin-password.os-admin-user": /VIRTKIT_ADMIN_PASSWORD_NOT_SUPPORTED/,
  "admin-password.at-spawn": /VIRTKIT_ADMIN_PASSWORD_NOT_SUPPORTED/,
};

describe("conformance of the xenapi driver against the XAPI simulator", () => {
  let report: RunReport;

  beforeAll(async () => {
    const xen = await resolveDriver("@virtkit/driver-xenapi", []);
    report = await runConformance({
      driver: xen.descriptor,
      environment: xen.environment,
      service: xen.service,
      parallel: 2,
      scenarioTimeoutMs: 20_000,
    });
  }, 900_000);

  it("says its results come from the simulator", () => {
    expect(report.notes.join("\n")).toMatch(/XAPI simulator \(@virtkit\/xapi-simulator\), not a XenServer host/);
  });

  it("has no environment limit at all (password and migration included) and leaves nothing behind", () => {
    const skipped = report.results.filter((r) => r.status === "skipped").map((r) => `${r.id}: ${r.reason}`);
    // Named in the log too: vitest shortens long diffs.
    if (skipped.length > 0) console.error(`skipped scenarios:\n${skipped.join("\n")}`);
    expect(skipped.join("\n")).toBe("");
    expect(report.leaks.join("\n")).toBe("");
  });

  it("passes every scenario except what XAPI cannot do, which fails with the driver's typed refusal", () => {
    const failed = report.results.filter((r) => r.status === "fail");
    for (const r of failed) {
      expect(Object.keys(XAPI_CANNOT), `${r.id}: ${r.reason}`).toContain(r.id);
      expect(r.reason, r.id).toMatch(XAPI_CANNOT[r.id]!);
    }
    const unsupported = report.results.filter((r) => r.status === "unsupported");
    for (const r of unsupported) expect(r.reason, r.id).toMatch(/not declared; refused with UnsupportedOperationError$/);
  });
});
