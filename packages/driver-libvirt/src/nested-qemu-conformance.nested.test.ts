// The whole conformance kit against the libvirt driver in the nested-QEMU environment: two libvirtd
// hosts in containers, real guests. Nothing that the environment exists for may be skipped here:
// the admin password is set and checked inside the guest, and the guest moves live between hosts.
// Skipped unless VIRTKIT_NESTED_QEMU=1 (scripts/with-services.sh sets it when the Docker engine of
// scripts/docker.sh answers; .ci/run requires it).
import { computeServiceFactory, runConformance, type RunReport } from "@virtkit/conformance";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { plugin } from "./plugin.js";
import { nestedQemuEnvironment } from "./nested-qemu-environment.js";
import { validatePluginOptions } from "@virtkit/core";

const ENABLED = process.env.VIRTKIT_NESTED_QEMU === "1";
const environmentDef = nestedQemuEnvironment((raw) => validatePluginOptions(plugin, raw));
const REASON = !ENABLED
  ? "VIRTKIT_NESTED_QEMU=1 is not set (it needs a Docker engine: bash scripts/docker.sh start)"
  : await environmentDef.unavailable(process.env);
if (REASON) console.warn(`[nested-qemu] skipping the nested-QEMU conformance run: ${REASON}`);

/** What this environment exists to prove: each must pass for real, never an environment limit. */
const MUST_PASS_HERE = [
  "admin-password.set",
  "admin-password.generated",
  "admin-password.agent-unresponsive",
  "admin-password.no-agent",
  // The guest's chpasswd refuses an account it lacks: the failure must come back typed.
  "admin-password.missing-account",
  "migration.live",
  "migration.pre-checks",
  "migration.rollback",
  "migration.abort",
  // Cut short by its caller, a block migration under TCG takes over a second to tear down: the
  // driver rejects only once the move has ended, and the rollback waits for libvirt's own cleanup.
  "migration.caller-cancels",
  "lifecycle.power-off-fallback",
  // The guest honours ACPI and records what it saw: a clean soft reboot and power off, told apart from hard ones.
  "lifecycle.reboot-soft-is-clean",
  "lifecycle.power-off-seen-by-guest",
  // Rescue seen from the guest: the rescue system's root takes rescuePassword through its agent,
  // and the guest tells which system it runs after reboots and power cycles.
  "lifecycle.rescue-password",
  "lifecycle.rescue-survives-reboot",
];

describe.skipIf(REASON !== undefined)(`conformance of the libvirt driver in nested QEMU${REASON ? ` (skipped: ${REASON})` : ""}`, () => {
  let report: RunReport;
  let factory: Awaited<ReturnType<typeof environmentDef.conformanceEnvironment>> | undefined;

  beforeAll(async () => {
    factory = await environmentDef.conformanceEnvironment({}, process.env);
    const t0 = Date.now();
    report = await runConformance({
      driver: { name: "libvirt-nested-qemu", version: plugin.version, spec: "@virtkit/driver-libvirt", environment: "nested-qemu" },
      environment: factory,
      service: computeServiceFactory(),
      scenarioTimeoutMs: 180_000,
      parallel: 2,
      onResult: (r, n, total) =>
        console.log(`[nested-qemu] [${n}/${total}] ${r.status.padEnd(11)} ${r.id} ${(r.durationMs / 1000).toFixed(1)} s${r.status === "pass" ? "" : ` (${r.reason ?? ""})`}`),
    });
    const s = report.summary;
    console.log(
      `[nested-qemu] whole suite in ${((Date.now() - t0) / 1000).toFixed(1)} s: ${s.pass} pass, ${s.fail} fail, ${s.unsupported} unsupported, ${s.skipped} skipped`,
    );
  }, 1_800_000);

  afterAll(async () => {
    await factory?.dispose?.();
  }, 120_000);

  it("fails no scenario and leaves nothing behind", () => {
    expect(report.results.filter((r) => r.status === "fail").map((r) => `${r.id}: ${r.reason ?? ""}`)).toEqual([]);
    expect(report.leaks).toEqual([]);
    expect(report.ok).toBe(true);
  });

  it("runs for real what the environment exists for: password in the guest, live migration between the hosts", () => {
    const notPassed = MUST_PASS_HERE.map((id) => report.results.find((r) => r.id === id))
      .filter((r) => r?.status !== "pass")
      .map((r) => `${r?.id ?? "?"}: ${r?.status ?? "missing"} ${r?.reason ?? ""}`);
    expect(notPassed).toEqual([]);
  });

  it("says where its results come from", () => {
    expect(report.notes.join("\n")).toMatch(/two libvirtd hosts in containers/);
  });
});
