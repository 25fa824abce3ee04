import { rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Errors, Flags } from "@oclif/core";
import { VirtkitCommand } from "../base-command.js";
import type { BenchReport, RunReport, SupportMatrix, UnavailableDriver } from "@virtkit/conformance";
import type { DriverPlugin } from "@virtkit/core";
import { toCliError } from "../errors.js";
import { driverFlag } from "../flags.js";
import { checkReportPaths, runSuite } from "../run-suite.js";
import { prepareOutputDir, shownPath } from "../output-dir.js";
import { environmentColumn } from "./env/environments.js";
import { EXIT_INTERRUPTED, interruptedReport, watchInterrupt, type InterruptWatch } from "../interrupt.js";
import { collectStrayErrors, guardExit } from "../exit-guard.js";

/** The flags the columns' runs take. */
interface MatrixColumnFlags {
  readonly driver?: readonly string[];
  readonly env?: readonly string[];
  readonly "scenario-timeout": number;
  readonly "cleanup-timeout": number;
  readonly parallel?: number;
  readonly runner: "vitest" | "direct";
}

/** What `virtkit matrix` returns. */
export interface MatrixResult {
  readonly files: { readonly json: string; readonly markdown: string; readonly html: string };
  readonly matrix: SupportMatrix;
}

/** One column of the matrix: a driver in one of its environments, or recorded as unavailable with a reason. */
export type MatrixConfiguration =
  | { readonly label: string; readonly environment?: string }
  | { readonly label: string; readonly unavailable: string };

/**
 * The columns of a driver: one per named environment its plugin offers (`libvirt-test`,
 * `libvirt-qemu`, `libvirt-nested-qemu`), each asked whether it can run here; a plugin without
 * named environments is one column under its own name. The CLI holds no driver-specific code.
 */
export async function environmentConfigurations(
  plugin: DriverPlugin,
  env: Readonly<Record<string, string | undefined>> = process.env,
  only: readonly string[] = [],
): Promise<MatrixConfiguration[]> {
  const named = plugin.environments ?? [];
  if (named.length === 0) return only.length === 0 || only.includes(plugin.name) ? [{ label: plugin.name }] : [];
  const out: MatrixConfiguration[] = [];
  for (const e of named) {
    const label = environmentColumn(plugin, e);
    if (only.length > 0 && !only.includes(e.name) && !only.includes(label)) continue;
    const unavailable = await e.unavailable(env, { timeoutMs: 10_000 });
    out.push(unavailable !== undefined ? { label, unavailable } : { label, environment: e.name });
  }
  return out;
}

/** `virtkit matrix`: runs every installed driver and writes the support matrix. */
export default class Matrix extends VirtkitCommand {
  static override summary = "Run every installed driver and write the support matrix (JSON, Markdown, HTML).";
  static override description =
    "Cells are pass / fail / unsupported / skipped with reasons. One column per environment a driver's plugin offers (libvirt: test, qemu, nested-qemu); an environment that cannot run here (no daemon configured, no Docker engine) is recorded as skipped with the reason. " +
    "The matrix is written after every column, so a run cut short leaves what finished. Ctrl-C or SIGTERM: no new column starts, the running one starts no new scenario and its running scenarios clean up for at most 30 s, then the matrix is written with what finished (the rest recorded as not run) and the exit code is 130; a second Ctrl-C exits at once.";
  static override examples = ["<%= config.bin %> <%= command.id %>", "<%= config.bin %> <%= command.id %> --out reports --driver fake"];
  static override enableJsonFlag = true;
  static override flags = {
    out: Flags.string({ default: "reports", summary: "Directory for support-matrix.{json,md,html}.", helpValue: "<dir>" }),
    driver: driverFlag({ multiple: true, summary: "Drivers to include (default: every one `virtkit drivers` lists)." }),
    env: Flags.string({
      multiple: true,
      summary: "Only these environments (a name such as qemu, or a column such as libvirt-qemu; repeatable).",
      helpValue: "<name>",
    }),
    "scenario-timeout": Flags.integer({ min: 1, max: 2_147_483_647, default: 60_000, summary: "Deadline of each scenario in ms." }),
    "cleanup-timeout": Flags.integer({
      min: 1,
      max: 2_147_483_647,
      default: 60_000,
      summary: "Deadline of each scenario's cleanup in ms; slower cleanups that finish are only noted.",
    }),
    parallel: Flags.integer({ min: 1, max: 64, summary: "Scenarios run at once per driver (default: what each environment runs well, 4 unless it says)." }),
    runner: Flags.option({ options: ["vitest", "direct"] as const, default: "vitest" as const, summary: "Run through vitest's Node API or in-process." })(),
    "bench-report": Flags.string({
      multiple: true,
      summary: "A `virtkit conformance bench --output` file (repeatable): its column gets a latency line in the Markdown and HTML views (the JSON stays free of timings).",
      helpValue: "<file.json>",
    }),
  };

