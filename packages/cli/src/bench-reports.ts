/** `virtkit matrix --bench-report <file>`: bench reports read back and checked before any column runs. */
import { open, stat } from "node:fs/promises";
import { Errors } from "@oclif/core";
import type { BenchReport, SupportMatrix } from "@virtkit/conformance";

/** Reads and checks each file (schema `virtkit.bench/1`); any problem is a usage error (exit 2) naming the file. */
export async function readBenchReports(files: readonly string[]): Promise<BenchReport[]> {
  const { parseBenchReport } = await import("@virtkit/conformance");
  const out: BenchReport[] = [];
  for (const file of files) {
    const fail = (why: string) => new Errors.CLIError(`cannot read --bench-report ${file}: ${why}`, { exit: 2, code: "VIRTKIT_USAGE" });
    const text = await readCapped(file, fail);
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      throw fail("not JSON (write it with virtkit conformance bench --output)");
    }
    let report: BenchReport;
    try {
      report = parseBenchReport(value, "--bench-report");
    } catch (err) {
      throw fail((err as Error).message);
    }
    const problem = implausibleFigure(report);
    if (problem !== undefined) throw fail(problem);
    out.push(report);
  }
  return out;
}

/** Bench reports whose `driver.name` is no column of the matrix (they cannot be shown). */
export function benchWithoutColumn(bench: readonly BenchReport[], matrix: SupportMatrix): string[] {
  const columns = new Set(matrix.drivers.map((d) => d.name));
  return bench.map((b) => b.driver.name).filter((n) => !columns.has(n));
}

/** A bench report is a few KiB; a bigger file is not one (and `/dev/zero` would never end). */
export const MAX_BENCH_REPORT_BYTES = 10 * 1024 * 1024;

/** The longest a timed call can take: the largest `--timeout` bench accepts (2^31-1 ms). */
const MAX_LATENCY_MS = 2_147_483_647;

/** Reads a regular file of at most {@link MAX_BENCH_REPORT_BYTES}, never more than that even if it grows meanwhile. */
async function readCapped(file: string, fail: (why: string) => Error): Promise<string> {
  let handle;
  try {
    // Looked at before it is opened: opening a FIFO waits for a writer for ever.
    if (!(await stat(file)).isFile()) throw fail("not a regular file");
    handle = await open(file, "r");
  } catch (err) {
    if (err instanceof Errors.CLIError) throw err;
    throw fail((err as NodeJS.ErrnoException).code === "ENOENT" ? "no such file" : (err as Error).message);
  }
  try {
    const st = await handle.stat();
    if (!st.isFile()) throw fail("not a regular file");
    if (st.size > MAX_BENCH_REPORT_BYTES) throw fail(`${st.size} bytes, more than a bench report can be (${MAX_BENCH_REPORT_BYTES})`);
    const buffer = Buffer.alloc(MAX_BENCH_REPORT_BYTES + 1);
    let length = 0;
    for (;;) {
      const { bytesRead } = await handle.read(buffer, length, buffer.length - length, null);
      if (bytesRead === 0) break;
      length += bytesRead;
      if (length > MAX_BENCH_REPORT_BYTES) throw fail(`more than ${MAX_BENCH_REPORT_BYTES} bytes, more than a bench report can be`);
    }
    return buffer.subarray(0, length).toString("utf8");
  } finally {
    await handle.close();
  }
}

/**
 * Figures no bench can have measured (the schema check only asks for finite numbers): a negative
 * or impossibly long latency, percentiles out of order, a non-integer or out-of-range count.
 */
export function implausibleFigure(report: BenchReport): string | undefined {
  const { count, concurrency } = report.settings;
  if (!Number.isInteger(count) || count < 1 || count > 100_000) return `settings.count ${count} is not an integer from 1 to 100000`;
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 256) {
    return `settings.concurrency ${concurrency} is not an integer from 1 to 256`;
  }
  for (const [i, op] of report.operations.entries()) {
    // A failed operation may carry the samples taken before it failed: checked the same way.
    const l = op.latency;
    if (l === undefined && op.status !== "measured") continue;
    const where = `operations[${i}] (${op.operation}).latency`;
    if (typeof l !== "object" || l === null) return `${where} is not an object`;
    if (!Number.isInteger(l.samples) || l.samples < 1 || l.samples > 100_000) return `${where}.samples ${l.samples} is not an integer from 1 to 100000`;
    for (const key of ["minMs", "maxMs", "meanMs", "p50Ms", "p95Ms", "p99Ms"] as const) {
      const v: unknown = l[key];
      if (typeof v !== "number" || !(v >= 0 && v <= MAX_LATENCY_MS)) return `${where}.${key} ${v} is not a latency (0 to ${MAX_LATENCY_MS} ms)`;
    }
    if (!(l.minMs <= l.p50Ms && l.p50Ms <= l.p95Ms && l.p95Ms <= l.p99Ms && l.p99Ms <= l.maxMs && l.minMs <= l.meanMs && l.meanMs <= l.maxMs)) {
      return `${where} is out of order (min <= p50 <= p95 <= p99 <= max and min <= mean <= max)`;
    }
  }
  const t = report.throughput;
  if (t?.status === "measured" && !(t.instancesPerSecond >= 0 && t.instancesPerSecond <= 1e9)) {
    return `throughput.instancesPerSecond ${t.instancesPerSecond} is not a rate (0 to 1e9 per second)`;
  }
  return undefined;
}
