import { lstat, rm, writeFile } from "node:fs/promises";
import { Errors, Flags } from "@oclif/core";
import { VirtkitCommand } from "../../base-command.js";
import type {
  ConformanceReporter,
  DriverDescriptor,
  ExploreResult,
  RunPlan,
  RunReport,
  ScenarioResult,
} from "@virtkit/conformance";
import { renderPlan, runSettings, type RunFlags } from "../../conformance-config.js";
import { toCliError } from "../../errors.js";
import { driverFlag, levelFlag, optionFlag, patternFlag } from "../../flags.js";
import { checkReportPaths, planSuite, reportPathError, runSuite } from "../../run-suite.js";
import { exploreDriver } from "../../explore-run.js";
import { EXIT_INTERRUPTED, interruptedReport, partialReport, watchInterrupt } from "../../interrupt.js";
import { collectStrayErrors, exitNow, guardExit } from "../../exit-guard.js";
import { isDriverSetupFailure, setupFailureReport } from "../../setup-failure-report.js";

/** Flags of a scenario run that `--explore` has no use for. */
const EXPLORE_IGNORES = [
  "focus",
  "skip",
  "level",
  "scenario-timeout",
  "cleanup-timeout",
  "parallel",
  "runner",
  "junit",
  "tap",
  "report-json",
  "config",
  "fail-fast",
  "shuffle",
  "dry-run",
  "allow-empty",
] as const;

/** `virtkit conformance run`: the whole kit against one driver. */
export default class ConformanceRun extends VirtkitCommand {
  static override summary = "Run the conformance scenarios against a driver.";
  static override description =
    "Every scenario gets a fresh environment. Exit 0 when no scenario at the chosen level failed, 1 when one did, 2 on usage errors " +
    "(a bad driver or option, a --config file that does not validate, a report path that cannot be written or two reports naming one file, a --focus/--skip that selects nothing, a scenario-run flag with --explore), 130 after Ctrl-C or SIGTERM (no new scenario starts, running ones clean up for at most 30 s, " +
    "the reports are written with what finished and say the run was interrupted; a second Ctrl-C exits at once).\n\n" +
    "Reports agree with the exit code: a failure below --level (a SHOULD scenario under --level MUST) is not a JUnit <failure> but a " +
    "<skipped> case whose message starts with \"SHOULD failure below level MUST\" (property virtkit.status=fail), and a TAP \"# TODO\"; the JSON report keeps it \"fail\".";
  static override examples = [
    "<%= config.bin %> <%= command.id %> --driver fake",
    "<%= config.bin %> <%= command.id %> --driver libvirt --option uri=test:///default --junit reports/junit.xml",
    "<%= config.bin %> <%= command.id %> --driver libvirt --env nested-qemu",
    "<%= config.bin %> <%= command.id %> --driver fake --focus '^lifecycle\\.' --skip pause --json",
    "<%= config.bin %> <%= command.id %> --driver ./dist/index.js --config virtkit.conformance.json --fail-fast",
    "<%= config.bin %> <%= command.id %> --driver fake --shuffle --seed 42",
    "<%= config.bin %> <%= command.id %> --driver libvirt --option uri=test:///default --dry-run",
  ];
  static override enableJsonFlag = true;
  static override flags = {
    driver: driverFlag({ required: true }),
    env: Flags.string({
      summary: "A named environment the driver's plugin offers (see `conformance list --driver X`), e.g. nested-qemu.",
      helpValue: "<name>",
    }),
    option: optionFlag(),
    focus: patternFlag({ summary: "Run only scenarios whose id or title matches (regex, repeatable)." }),
    skip: patternFlag({ summary: "Leave out scenarios whose id or title matches (regex, repeatable)." }),
    level: levelFlag(),
    "scenario-timeout": Flags.integer({ min: 1, max: 2_147_483_647, default: 10_000, summary: "Deadline of each scenario in ms." }),
    "cleanup-timeout": Flags.integer({
      min: 1,
      max: 2_147_483_647,
      default: 60_000,
      summary: "Deadline of each scenario's cleanup in ms; slower cleanups that finish are only noted.",
    }),
    "suite-timeout": Flags.integer({ min: 1, max: 2_147_483_647, summary: "Deadline of the whole run in ms." }),
    // As the matrix: every scenario gets fresh instances of its own, so scenarios are independent;
    // an environment that cannot take 4 at once (nested QEMU on two cores) lowers it and says so.
    parallel: Flags.integer({
      min: 1,
      max: 64,
      summary: "Scenarios run at once (default: what the environment runs well, 4 unless it says; lowered to what it runs fairly).",
    }),
    runner: Flags.option({ options: ["vitest", "direct"] as const, default: "vitest" as const, summary: "Run through vitest's Node API or in-process." })(),
    junit: Flags.string({ summary: "Also write a JUnit XML report to this file.", helpValue: "<file>" }),
    tap: Flags.string({ summary: "Also write a TAP report to this file.", helpValue: "<file>" }),
    "report-json": Flags.string({ summary: "Also write the JSON report to this file.", helpValue: "<file>" }),
    config: Flags.string({
      summary: "Settings from a JSON file (options, focus, skip, level, timeouts, parallel, failFast, seed, per-scenario timeouts); flags given here win.",
      helpValue: "<virtkit.conformance.json>",
    }),
    "fail-fast": Flags.boolean({ summary: "Start no scenario after the first failure at the chosen level; the rest are reported skipped." }),
    shuffle: Flags.boolean({ summary: "Run the scenarios in a random order (the seed is in the report's notes)." }),
    seed: Flags.integer({ min: 0, max: 2 ** 32 - 1, summary: "Seed of --shuffle (implies it): the same seed, the same order. With --explore: the seed of the random sequences." }),
    explore: Flags.boolean({
      summary: "Instead of the scenarios: random operation sequences against the kit's reference model, every view compared after every step; a divergence is shrunk to the shortest sequence and printed with its seed.",
    }),
    runs: Flags.integer({ min: 1, summary: "Sequences --explore tries (default 100).", dependsOn: ["explore"] }),
    "dry-run": Flags.boolean({ summary: "Show what would run, and what would be skipped and why, without running any scenario." }),
    "allow-empty": Flags.boolean({ summary: "Accept a --focus/--skip that selects no scenario (otherwise exit 2)." }),
  };

