import { describe, expect, it } from "vitest";
import { SCENARIOS } from "../scenarios.js";
import { stableStringify } from "../stable-json.js";
import { summarize, type RunReport, type ScenarioResult } from "../types.js";
import { buildMatrix } from "./build-matrix.js";
import { renderHtml } from "./render-html.js";
import { renderMarkdown } from "./render-markdown.js";

function report(name: string, status: (id: string) => ScenarioResult["status"], notes: string[] = []): RunReport {
  const results: ScenarioResult[] = SCENARIOS.map((s) => ({
    id: s.id,
    title: s.title,
    group: s.group,
    capability: s.capability,
    level: s.level,
    status: status(s.id),
    ...(status(s.id) === "pass" ? {} : { reason: `${status(s.id)} because | of <things>` }),
    durationMs: Math.random() * 10,
  }));
  return {
    driver: { name, version: "1.0.0" },
    notes,
    level: "MUST",
    startedAt: new Date().toISOString(),
    durationMs: 5,
    runner: "direct",
    results,
    ...summarize(results, "MUST"),
  };
}

describe("the support matrix", () => {
  const a = report("zeta", () => "pass");
  const b = report(
    "alpha",
    (id) => (id.startsWith("migration.") ? "unsupported" : id === "lifecycle.spawn" ? "fail" : "pass"),
    ["XenAPI results come from a simulator"],
  );

  it("has one cell per driver and scenario, drivers sorted, no timings", () => {
    const m = buildMatrix([a, b], [{ name: "libvirt", reason: "no daemon" }]);
    expect(m.drivers.map((d) => d.name)).toEqual(["alpha", "libvirt", "zeta"]);
    for (const d of m.drivers) expect(Object.keys(m.cells[d.name]!)).toHaveLength(SCENARIOS.length);
    expect(m.cells.alpha!["lifecycle.spawn"]).toEqual({ status: "fail", reason: "fail because | of <things>" });
    expect(m.cells.libvirt!["lifecycle.spawn"]).toEqual({
      status: "skipped",
      reason: "environment unavailable: no daemon",
    });
    expect(stableStringify(m)).not.toMatch(/durationMs|startedAt/);
  });

  it("tells a column whose run did not finish from one whose environment is missing", () => {
    const m = buildMatrix([a], [
      { name: "libvirt", reason: "no daemon" },
      { name: "crashed", reason: "worker exited with signal SIGKILL", failed: true },
    ]);
    expect(m.drivers.find((d) => d.name === "crashed")).toMatchObject({ availability: "failed", reason: "worker exited with signal SIGKILL" });
    expect(m.drivers.find((d) => d.name === "libvirt")?.availability).toBe("unavailable");
    expect(m.cells.crashed!["lifecycle.spawn"]).toEqual({
      status: "skipped",
      reason: "the run did not finish: worker exited with signal SIGKILL",
    });
    const md = renderMarkdown(m);
    expect(md).toContain("**crashed**: the run did not finish: worker exited with signal SIGKILL");
    expect(md).toContain("(did not finish)");
    expect(md).not.toContain("**crashed**: environment unavailable");
    expect(renderHtml(m)).toContain("did not finish");
  });

  it("serialises identically from the same results (diffable between releases)", () => {
    const again = report("zeta", () => "pass");
    expect(stableStringify(buildMatrix([a, b]))).toBe(stableStringify(buildMatrix([b, again])));
  });

  it("renders Markdown with escaped cells, legend, notes and reasons", () => {
    const md = renderMarkdown(buildMatrix([a, b], [{ name: "libvirt", reason: "no daemon" }]));
    expect(md).toContain("| scenario | level | alpha 1.0.0 | libvirt | zeta 1.0.0 |");
    expect(md).toContain("❌ fail [1]");
    expect(md).toContain("fail because \\| of &lt;things&gt;");
    expect(md).toContain("**alpha**: XenAPI results come from a simulator");
    expect(md).toContain("**libvirt**: environment unavailable: no daemon");
    expect(md).toContain("**Legend:**");
  });

  it("renders self-contained, escaped HTML", () => {
    const html = renderHtml(buildMatrix([a, b]));
    expect(html).not.toMatch(/<script|<link|src=|href=/i);
    expect(html).toContain("of &lt;things&gt;");
    expect(html).toContain('data-driver="alpha" data-scenario="lifecycle.spawn" data-status="fail"');
    expect(html).toContain("XenAPI results come from a simulator");
  });
});