  async run(): Promise<MatrixResult> {
    const { flags } = await this.parse(Matrix);
    const { readBenchReports } = await import("../bench-reports.js");
    const bench = await readBenchReports(flags["bench-report"] ?? []);
    // Before any column runs: an output that cannot be written is a usage error now, not after the run.
    const dir = await prepareOutputDir(flags.out, "--out");
    const files = { json: join(dir, "support-matrix.json"), markdown: join(dir, "support-matrix.md"), html: join(dir, "support-matrix.html") };
    await checkReportPaths([["--out", files.json], ["--out", files.markdown], ["--out", files.html]]);
    const reports: RunReport[] = [];
    const unavailable: UnavailableDriver[] = [];
    const interrupt = watchInterrupt({
      onFirst: (signal, graceMs) =>
        process.stderr.write(
          `\n${signal}: no new column starts; the running one starts no new scenario and gets up to ${graceMs / 1000} s to clean up, then the matrix is written with what finished (again to exit at once)\n`,
        ),
    });
    let cut: boolean;
    /** Columns whose run could not start (a driver that cannot be set up): unlike an environment absent here, a failure. */
    const errored: string[] = [];
    // Drivers run in this process (all of a column under the direct runner; plugins and their
    // environments under vitest): a stray error of theirs fails the column it came during instead
    // of crashing the matrix half-written, and their process.exit cannot end it as a pass.
    const stray = collectStrayErrors();
    const releaseExit = guardExit(process, (err) => stray.errors.push(err.message));
    /** Stray errors already given to a column. */
    let attributed = 0;
    const takeStray = (): string[] => {
      const fresh = stray.errors.slice(attributed);
      attributed = stray.errors.length;
      return fresh;
    };
    try {
      // Written after every column: a run cut short (a killed CI job) still leaves what finished.
      let checkpointFailed = false;
      const checkpoint = async (running?: UnavailableDriver) => {
        // A failed checkpoint (the directory moved, the disk full) costs the checkpoint, not the run.
        const shown = running ? [...unavailable, running] : unavailable;
        await this.writeMatrix(files, reports, shown, bench, { quiet: true }).catch((err: unknown) => {
          if (!checkpointFailed) this.warn(`could not write the matrix after a column (${(err as Error).message}); the run goes on`);
          checkpointFailed = true;
        });
      };
      cut = await this.runColumns(flags, reports, unavailable, interrupt, errored, checkpoint, takeStray);
    } catch (err) {
      releaseExit();
      stray.release();
      // A --driver that names nothing installed: exit 2, as `conformance run` says it.
      throw toCliError(err);
    } finally {
      interrupt.dispose();
    }
    const by = interrupt.by();
    if (flags.env && reports.length === 0 && unavailable.length === 0) {
      // A typo in CI (`--env qemuu`) must not pass as an empty matrix.
      throw new Errors.CLIError(`--env ${flags.env.join(", ")} names no column of the selected drivers (see virtkit env list)`, {
        exit: 2,
        code: "VIRTKIT_USAGE",
      });
    }
    const written = await this.writeMatrix(files, reports, unavailable, bench);
    // Held until the matrix is written: an error after the last column (a driver's late timer) still fails the command.
    releaseExit();
    stray.release();
    const late = takeStray();
    if (late.length > 0 && !cut) {
      this.warn(`an error came from driver code after its column finished (${late.join("; ")}): the matrix fails`);
      errored.push("(after the last column)");
    }
    if (cut) {
      // A column's scenarios outlived the grace: exit now, their cleanup goes on without us.
      if (this.jsonEnabled()) this.log(JSON.stringify(written, null, 2));
      else this.log(`interrupted by ${by}: exit ${EXIT_INTERRUPTED}`);
      process.exit(EXIT_INTERRUPTED);
    }
    if (by !== undefined) {
      if (!this.jsonEnabled()) this.log(`interrupted by ${by}: exit ${EXIT_INTERRUPTED}`);
      process.exitCode = EXIT_INTERRUPTED;
      return written;
    }
    // Exit 1 when a column failed a MUST scenario or could not be set up (as `conformance run` would).
    const failed = [...reports.filter((r) => !r.ok).map((r) => r.driver.name), ...errored];
    if (failed.length > 0) {
      if (!this.jsonEnabled()) this.log(`failed (a MUST scenario, or the driver could not be set up): ${failed.join(", ")}`);
      process.exitCode = 1;
    }
    return written;
  }