  async run(): Promise<RunReport | RunPlan | ExploreResult> {
    const { flags, metadata } = await this.parse(ConformanceRun);
    const json = this.jsonEnabled();
    const given = (name: string) => (flags as Record<string, unknown>)[name] !== undefined && metadata.flags[name]?.setFromDefault !== true;
    if (flags.explore) {
      // Refused rather than ignored: `--explore --junit x` writing no report would look like a pass.
      const ignored = EXPLORE_IGNORES.filter(given);
      if (ignored.length > 0) {
        throw new Errors.CLIError(
          `--explore runs random sequences, not the scenarios: it takes --driver, --env, --option, --runs, --seed and --suite-timeout, not --${ignored.join(", --")}`,
          { exit: 2, code: "VIRTKIT_USAGE" },
        );
      }
      return this.explore(flags, json);
    }
    const { HumanReporter, SCENARIOS } = await import("@virtkit/conformance");
    const explicit = (name: keyof RunFlags) => given(name);
    const settings = await runSettings(flags, explicit, SCENARIOS.map((s) => s.id));
    // Before the run: a report that cannot be written is a usage error now, not a failure after it.
    await checkReportPaths([["--junit", flags.junit], ["--tap", flags.tap], ["--report-json", flags["report-json"]]]);
    if (flags["dry-run"]) {
      let plan: RunPlan;
      try {
        plan = await planSuite(settings);
      } catch (err) {
        throw toCliError(err);
      }
      if (!json) this.log(renderPlan(plan));
      return plan;
    }
    // An earlier run's reports go once the run is known to start (runSuite's onReady: the driver
    // loaded, the selection valid), not before: a run that fails after that (a driver that cannot
    // be set up, a crash) must not leave a CI job publishing a stale pass, but a typo (`--driver
    // nope`, `--report-json package.json`) must not destroy a file when nothing ran.
    let ready = false;
    const removeStaleReports = async () => {
      ready = true;
      for (const [flag, file] of [["--junit", flags.junit], ["--tap", flags.tap], ["--report-json", flags["report-json"]]] as const) {
        if (file) await removeStaleReport(flag, file);
      }
    };
    const human = new HumanReporter({ write: json ? undefined : (t) => process.stdout.write(t), color: !json && process.stdout.isTTY === true });
    // What finished so far, for the report of a run whose cleanup outlives the grace after Ctrl-C.
    const startedAt = new Date();
    const seen: { driver?: DriverDescriptor; total?: number; results: ScenarioResult[] } = { results: [] };
    const reporter: ConformanceReporter = {
      onStart: (driver, total) => {
        seen.driver = driver;
        if (total !== undefined) seen.total = total;
        human.onStart(driver, total);
      },
      onResult: (result, finished, total) => {
        seen.results.push(result);
        human.onResult(result, finished, total);
      },
      render: (r) => human.render(r),
    };
    const interrupt = watchInterrupt({
      // Before the run starts nothing runs to clean up: runSuite stops at once and its error says so.
      onFirst: (signal, graceMs) => {
        if (!ready) return;
        process.stderr.write(
          `\n${signal}: no new scenario starts; waiting up to ${graceMs / 1000} s for the running ones to clean up, then writing the reports (again to exit at once)\n`,
        );
      },
    });
    let report: RunReport;
    // Driver code runs in this process (all of it under the direct runner; the plugin, its
    // environment's set-up and disposal under vitest): its process.exit must not end the run as a
    // pass, and its stray errors fail the run in every report instead of crashing it. Held until
    // the exit code is set.
    const stray = collectStrayErrors();
    const releaseExit = guardExit(process, (err) => stray.errors.push(err.message));
    const release = (): void => {
      releaseExit();
      stray.release();
    };
    try {
      const run = runSuite({ ...settings, reporter, signal: interrupt.signal, onReady: removeStaleReports });
      const cut = interrupt.graceOver.then(() => undefined);
      const finished = await Promise.race([run, cut]);
      const by = interrupt.by();
      if (finished === undefined && by !== undefined) {
        // The grace ran out: report what finished, and exit now (the running scenarios' cleanup goes on without us).
        run.catch(() => undefined);
        const { summarize } = await import("@virtkit/conformance");
        report = partialReport(
          // Under vitest the header waits for the worker's first result: a run cut before it has no descriptor yet.
          { driver: seen.driver ?? { name: settings.spec, spec: settings.spec }, level: settings.level, runner: settings.runner, startedAt, results: seen.results, total: seen.total, signal: by },
          summarize,
        );
        await this.writeReports(flags, report);
        if (!json) this.log(`\n${human.summary(report)}`);
        else this.log(JSON.stringify(report, null, 2));
        release();
        exitNow(EXIT_INTERRUPTED);
      }
      report = finished ?? (await run);
    } catch (err) {
      // Only a run that started writes a report: before, the files named as reports are not touched.
      if (ready && isDriverSetupFailure(err)) {
        const { summarize } = await import("@virtkit/conformance");
        const failed = setupFailureReport(
          { driver: seen.driver ?? { name: settings.spec, spec: settings.spec }, level: settings.level, runner: settings.runner, startedAt },
          err,
          summarize,
        );
        // The setup error is what the user must see; a report that cannot be written adds a line.
        await this.writeReports(flags, failed).catch((e: unknown) =>
          process.stderr.write(`virtkit: could not write the report files: ${e instanceof Error ? e.message : String(e)}\n`),
        );
      }
      release();
      throw toCliError(err);
    } finally {
      interrupt.dispose();
    }
    const reported = stray.errors.length;
    if (reported > 0) {
      const { withRunErrors } = await import("@virtkit/conformance");
      report = withRunErrors(report, stray.errors);
    }
    const by = interrupt.by();
    if (by !== undefined) {
      const { summarize } = await import("@virtkit/conformance");
      report = interruptedReport(report, by, summarize);
    }
    await this.writeReports(flags, report);
    if (!json) {
      this.log("");
      this.log(human.summary(report));
    }
    if (by !== undefined) {
      if (!json) this.log(`interrupted by ${by}: exit ${EXIT_INTERRUPTED}`);
      process.exitCode = EXIT_INTERRUPTED;
    }
    else if (!report.ok) process.exitCode = 1;
    // An error that came after the reports were written (stderr said it) still fails the command.
    if (stray.errors.length > reported && by === undefined) process.exitCode = 1;
    release();
    return report;
  }

