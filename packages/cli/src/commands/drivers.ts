import { VirtkitCommand } from "../base-command.js";
import { installedDrivers } from "../installed-drivers.js";

/** One row of `virtkit drivers`. */
export interface InstalledDriver {
  /** The driver's name from its manifest (the package name when it does not load). */
  readonly name: string;
  readonly package: string;
  /** `installed` (loads as a driver plugin) or `broken` (marked as a driver but does not load). */
  readonly status: "installed" | "broken";
  readonly version?: string;
  readonly contractVersion?: string;
  readonly description?: string;
  /** Declared capabilities (with default options), when a driver could be built without options. */
  readonly capabilities?: readonly string[];
  /** Option keys the driver cannot be built without (`["uri"]`). */
  readonly needsOptions?: readonly string[];
  readonly reason?: string;
}

/** `virtkit drivers`: the driver plugins installed where virtkit runs (the project's and the CLI's own). */
export default class Drivers extends VirtkitCommand {
  static override summary = "List the installed driver plugins, their versions and declared capabilities.";
  static override description =
    "Finds every package in the dependency tree of the current project and of the CLI whose manifest says " +
    'kind: "virtkit-driver" (packages named @virtkit/driver-*, virtkit-driver-*, or with the keyword virtkit-driver).';
  static override examples = ["<%= config.bin %> <%= command.id %>", "<%= config.bin %> <%= command.id %> --json"];
  static override enableJsonFlag = true;

  async run(): Promise<{ drivers: InstalledDriver[] }> {
    await this.parse(Drivers);
    const { missingPluginOptions, DriverRegistry, InMemoryImageService, CAPABILITY_NAMES } = await import("@virtkit/core");
    const drivers: InstalledDriver[] = [];
    for (const found of await installedDrivers()) {
      const plugin = found.plugin;
      if (!plugin) {
        drivers.push({
          name: found.package,
          package: found.package,
          status: "broken",
          ...(found.packageVersion ? { version: found.packageVersion } : {}),
          reason: firstLine(found.error?.message ?? "does not load"),
        });
        continue;
      }
      const row = {
        name: plugin.name,
        package: found.package,
        status: "installed" as const,
        version: plugin.version,
        contractVersion: plugin.contractVersion,
        description: plugin.description,
      };
      const missing = missingPluginOptions(plugin);
      if (missing && missing.length > 0) {
        drivers.push({ ...row, needsOptions: missing });
        continue;
      }
      // Built, never initialised: the declaration needs no hypervisor.
      const registry = new DriverRegistry({ imageService: new InMemoryImageService() });
      try {
        registry.add("probe", plugin, {});
        const caps = registry.get("probe").capabilities;
        drivers.push({ ...row, capabilities: CAPABILITY_NAMES.filter((c) => caps[c]) });
      } catch (err) {
        drivers.push({ ...row, reason: `capabilities depend on options: ${firstLine((err as Error).message)}` });
      } finally {
        await registry.dispose().catch(() => undefined);
      }
    }
    if (!this.jsonEnabled()) {
      if (drivers.length === 0) this.log("no driver plugins installed");
      for (const d of drivers) {
        this.log(`${d.name.padEnd(10)} ${d.status.padEnd(9)} ${(d.version ?? "-").padEnd(8)} ${d.package}`);
        if (d.capabilities) this.log(`           capabilities: ${d.capabilities.join(", ") || "(none)"}`);
        if (d.needsOptions) this.log(`           needs options: ${d.needsOptions.join(", ")}`);
        if (d.reason) this.log(`           ${d.reason}`);
      }
    }
    return { drivers };
  }
}

function firstLine(text: string): string {
  return text.split("\n")[0] ?? "";
}
