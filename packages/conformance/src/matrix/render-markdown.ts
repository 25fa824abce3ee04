/** The support matrix as a Markdown table, with legend, notes and reasons as footnotes. */
import type { ScenarioStatus } from "../types.js";
import type { SupportMatrix } from "./build-matrix.js";
import { benchByColumn, benchProvenance, type MatrixRenderOptions } from "../bench/matrix-bench.js";
import { benchSummary } from "../bench/render-bench.js";

/** Cell symbols (shared with the legend). */
export const STATUS_SYMBOL: Readonly<Record<ScenarioStatus, string>> = {
  pass: "✅ pass",
  fail: "❌ fail",
  unsupported: "➖ unsupported",
  skipped: "⏭️ skipped",
};

const cell = (text: string) =>
  text
    .replace(/\|/g, "\\|")
    .replace(/[\r\n]+/g, " ")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;");

/** Renders Markdown; reasons become numbered footnotes under the table; `options.bench` adds a bench row. */
export function renderMarkdown(matrix: SupportMatrix, options: MatrixRenderOptions = {}): string {
  const out: string[] = ["# virtkit support matrix", ""];
  const drivers = matrix.drivers;
  out.push(
    `| scenario | level | ${drivers.map((d) => cell(d.version ? `${d.name} ${d.version}` : d.name)).join(" | ")} |`,
  );
  out.push(`|---|---|${drivers.map(() => "---").join("|")}|`);
  const bench = benchByColumn(options);
  if (bench.size > 0) {
    const line = (name: string) => {
      const r = bench.get(name);
      return r ? cell(benchSummary(r)) : "—";
    };
    out.push(`| _latency (virtkit conformance bench)_ | | ${drivers.map((d) => line(d.name)).join(" | ")} |`);
  }
  // Reasons become footnotes, one per distinct text, so a repeated reason is listed once.
  const notes: string[] = [];
  const noteIndex = new Map<string, number>();
  for (const s of matrix.scenarios) {
    const cols = drivers.map((d) => {
      const c = matrix.cells[d.name]?.[s.id];
      if (!c) return "";
      if (d.availability === "unavailable") return `${STATUS_SYMBOL.skipped} (unavailable)`;
      if (d.availability === "failed") return `${STATUS_SYMBOL.skipped} (did not finish)`;
      if (!c.reason || c.status === "pass") return STATUS_SYMBOL[c.status];
      let n = noteIndex.get(c.reason);
      if (n === undefined) {
        notes.push(c.reason);
        n = notes.length;
        noteIndex.set(c.reason, n);
      }
      return `${STATUS_SYMBOL[c.status]} [${n}]`;
    });
    out.push(`| \`${s.id}\` ${cell(s.title)} | ${s.level} | ${cols.join(" | ")} |`);
  }
  out.push("", "**Legend:** " + Object.values(STATUS_SYMBOL).join(" · "));
  const driverNotes = drivers.flatMap((d) => [
    ...(d.availability === "unavailable" ? [`**${d.name}**: environment unavailable: ${cell(d.reason ?? "")}`] : []),
    ...(d.availability === "failed" ? [`**${d.name}**: the run did not finish: ${cell(d.reason ?? "")}`] : []),
    ...(d.errors ?? []).map((n) => `**${d.name}**: error outside any scenario (fails the column): ${cell(n)}`),
    ...d.notes.map((n) => `**${d.name}**: ${cell(n)}`),
    ...(bench.has(d.name) ? [`**${d.name}**: ${cell(benchProvenance(bench.get(d.name)!))}`] : []),
  ]);
  if (driverNotes.length > 0) out.push("", "## Notes", "", ...driverNotes.map((n) => `- ${n}`));
  if (notes.length > 0) out.push("", "## Reasons", "", ...notes.map((n, i) => `${i + 1}. ${cell(n)}`));
  return out.join("\n") + "\n";
}