  /** Writes the three views of the matrix of what ran (and what did not, with why). */
  private async writeMatrix(
    files: MatrixResult["files"],
    reports: readonly RunReport[],
    unavailable: readonly UnavailableDriver[],
    bench: readonly BenchReport[],
    { quiet = false }: { readonly quiet?: boolean } = {},
  ): Promise<MatrixResult> {
    const { buildMatrix, renderHtml, renderMarkdown, stableStringify } = await import("@virtkit/conformance");
    const { benchWithoutColumn } = await import("../bench-reports.js");
    const matrix = buildMatrix([...reports], [...unavailable]);
    await writeAtomically(files.json, stableStringify(matrix) + "\n");
    await writeAtomically(files.markdown, renderMarkdown(matrix, { bench }));
    await writeAtomically(files.html, renderHtml(matrix, undefined, { bench }));
    if (quiet) return { files, matrix };
    for (const name of benchWithoutColumn(bench, matrix)) this.warn(`--bench-report for ${name}: the matrix has no such column; not shown`);
    if (!this.jsonEnabled()) this.log(`wrote ${[files.json, files.markdown, files.html].map(shownPath).join(", ")}`);
    return { files, matrix };
  }

  /**
   * Runs every column in turn until done or interrupted; what ran goes to `reports`, what did not
   * to `unavailable`. True when the grace after an interruption ran out with a column still running.
   */
  private async runColumns(
    flags: MatrixColumnFlags,
    reports: RunReport[],
    unavailable: UnavailableDriver[],
    interrupt: InterruptWatch,
    errored: string[],
    /** Writes what finished; `running`, the column about to start, is shown as not finished (a killed run leaves that). */
    checkpoint: (running?: UnavailableDriver) => Promise<void>,
    /** The stray errors of driver code since the last call (they fail the column that was running). */
    takeStray: () => string[],
  ): Promise<boolean> {
    const { loadDriverPlugin, DriverLoadError } = await import("@virtkit/core");
    const { CLI_DIR, DRIVER_LOAD_TIMEOUT_MS } = await import("../run-suite.js");
    // A driver whose import never settles (a top-level await on a dead host) fails its column, not the matrix.
    const loadOptions = { paths: [CLI_DIR], timeoutMs: Math.max(DRIVER_LOAD_TIMEOUT_MS, flags["scenario-timeout"]), signal: interrupt.signal };
    const notStarted = (name: string, spec: string, version?: string): void => {
      unavailable.push({ name, spec, ...(version ? { version } : {}), reason: `not run: the matrix was interrupted by ${interrupt.by()}` });
    };
    // Explicit drivers, or every driver `virtkit drivers` lists (the same discovery, not a fixed list).
    /** `failed`: why a named driver that exists did not load (loaded once, not again per column). */
    const columns: { spec: string; paths: readonly string[]; plugin?: DriverPlugin; failed?: unknown }[] = [];
    if (flags.driver) {
      // A driver named twice is one column, not two identical ones.
      for (const spec of new Set(flags.driver)) {
        // A name that finds no driver at all is a typo, refused as `conformance run` refuses it (exit
        // 2) before any column runs or a report is overwritten; one that is found but will not load
        // is a failed column below.
        try {
          columns.push({ spec, paths: [], plugin: await loadDriverPlugin(spec, loadOptions) });
        } catch (err) {
          if (err instanceof DriverLoadError && err.notFound) throw err;
          columns.push({ spec, paths: [], failed: err });
        }
      }
    } else {
      const { installedDrivers, loadedDrivers } = await import("../installed-drivers.js");
      const { loaded, left } = loadedDrivers(await installedDrivers());
      for (const d of loaded) columns.push({ spec: d.package, paths: [d.dir], plugin: d.plugin });
      // A broken driver package is listed by `drivers`: here it is a column with why it did not run.
      if (!flags.env) for (const l of left) unavailable.push({ name: l.package, spec: l.package, ...(l.version ? { version: l.version } : {}), reason: l.reason });
    }
    for (const { spec, paths, plugin: found, failed } of columns) {
      if (interrupt.by() !== undefined) {
        notStarted(found?.name ?? spec, spec, found?.version);
        continue;
      }
      let plugin: DriverPlugin;
      try {
        if (failed !== undefined) throw failed;
        plugin = found ?? (await loadDriverPlugin(spec, loadOptions));
      } catch (err) {
        const reason = (err as Error).message.split("\n")[0] ?? "cannot load";
        unavailable.push({ name: spec, spec, reason });
        errored.push(spec);
        if (!this.jsonEnabled()) this.log(`${spec}: not run (${reason})`);
        continue;
      }
      const version = plugin.version;
      for (const config of await environmentConfigurations(plugin, process.env, flags.env ?? [])) {
        const label = config.label;
        if (interrupt.by() !== undefined) {
          notStarted(label, spec, version);
          continue;
        }
        if ("unavailable" in config) {
          unavailable.push({ name: label, spec, version, reason: config.unavailable });
          if (!this.jsonEnabled()) this.log(`${label}: skipped (${config.unavailable})`);
          continue;
        }
        await checkpoint({ name: label, spec, version, reason: "the matrix was stopped while it ran this column", failed: true });
        // What came before this column started (between columns, from a finished one's timers) is not this column's.
        const before = takeStray();
        if (before.length > 0) errored.push(`(between columns: ${before.join("; ")})`);
        try {
          const running = runSuite({
            spec,
            paths,
            ...(config.environment !== undefined ? { environment: config.environment } : {}),
            options: [],
            focus: [],
            skip: [],
            level: "MUST",
            scenarioTimeoutMs: flags["scenario-timeout"],
            cleanupTimeoutMs: flags["cleanup-timeout"],
            ...(flags.parallel !== undefined ? { parallel: flags.parallel } : {}),
            runner: flags.runner,
            signal: interrupt.signal,
          });
          const finished = await Promise.race([running, interrupt.graceOver.then(() => undefined)]);
          if (finished === undefined) {
            // The grace ran out: this column's scenarios did not clean up in time; it is left out, the rest is written now.
            running.catch(() => undefined);
            unavailable.push({ name: label, spec, version, reason: `interrupted by ${interrupt.by()} while running; its running scenarios did not clean up within the grace`, failed: true });
            return true;
          }
          const by = interrupt.by();
          const { summarize } = await import("@virtkit/conformance");
          const { withRunErrors } = await import("@virtkit/conformance");
          const withStray = withRunErrors(finished, takeStray());
          const ran = by !== undefined ? interruptedReport(withStray, by, summarize) : withStray;
          // The column is the configuration's label (libvirt, libvirt-qemu), not just the driver's name.
          const report: RunReport = label === ran.driver.name ? ran : { ...ran, driver: { ...ran.driver, name: label } };
          const setupFailed =
            report.results.length > 0 && report.results.every((r) => r.status === "fail" && /setup failed/.test(r.reason ?? ""));
          if (setupFailed) {
            const reason = report.results[0]?.reason ?? "environment setup failed";
            unavailable.push({ name: label, spec, version, reason });
            errored.push(label);
            if (!this.jsonEnabled()) this.log(`${label}: not run (every scenario's setup failed: ${reason})`);
          } else {
            reports.push(report);
            const s = report.summary;
            const warned = report.warnings.length > 0 ? `, ${report.warnings.length} warnings (${report.warnings.join("; ")})` : "";
            if (!this.jsonEnabled()) {
              this.log(`${label}: ${s.pass} pass, ${s.fail} fail, ${s.unsupported} unsupported, ${s.skipped} skipped${warned}${failedLine(report)}`);
            }
          }
        } catch (err) {
          const strayed = takeStray();
          const reason = [(err as Error).message.split("\n")[0] ?? "failed", ...strayed].join("; ");
          unavailable.push({ name: label, spec, version, reason, failed: true });
          errored.push(label);
          if (!this.jsonEnabled()) this.log(`${label}: not run (${reason})`);
        }
        await checkpoint();
      }
    }
    return false;
  }
}

