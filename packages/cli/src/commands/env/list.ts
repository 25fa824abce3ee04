import { VirtkitCommand } from "../../base-command.js";
import { toCliError } from "../../errors.js";
import { driverFlag } from "../../flags.js";

/** One row of `virtkit env list`. */
export interface EnvironmentRow {
  readonly driver: string;
  readonly name: string;
  /** The matrix column it fills. */
  readonly column: string;
  readonly description: string;
  /** Why it cannot run here; absent when it can. */
  readonly unavailable?: string;
  /** Whether `virtkit env build` has something to build for it. */
  readonly buildable: boolean;
}

/** `virtkit env list`: the conformance environments the installed drivers offer. */
export default class EnvList extends VirtkitCommand {
  static override summary = "List the conformance environments the installed drivers offer, and whether each can run here.";
  static override examples = ["<%= config.bin %> <%= command.id %>", "<%= config.bin %> <%= command.id %> --driver libvirt --json"];
  static override enableJsonFlag = true;
  static override flags = {
    driver: driverFlag({ multiple: true, summary: "Only these drivers (default: every installed one)." }),
  };

  async run(): Promise<{ environments: EnvironmentRow[] }> {
    const { flags } = await this.parse(EnvList);
    const { offeredEnvironments } = await import("./environments.js");
    const environments: EnvironmentRow[] = [];
    try {
      for (const { plugin, environment: e } of await offeredEnvironments(flags.driver)) {
        const unavailable = await e.unavailable(process.env, { timeoutMs: 10_000 });
        environments.push({
          driver: plugin.name,
          name: e.name,
          column: `${plugin.name}-${e.name}`,
          description: e.description,
          ...(unavailable !== undefined ? { unavailable } : {}),
          buildable: typeof e.prepare === "function",
        });
      }
    } catch (err) {
      throw toCliError(err);
    }
    if (!this.jsonEnabled()) {
      for (const e of environments) {
        this.log(`${e.driver} --env ${e.name}: ${e.unavailable ? `unavailable here: ${e.unavailable}` : "available"}${e.buildable ? " (virtkit env build " + e.name + ")" : ""}`);
        this.log(`    ${e.description}`);
      }
      if (environments.length === 0) this.log("no installed driver offers named environments");
    }
    return { environments };
  }
}
