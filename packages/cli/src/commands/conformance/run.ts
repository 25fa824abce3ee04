import { writeFile } from "node:fs/promises";
import { Flags } from "@oclif/core";
import { VirtkitCommand } from "../../base-command.js";
import type { RunReport } from "@virtkit/conformance";
import { toCliError } from "../../errors.js";
import { driverFlag, levelFlag, optionFlag, patternFlag } from "../../flags.js";
import { runSuite } from "../../run-suite.js";

/** `virtkit conformance run`: the whole kit against one driver. */
export default class ConformanceRun extends VirtkitCommand {
  static override summary = "Run the conformance scenarios against a driver.";
  static override description =
    "Every scenario gets a fresh environment. Exit 0 when no scenario at the chosen level failed, 1 when one did, 2 on usage errors.";
  static override examples = [
    "<%= config.bin %> <%= command.id %> --driver fake",
    "<%= config.bin %> <%= command.id %> --driver libvirt --option uri=test:///default --junit reports/junit.xml",
    "<%= config.bin %> <%= command.id %> --driver fake --focus '^lifecycle\\.' --skip pause --json",
  ];
  static override enableJsonFlag = true;
  static override flags = {
    driver: driverFlag({ required: true }),
    option: optionFlag(),
    focus: patternFlag({ summary: "Run only scenarios whose id or title matches (regex, repeatable)." }),
    skip: patternFlag({ summary: "Leave out scenarios whose id or title matches (regex, repeatable)." }),
    level: levelFlag(),
    "scenario-timeout": Flags.integer({ min: 1, default: 10_000, summary: "Deadline of each scenario in ms." }),
    "cleanup-timeout": Flags.integer({
      min: 1,
      default: 60_000,
      summary: "Deadline of each scenario's cleanup in ms; slower cleanups that finish are only noted.",
    }),
    "suite-timeout": Flags.integer({ min: 1, summary: "Deadline of the whole run in ms." }),
    parallel: Flags.integer({ min: 1, max: 64, default: 1, summary: "Scenarios run at once." }),
    runner: Flags.option({ options: ["vitest", "direct"] as const, default: "vitest" as const, summary: "Run through vitest's Node API or in-process." })(),
    junit: Flags.string({ summary: "Also write a JUnit XML report to this file.", helpValue: "<file>" }),
    tap: Flags.string({ summary: "Also write a TAP report to this file.", helpValue: "<file>" }),
    "report-json": Flags.string({ summary: "Also write the JSON report to this file.", helpValue: "<file>" }),
  };

  async run(): Promise<RunReport> {
    const { flags } = await this.parse(ConformanceRun);
    const json = this.jsonEnabled();
    const { HumanReporter, JunitReporter, TapReporter, JsonReporter } = await import("@virtkit/conformance");
    const human = new HumanReporter({ write: json ? undefined : (t) => process.stdout.write(t), color: !json && process.stdout.isTTY === true });
    let report: RunReport;
    try {
      report = await runSuite({
        spec: flags.driver,
        options: flags.option ?? [],
        focus: flags.focus ?? [],
        skip: flags.skip ?? [],
        level: flags.level,
        scenarioTimeoutMs: flags["scenario-timeout"],
        cleanupTimeoutMs: flags["cleanup-timeout"],
        suiteTimeoutMs: flags["suite-timeout"],
        parallel: flags.parallel,
        runner: flags.runner,
        reporter: human,
      });
    } catch (err) {
      throw toCliError(err);
    }
    const files: [string | undefined, { render(r: RunReport): string }][] = [
      [flags.junit, new JunitReporter()],
      [flags.tap, new TapReporter()],
      [flags["report-json"], new JsonReporter()],
    ];
    for (const [file, reporter] of files) if (file) await writeFile(file, reporter.render(report));
    if (!json) {
      this.log("");
      this.log(human.summary(report));
    }
    if (!report.ok) process.exitCode = 1;
    return report;
  }
}
