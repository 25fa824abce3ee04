/** A {@link BenchReport} for people: a table per operation, and the one line a matrix column shows. */
import type { BenchOperationResult, BenchReport } from "./bench-report.js";

/** `1.234` → `1.23`, `123.4` → `123`: three significant figures at most, never exponent notation. */
export function formatMs(ms: number): string {
  if (ms >= 100) return ms.toFixed(0);
  if (ms >= 10) return ms.toFixed(1);
  if (ms >= 1) return ms.toFixed(2);
  return ms.toFixed(3);
}

const STATS = ["samples", "minMs", "p50Ms", "p95Ms", "p99Ms", "maxMs"] as const;

function row(r: BenchOperationResult): string[] {
  if (r.status === "measured") {
    const l = r.latency;
    return [r.operation, r.status, String(l.samples), ...STATS.slice(1).map((k) => formatMs(l[k]))];
  }
  const partial = r.latency ? ` (${r.latency.samples} samples before)` : "";
  return [r.operation, r.status, `${r.reason}${partial}`];
}

/** The human view: settings, one row per operation (ms), throughput, notes, leaks, verdict. */
export function renderBench(report: BenchReport): string {
  const s = report.settings;
  const d = report.driver;
  const out: string[] = [
    `virtkit conformance bench: ${d.name}${d.version ? ` ${d.version}` : ""} — ${s.count} instance${s.count === 1 ? "" : "s"}, ${s.concurrency} at a time, ${s.timeoutMs} ms per call`,
    `machine: ${report.machine.cpus} cpus, load ${report.machine.loadavg.join(" ")}, node ${report.machine.node}`,
    "",
  ];
  const header = ["operation", "status", "n", "min", "p50", "p95", "p99", "max"];
  const rows = report.operations.map(row);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.filter((r) => r.length > 3).map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) =>
    cells.length > 3
      ? cells.map((c, i) => (i < 2 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ")
      : `${cells[0]!.padEnd(widths[0]!)}  ${cells[1]!.padEnd(widths[1]!)}  ${cells[2]}`;
  out.push(`${line(header)}   (ms)`);
  for (const r of rows) out.push(line(r));
  const t = report.throughput;
  if (t) {
    out.push(
      "",
      t.status === "measured"
        ? `throughput: ${t.instances} spawn + destroy, ${t.concurrency} at a time, in ${formatMs(t.durationMs)} ms: ${t.instancesPerSecond} instances/s`
        : `throughput: ${t.status} (${t.reason})`,
    );
  }
  if (report.notes.length > 0) out.push("", "Notes:", ...report.notes.map((n) => `  - ${n}`));
  const leaks = report.leaks;
  if (leaks === null) out.push("", `Leaks: unknown, the leak check did not complete (${report.leakCheckIncomplete ?? "no reason given"})`);
  else if (leaks.length > 0) out.push("", "Leaks:", ...leaks.map((l) => `  - ${l}`));
  if (report.cleanupErrors.length > 0) out.push("", "Cleanup errors:", ...report.cleanupErrors.map((e) => `  - ${e}`));
  out.push("");
  if (report.ok) out.push(`OK: everything created was destroyed and checked gone (${report.durationMs} ms)`);
  else {
    const why = [
      ...(report.error
        ? [`${report.error.operation}${report.error.instance ? ` of ${report.error.instance}` : ""} failed: ${report.error.code}: ${report.error.message}`]
        : []),
      ...(report.interrupted ? ["interrupted"] : []),
      ...(leaks === null ? ["leak check incomplete"] : []),
      ...(leaks !== null && leaks.length > 0 ? [`${leaks.length} leak${leaks.length === 1 ? "" : "s"}`] : []),
      ...(report.cleanupErrors.length > 0 ? [`${report.cleanupErrors.length} cleanup error${report.cleanupErrors.length === 1 ? "" : "s"}`] : []),
    ];
    out.push(`FAILED: ${why.join("; ")}`);
  }
  return out.join("\n") + "\n";
}

/**
 * The one line a support-matrix column shows: spawn and destroy p50/p95, throughput, or why there
 * are no figures. Plain text (the renderers escape it).
 */
export function benchSummary(report: BenchReport): string {
  const parts: string[] = [];
  for (const name of ["spawn", "destroy"] as const) {
    const r = report.operations.find((o) => o.operation === name);
    if (r?.status === "measured") parts.push(`${name} p50 ${formatMs(r.latency.p50Ms)} / p95 ${formatMs(r.latency.p95Ms)} ms`);
  }
  const t = report.throughput;
  if (t?.status === "measured") parts.push(`${t.instancesPerSecond} inst/s at ${t.concurrency}`);
  const figures = parts.length > 0 ? parts.join(" · ") : "no figures";
  const why = report.error?.operation ?? (report.interrupted ? "interrupted" : report.leaks === null ? "leak check incomplete" : "leaks");
  return report.ok ? `bench: ${figures}` : `bench FAILED (${why}): ${figures}`;
}
