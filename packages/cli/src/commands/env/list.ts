import { VirtkitCommand } from "../../base-command.js";
import { toCliError } from "../../errors.js";
import { driverFlag } from "../../flags.js";
import type { DefaultEnvironmentSummary, EnvironmentSummary } from "./environments.js";

/** One row of `virtkit env list`: an environment and the driver offering it. */
export interface EnvironmentRow extends EnvironmentSummary {
  readonly driver: string;
}

/** `virtkit env list`: the conformance environments the installed drivers offer. */
export default class EnvList extends VirtkitCommand {
  static override summary = "List the conformance environments the installed drivers offer, and whether each can run here.";
  static override examples = ["<%= config.bin %> <%= command.id %>", "<%= config.bin %> <%= command.id %> --driver libvirt --json"];
  static override enableJsonFlag = true;
  static override flags = {
    driver: driverFlag({ multiple: true, summary: "Only these drivers (default: every installed one)." }),
  };

  async run(): Promise<{ environments: EnvironmentRow[]; defaults: DefaultEnvironmentSummary[] }> {
    const { flags } = await this.parse(EnvList);
    const { loadPlugins, environmentsOf, summarizeEnvironment, defaultEnvironmentSummary } = await import("./environments.js");
    const environments: EnvironmentRow[] = [];
    let defaults: DefaultEnvironmentSummary[];
    try {
      const plugins = await loadPlugins(flags.driver);
      for (const { plugin, environment } of environmentsOf(plugins)) {
        environments.push({ driver: plugin.name, ...(await summarizeEnvironment(plugin, environment)) });
      }
      // A driver with no named environment still runs: in its default one, said as such.
      defaults = plugins.filter((p) => (p.environments ?? []).length === 0).map(defaultEnvironmentSummary);
    } catch (err) {
      throw toCliError(err);
    }
    if (!this.jsonEnabled()) {
      for (const e of environments) {
        const state = e.unavailable ? `unavailable here: ${e.unavailable}` : e.toBuild ? `available; ${e.toBuild}` : "available";
        this.log(`${e.driver} --env ${e.name}: ${state}${e.buildable && !e.toBuild ? " (virtkit env build " + e.name + ")" : ""}`);
        this.log(`    ${e.description}`);
      }
      for (const d of defaults) this.log(d.description);
      if (environments.length === 0 && defaults.length === 0) this.log("no installed driver found");
    }
    return { environments, defaults };
  }
}
