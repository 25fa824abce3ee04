/** `virtkit matrix --bench-report <file>`: bench reports read back and checked before any column runs. */
import { readFile } from "node:fs/promises";
import { Errors } from "@oclif/core";
import type { BenchReport, SupportMatrix } from "@virtkit/conformance";

/** Reads and checks each file (schema `virtkit.bench/1`); any problem is a usage error (exit 2) naming the file. */
export async function readBenchReports(files: readonly string[]): Promise<BenchReport[]> {
  const { parseBenchReport } = await import("@virtkit/conformance");
  const out: BenchReport[] = [];
  for (const file of files) {
    const fail = (why: string) => new Errors.CLIError(`cannot read --bench-report ${file}: ${why}`, { exit: 2, code: "VIRTKIT_USAGE" });
    let text: string;
    try {
      text = await readFile(file, "utf8");
    } catch (err) {
      throw fail((err as NodeJS.ErrnoException).code === "ENOENT" ? "no such file" : (err as Error).message);
    }
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      throw fail("not JSON (write it with virtkit conformance bench --output)");
    }
    try {
      out.push(parseBenchReport(value, "--bench-report"));
    } catch (err) {
      throw fail((err as Error).message);
    }
  }
  return out;
}

/** Bench reports whose `driver.name` is no column of the matrix (they cannot be shown). */
export function benchWithoutColumn(bench: readonly BenchReport[], matrix: SupportMatrix): string[] {
  const columns = new Set(matrix.drivers.map((d) => d.name));
  return bench.map((b) => b.driver.name).filter((n) => !columns.has(n));
}
