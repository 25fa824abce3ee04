import { VirtkitCommand } from "../../base-command.js";
import { patternFlag } from "../../flags.js";

/** One listed scenario. */
export interface ListedScenario {
  readonly id: string;
  readonly title: string;
  readonly group: string;
  readonly capability: string | null;
  readonly level: string;
}

/** `virtkit conformance list`: the scenario table. */
export default class ConformanceList extends VirtkitCommand {
  static override summary = "List the conformance scenarios with ids, capabilities and levels.";
  static override examples = ["<%= config.bin %> <%= command.id %>", "<%= config.bin %> <%= command.id %> --focus migration --json"];
  static override enableJsonFlag = true;
  static override flags = {
    focus: patternFlag({ summary: "Only scenarios whose id or title matches (regex, repeatable)." }),
    skip: patternFlag({ summary: "Leave out scenarios whose id or title matches (regex, repeatable)." }),
  };

  async run(): Promise<{ scenarios: ListedScenario[] }> {
    const { flags } = await this.parse(ConformanceList);
    const { SCENARIOS, selectScenarios } = await import("@virtkit/conformance");
    const scenarios = selectScenarios(SCENARIOS, { focus: flags.focus ?? [], skip: flags.skip ?? [] }).map((s) => ({
      id: s.id,
      title: s.title,
      group: s.group,
      capability: s.capability,
      level: s.level,
    }));
    if (!this.jsonEnabled()) {
      const w = Math.max(...scenarios.map((s) => s.id.length), 2);
      const c = Math.max(...scenarios.map((s) => (s.capability ?? "-").length), 10);
      this.log(`${"id".padEnd(w)}  ${"level".padEnd(6)}  ${"capability".padEnd(c)}  title`);
      for (const s of scenarios) this.log(`${s.id.padEnd(w)}  ${s.level.padEnd(6)}  ${(s.capability ?? "-").padEnd(c)}  ${s.title}`);
      this.log(`\n${scenarios.length} scenarios`);
    }
    return { scenarios };
  }
}
