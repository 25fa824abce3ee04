import { writeFile } from "node:fs/promises";
import { Flags } from "@oclif/core";
import type { BenchReport, BenchSelectable } from "@virtkit/conformance";
import { VirtkitCommand } from "../../base-command.js";
import { toCliError } from "../../errors.js";
import { driverFlag, optionFlag } from "../../flags.js";
import { checkReportPaths } from "../../run-suite.js";
import { benchDriver } from "../../bench-run.js";

/** Exit code after Ctrl-C / SIGTERM (128 + SIGINT), once cleanup has run. */
const EXIT_INTERRUPTED = 130;

/** `virtkit conformance bench`: latency per contract operation and spawn+destroy throughput of one driver. */
export default class ConformanceBench extends VirtkitCommand {
  static override summary = "Measure a driver: latency per operation (p50/p95/p99) and spawn+destroy throughput.";
  static override description =
    "Like critest -benchmark: `--count` instance lifecycles (spawn, getInfo, listInstances, pause/unpause, suspend/resume, snapshot create/revert, " +
    "soft and hard reboot, power off/on, destroy), `--concurrency` at a time, each call timed; then `--count` spawn+destroy for throughput. " +
    "Only what the driver declares is called; the rest is reported skipped with the reason. Everything created is destroyed and checked gone " +
    "(a leak fails the bench, and so does a leak check that could not complete: the report then says `leaks: null` and why). Exit 0 when it all went through, 1 on a failed operation, a leak or a cleanup problem, 2 on usage errors, " +
    "130 after Ctrl-C (cleanup runs first). `--json` / `--output` give the versioned report (schema virtkit.bench/1) that `virtkit matrix --bench-report` shows.";
  static override examples = [
    "<%= config.bin %> <%= command.id %> --driver fake",
    "<%= config.bin %> <%= command.id %> --driver fake --count 100 --concurrency 8 --operations spawn,destroy,throughput",
    "<%= config.bin %> <%= command.id %> --driver libvirt --env test --output reports/bench-libvirt-test.json",
  ];
  static override enableJsonFlag = true;
  static override flags = {
    driver: driverFlag({ required: true }),
    env: Flags.string({ summary: "A named environment the driver's plugin offers (see `virtkit env list`), e.g. test.", helpValue: "<name>" }),
    option: optionFlag(),
    count: Flags.integer({ min: 1, max: 100_000, default: 10, summary: "Instances per phase: each operation is timed once per instance." }),
    concurrency: Flags.integer({ min: 1, max: 256, default: 1, summary: "Instances in flight at once (both phases)." }),
    operations: Flags.string({
      summary: "Comma-separated subset of: spawn, getInfo, listInstances, pause, unpause, suspend, resume, snapshotCreate, snapshotRevert, rebootSoft, rebootHard, powerOff, powerOn, destroy, throughput (default: all).",
      helpValue: "<list>",
    }),
    timeout: Flags.integer({ min: 1, max: 2_147_483_647, default: 60_000, summary: "Deadline of each driver call in ms." }),
    "cleanup-timeout": Flags.integer({
      min: 1,
      max: 2_147_483_647,
      default: 60_000,
      summary: "Budget of the whole cleanup and leak check in ms (its calls get what is left of it, not --timeout); a leak check it cuts short is reported as not completed (leaks: null).",
    }),
    output: Flags.string({ summary: "Also write the JSON report to this file.", helpValue: "<file.json>" }),
  };

  async run(): Promise<BenchReport> {
    const { flags } = await this.parse(ConformanceBench);
    const json = this.jsonEnabled();
    const { parseBenchOperations, renderBench, stableStringify } = await import("@virtkit/conformance");
    let operations: BenchSelectable[] | undefined;
    try {
      operations = flags.operations === undefined ? undefined : parseBenchOperations(flags.operations);
    } catch (err) {
      throw toCliError(err);
    }
    await checkReportPaths([["--output", flags.output]]);
    // Ctrl-C stops the bench and lets it clean up; a second one kills the process as usual.
    const controller = new AbortController();
    const onSignal = (signal: NodeJS.Signals) => () => controller.abort(new Error(`interrupted by ${signal}`));
    const handlers = [["SIGINT", onSignal("SIGINT")], ["SIGTERM", onSignal("SIGTERM")]] as const;
    for (const [s, h] of handlers) process.once(s, h);
    let report: BenchReport;
    try {
      report = await benchDriver({
        spec: flags.driver,
        ...(flags.env !== undefined ? { environment: flags.env } : {}),
        options: flags.option ?? [],
        count: flags.count,
        concurrency: flags.concurrency,
        ...(operations !== undefined ? { operations } : {}),
        timeoutMs: flags.timeout,
        cleanupTimeoutMs: flags["cleanup-timeout"],
        signal: controller.signal,
        ...(json ? {} : { onProgress: (m: string) => process.stderr.write(`${m}\n`) }),
      });
    } catch (err) {
      throw toCliError(err);
    } finally {
      for (const [s, h] of handlers) process.removeListener(s, h);
    }
    if (flags.output) await writeFile(flags.output, stableStringify(report) + "\n");
    if (!json) this.log(renderBench(report).trimEnd());
    if (report.interrupted) process.exitCode = EXIT_INTERRUPTED;
    else if (!report.ok) process.exitCode = 1;
    return report;
  }
}
