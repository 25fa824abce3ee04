/**
 * The support matrix as ONE self-contained HTML page (inline CSS, no scripts, no external
 * resources). Every text is escaped, so a reason containing `<script>` shows as text.
 */
import type { ScenarioStatus } from "../types.js";
import type { SupportMatrix } from "./build-matrix.js";
import { benchByColumn, benchProvenance, type MatrixRenderOptions } from "../bench/matrix-bench.js";
import { benchSummary } from "../bench/render-bench.js";

/** Escapes text for HTML content and attribute values. */
export function htmlEscape(text: string): string {
  return text
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;")
    .replace(/'/g, "&#39;");
}

const LABEL: Readonly<Record<ScenarioStatus, string>> = {
  pass: "pass",
  fail: "FAIL",
  unsupported: "unsupported",
  skipped: "skipped",
};

const CSS = `
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px;color:#1b1f24;background:#fff}
h1{font-size:20px;margin:0 0 12px}
table{border-collapse:collapse;margin:12px 0}
th,td{border:1px solid #d0d7de;padding:4px 8px;vertical-align:top;text-align:left}
thead th{background:#f6f8fa;position:sticky;top:0}
th.group{background:#eef1f4;font-weight:600}
td.cell{min-width:110px;font-weight:600}
td.cell .reason{display:block;font-weight:400;font-size:12px;max-width:320px;white-space:normal;word-break:break-word}
.pass{background:#dafbe1;color:#116329}.fail{background:#ffebe9;color:#a40e26}
.unsupported{background:#eaeef2;color:#424a53}.skipped{background:#fff8c5;color:#7d4e00}
.legend span{display:inline-block;padding:2px 8px;margin-right:6px;border-radius:4px}
code{font-size:12px}.level{font-size:12px;color:#57606a}
`;

/** Renders the page. `title` defaults to "virtkit support matrix"; `options.bench` adds a latency line per column. */
export function renderHtml(matrix: SupportMatrix, title = "virtkit support matrix", options: MatrixRenderOptions = {}): string {
  const e = htmlEscape;
  const drivers = matrix.drivers;
  const bench = benchByColumn(options);
  const head = drivers
    .map((d) => {
      const sub =
        d.availability !== "ran"
          ? `<br><span class="reason">${d.availability === "failed" ? "did not finish" : "unavailable"}</span>`
          : d.summary
            ? `<br><span class="level">${d.summary.pass} pass · ${d.summary.fail} fail</span>`
            : "";
      const b = bench.get(d.name);
      const figures = b ? `<br><span class="level bench" data-bench="${b.ok ? "ok" : "failed"}">${e(benchSummary(b))}</span>` : "";
      return `<th scope="col" data-driver="${e(d.name)}">${e(d.name)}${d.version ? ` <span class="level">${e(d.version)}</span>` : ""}${sub}${figures}</th>`;
    })
    .join("");
  const rows: string[] = [];
  let group = "";
  for (const s of matrix.scenarios) {
    if (s.group !== group) {
      group = s.group;
      rows.push(`<tr><th class="group" colspan="${drivers.length + 2}">${e(group)}</th></tr>`);
    }
    const cells = drivers
      .map((d) => {
        const c = matrix.cells[d.name]?.[s.id];
        if (!c) return `<td></td>`;
        const reason = c.reason && c.status !== "pass" ? `<span class="reason">${e(c.reason)}</span>` : "";
        return `<td class="cell ${c.status}" data-driver="${e(d.name)}" data-scenario="${e(s.id)}" data-status="${c.status}" title="${e(c.reason ?? c.status)}">${LABEL[c.status]}${reason}</td>`;
      })
      .join("");
    rows.push(
      `<tr><th scope="row"><code>${e(s.id)}</code><br>${e(s.title)}</th><td class="level">${s.level}${s.capability ? `<br>${e(s.capability)}` : ""}</td>${cells}</tr>`,
    );
  }
  const notes = drivers.flatMap((d) => [
    ...(d.availability === "unavailable"
      ? [`<li><strong>${e(d.name)}</strong>: environment unavailable: ${e(d.reason ?? "")}</li>`]
      : d.availability === "failed"
        ? [`<li><strong>${e(d.name)}</strong>: the run did not finish: ${e(d.reason ?? "")}</li>`]
        : []),
    ...(d.errors ?? []).map((n) => `<li><strong>${e(d.name)}</strong>: error outside any scenario (fails the column): ${e(n)}</li>`),
    ...d.notes.map((n) => `<li><strong>${e(d.name)}</strong>: ${e(n)}</li>`),
    ...(bench.has(d.name) ? [`<li><strong>${e(d.name)}</strong>: ${e(benchProvenance(bench.get(d.name)!))}</li>`] : []),
  ]);
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<title>${e(title)}</title>
<style>${CSS}</style>
</head>
<body>
<h1>${e(title)}</h1>
<p class="legend"><span class="pass">pass</span><span class="fail">FAIL</span><span class="unsupported">unsupported (not declared, refused as such)</span><span class="skipped">skipped (environment limit)</span></p>
<table id="matrix">
<thead><tr><th scope="col">scenario</th><th scope="col">level</th>${head}</tr></thead>
<tbody>
${rows.join("\n")}
</tbody>
</table>
${notes.length > 0 ? `<h2>Notes</h2>\n<ul id="notes">\n${notes.join("\n")}\n</ul>` : ""}
</body>
</html>
`;
}
