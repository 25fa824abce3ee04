import { VirtkitCommand } from "../base-command.js";
import { CLI_DIR } from "../run-suite.js";

/** One row of `virtkit drivers`. */
export interface InstalledDriver {
  readonly name: string;
  readonly package: string;
  /** `installed` (loads), `not-installed`, or `broken` (found but does not load). */
  readonly status: "installed" | "not-installed" | "broken";
  readonly version?: string;
  readonly contractVersion?: string;
  readonly description?: string;
  /** Declared capabilities (with default options), when a driver could be built. */
  readonly capabilities?: readonly string[];
  readonly reason?: string;
}

/** `virtkit drivers`: the driver plugins virtkit can load. */
export default class Drivers extends VirtkitCommand {
  static override summary = "List the installed driver plugins, their versions and declared capabilities.";
  static override examples = ["<%= config.bin %> <%= command.id %>", "<%= config.bin %> <%= command.id %> --json"];
  static override enableJsonFlag = true;

  async run(): Promise<{ drivers: InstalledDriver[] }> {
    await this.parse(Drivers);
    const { KNOWN_DRIVERS, loadDriverPlugin, DriverRegistry, InMemoryImageService, CAPABILITY_NAMES } = await import("@virtkit/core");
    const drivers: InstalledDriver[] = [];
    for (const [name, pkg] of Object.entries(KNOWN_DRIVERS)) {
      try {
        const plugin = await loadDriverPlugin(name, { paths: [CLI_DIR] });
        let capabilities: string[] | undefined;
        let reason: string | undefined;
        const registry = new DriverRegistry({ imageService: new InMemoryImageService() });
        try {
          registry.add("probe", plugin, {});
          const caps = registry.get("probe").capabilities;
          capabilities = CAPABILITY_NAMES.filter((c) => caps[c]);
        } catch (err) {
          reason = `capabilities depend on options: ${(err as Error).message.split("\n")[0]}`;
        } finally {
          await registry.dispose().catch(() => undefined);
        }
        drivers.push({
          name: plugin.name,
          package: pkg,
          status: "installed",
          version: plugin.version,
          contractVersion: plugin.contractVersion,
          description: plugin.description,
          ...(capabilities ? { capabilities } : {}),
          ...(reason ? { reason } : {}),
        });
      } catch (err) {
        const message = (err as Error).message.split("\n")[0] ?? "";
        const missing = /not found/.test(message);
        drivers.push({ name, package: pkg, status: missing ? "not-installed" : "broken", reason: message });
      }
    }
    if (!this.jsonEnabled()) {
      for (const d of drivers) {
        this.log(`${d.name.padEnd(8)} ${d.status.padEnd(13)} ${d.version ?? "-"}  ${d.package}`);
        if (d.capabilities) this.log(`         capabilities: ${d.capabilities.join(", ") || "(none)"}`);
        if (d.reason) this.log(`         ${d.reason}`);
      }
    }
    return { drivers };
  }
}