/**
 * Writes `file` whole or not at all (a temporary file renamed over it): a matrix killed while
 * writing leaves the last complete one, never a truncated JSON.
 */
async function writeAtomically(file: string, text: string): Promise<void> {
  const tmp = `${file}.${process.pid}.tmp`;
  try {
    await writeFile(tmp, text);
    await rename(tmp, file);
  } catch (err) {
    await rm(tmp, { force: true }).catch(() => undefined);
    throw err;
  }
}

/** The failed scenarios of a column with why, for its line (the first five; the rest counted). */
export function failedLine(report: RunReport): string {
  const errors = report.errors ?? [];
  const outside = errors.length > 0 ? `; errors outside any scenario: ${errors.slice(0, 3).join("; ")}${errors.length > 3 ? `; and ${errors.length - 3} more` : ""}` : "";
  return failedScenarios(report) + outside;
}

/** The failed scenarios, same reasons grouped. */
function failedScenarios(report: RunReport): string {
  const failed = report.results.filter((r) => r.status === "fail");
  if (failed.length === 0) return "";
  // Scenarios failing for the same reason (a dead worker fails them all alike) share one entry.
  const byReason = new Map<string, string[]>();
  for (const r of failed) {
    const reason = r.reason ?? "failed";
    byReason.set(reason, [...(byReason.get(reason) ?? []), r.id]);
  }
  const entries = [...byReason].map(([reason, ids]) => (ids.length === 1 ? `${ids[0]}: ${reason}` : `${ids[0]} and ${ids.length - 1} more: ${reason}`));
  const shown = entries.slice(0, 5);
  const more = entries.length > shown.length ? `; and ${entries.length - shown.length} more reasons` : "";
  return `; failed: ${shown.join("; ")}${more}`;
}