  /** Writes the report files the flags ask for (their paths were checked before the run). */
  private async writeReports(flags: { junit?: string; tap?: string; "report-json"?: string }, report: RunReport): Promise<void> {
    const { JunitReporter, TapReporter, JsonReporter } = await import("@virtkit/conformance");
    const files: [string | undefined, { render(r: RunReport): string }][] = [
      [flags.junit, new JunitReporter()],
      [flags.tap, new TapReporter()],
      [flags["report-json"], new JsonReporter()],
    ];
    for (const [file, reporter] of files) if (file) await writeFile(file, reporter.render(report));
  }

  /** `--explore`: exit 0 when no sequence diverged from the model, 1 when one did. */
  private async explore(
    flags: { driver: string; env?: string; option?: string[]; runs?: number; seed?: number; "suite-timeout"?: number },
    json: boolean,
  ): Promise<ExploreResult> {
    const { formatExploreResult, withExploreErrors } = await import("@virtkit/conformance");
    let result: ExploreResult;
    // Explored in this process: a driver's process.exit fails its sequence, not the command, and its
    // uncaught exceptions and unhandled rejections fail the exploration with a result, not a crash.
    const stray = collectStrayErrors();
    const releaseExit = guardExit();
    try {
      result = await exploreDriver({
        spec: flags.driver,
        ...(flags.env !== undefined ? { environment: flags.env } : {}),
        options: flags.option ?? [],
        ...(flags.runs !== undefined ? { runs: flags.runs } : {}),
        ...(flags.seed !== undefined ? { seed: flags.seed } : {}),
        ...(flags["suite-timeout"] !== undefined ? { timeLimitMs: flags["suite-timeout"] } : {}),
      });
    } catch (err) {
      stray.release();
      throw toCliError(err);
    } finally {
      releaseExit();
    }
    result = withExploreErrors(result, [...stray.errors]);
    const opts = (flags.option ?? []).map((o) => ` --option ${o}`).join("");
    if (!json) this.log(formatExploreResult(result, { command: `virtkit conformance run --driver ${flags.driver}${opts} --explore` }));
    if (!result.ok) process.exitCode = 1;
    // Held until the exit code is set: one that comes later (stderr says it) still fails the command.
    if (stray.errors.length > (result.errors?.length ?? 0)) process.exitCode = 1;
    stray.release();
    return result;
  }
}

/** Removes a regular file at `file` (a report of an earlier run); anything else there is left as it is. */
async function removeStaleReport(flag: string, file: string): Promise<void> {
  const st = await lstat(file).catch(() => undefined);
  if (!st?.isFile()) return;
  try {
    await rm(file, { force: true });
  } catch (err) {
    // Checked before the run (checkReportPaths), but the file system may still refuse.
    throw reportPathError(flag, file, `an earlier file there cannot be replaced (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
  }
}
