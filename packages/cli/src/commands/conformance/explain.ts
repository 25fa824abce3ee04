import { Args, Errors } from "@oclif/core";
import type { ScenarioExplanation } from "@virtkit/conformance";
import { VirtkitCommand } from "../../base-command.js";

/** `virtkit conformance explain <scenario>`: what one scenario checks and how, step by step. */
export default class ConformanceExplain extends VirtkitCommand {
  static override summary = "Explain a conformance scenario: the contract rule, the Nova behaviour, its steps, calls and environment controls.";
  static override description =
    "The steps, contract calls and environment controls are traced from a run of the scenario against the fake driver (in memory, well under a second), " +
    "once with the capability declared and, when the scenario has a refusal check, once without it.";
  static override examples = [
    "<%= config.bin %> <%= command.id %> lifecycle.pause-unpause",
    "<%= config.bin %> <%= command.id %> migration.live --json",
  ];
  static override enableJsonFlag = true;
  static override args = {
    scenario: Args.string({ required: true, description: "Scenario id (see `virtkit conformance list`)." }),
  };

  async run(): Promise<ScenarioExplanation> {
    const { args } = await this.parse(ConformanceExplain);
    const { SCENARIOS, explainScenario, findScenario, renderExplanation } = await import("@virtkit/conformance");
    const def = findScenario(args.scenario);
    if (!def) {
      const near = SCENARIOS.filter((s) => s.id.includes(args.scenario) || args.scenario.includes(s.id.split(".")[1] ?? "\u0000"))
        .slice(0, 5)
        .map((s) => s.id);
      throw new Errors.CLIError(`no scenario "${args.scenario}"${near.length ? ` (did you mean ${near.join(", ")}?)` : ""}; see virtkit conformance list`, {
        exit: 2,
        code: "VIRTKIT_USAGE",
      });
    }
    const explanation = await explainScenario(def);
    if (!this.jsonEnabled()) this.log(renderExplanation(explanation));
    return explanation;
  }
}
