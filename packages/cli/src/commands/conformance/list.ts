import { VirtkitCommand } from "../../base-command.js";
import { toCliError } from "../../errors.js";
import { driverFlag, patternFlag } from "../../flags.js";
import type { EnvironmentSummary } from "../env/environments.js";

/** One listed scenario. */
export interface ListedScenario {
  readonly id: string;
  readonly title: string;
  readonly group: string;
  readonly capability: string | null;
  readonly level: string;
  /** The command that explains it step by step. */
  readonly explain: string;
}

/** One environment a driver's plugin offers, and whether it can run on this machine. */
export type ListedEnvironment = EnvironmentSummary;

/** `virtkit conformance list`: the scenario table. */
export default class ConformanceList extends VirtkitCommand {
  static override summary = "List the conformance scenarios with ids, capabilities and levels.";
  static override examples = ["<%= config.bin %> <%= command.id %>", "<%= config.bin %> <%= command.id %> --focus migration --json"];
  static override enableJsonFlag = true;
  static override flags = {
    driver: driverFlag({ summary: "Also list the environments this driver's plugin offers (for --env), and whether each can run here." }),
    focus: patternFlag({ summary: "Only scenarios whose id or title matches (regex, repeatable)." }),
    skip: patternFlag({ summary: "Leave out scenarios whose id or title matches (regex, repeatable)." }),
  };

  async run(): Promise<{ scenarios: ListedScenario[]; environments?: ListedEnvironment[] }> {
    const { flags } = await this.parse(ConformanceList);
    const environments = flags.driver !== undefined ? await this.environments(flags.driver) : undefined;
    const { SCENARIOS, selectScenarios } = await import("@virtkit/conformance");
    const scenarios = selectScenarios(SCENARIOS, { focus: flags.focus ?? [], skip: flags.skip ?? [] }).map((s) => ({
      id: s.id,
      title: s.title,
      group: s.group,
      capability: s.capability,
      level: s.level,
      explain: `${this.config.bin} conformance explain ${s.id}`,
    }));
    if (!this.jsonEnabled()) {
      const w = Math.max(...scenarios.map((s) => s.id.length), 2);
      const c = Math.max(...scenarios.map((s) => (s.capability ?? "-").length), 10);
      this.log(`${"id".padEnd(w)}  ${"level".padEnd(6)}  ${"capability".padEnd(c)}  title`);
      for (const s of scenarios) this.log(`${s.id.padEnd(w)}  ${s.level.padEnd(6)}  ${(s.capability ?? "-").padEnd(c)}  ${s.title}`);
      this.log(`\n${scenarios.length} scenarios; what one checks, step by step: ${this.config.bin} conformance explain <id>`);
      if (environments !== undefined) {
        this.log("");
        if (environments.described !== undefined) this.log(environments.described);
        for (const e of environments.list) {
          this.log(`--env ${e.name} (column ${e.column}): ${e.unavailable ? `unavailable here: ${e.unavailable}` : "available"}`);
          this.log(`    ${e.description}`);
        }
      }
    }
    return environments !== undefined ? { scenarios, environments: environments.list } : { scenarios };
  }

  /** The named environments of `spec`'s plugin; when it has none, the sentence on its default one. */
  private async environments(spec: string): Promise<{ list: ListedEnvironment[]; described?: string }> {
    const { loadPlugins, summarizeEnvironment, defaultEnvironmentSummary } = await import("../env/environments.js");
    try {
      const [plugin] = await loadPlugins([spec]);
      if (!plugin) return { list: [] };
      const list: ListedEnvironment[] = [];
      for (const environment of plugin.environments ?? []) list.push(await summarizeEnvironment(plugin, environment));
      return list.length === 0 ? { list, described: defaultEnvironmentSummary(plugin).description } : { list };
    } catch (err) {
      throw toCliError(err);
    }
  }
}
