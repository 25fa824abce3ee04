// `virtkit conformance run` against the private libvirtd (scripts/libvirtd.sh): skipped, with the
// reason, when VIRTKIT_LIBVIRT_SOCKET is unset.
import { spawnSync } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const socket = process.env.VIRTKIT_LIBVIRT_SOCKET;
const bin = join(dirname(fileURLToPath(import.meta.url)), "..", "bin", "run.js");

describe.skipIf(!socket)(`virtkit against libvirt's test driver${socket ? "" : " (skipped: VIRTKIT_LIBVIRT_SOCKET is unset)"}`, () => {
  it("runs every scenario with typed outcomes and environment limits, never crashing", () => {
    const r = spawnSync(
      process.execPath,
      [bin, "conformance", "run", "--driver", "libvirt", "--option", `uri=test+unix:///default?socket=${socket}`, "--runner", "direct", "--json"],
      { encoding: "utf8", timeout: 120_000 },
    );
    expect([0, 1], r.stderr).toContain(r.status);
    const report = JSON.parse(r.stdout) as {
      notes: string[];
      results: { id: string; status: string; reason?: string }[];
    };
    expect(report.results.length).toBeGreaterThanOrEqual(30);
    expect(report.notes.join("\n")).toMatch(/test:\/\/\/default/);
    const byId = new Map(report.results.map((x) => [x.id, x]));
    expect(byId.get("lifecycle.spawn")?.status).toBe("pass");
    // No guest to log into: the password's effect cannot be verified, so the scenario is skipped, not passed.
    expect(byId.get("admin-password.set")).toMatchObject({ status: "skipped" });
    expect(byId.get("admin-password.set")?.reason).toMatch(/^environment limit: /);
    // No migration on the test hypervisor: the real move is never a pass.
    expect(byId.get("migration.live")?.status).not.toBe("pass");
  }, 150_000);
});
