import { Args, Errors, Flags } from "@oclif/core";
import { VirtkitCommand } from "../../base-command.js";
import { toCliError } from "../../errors.js";
import { driverFlag } from "../../flags.js";
import { EXIT_INTERRUPTED, watchInterrupt } from "../../interrupt.js";

/** What `virtkit env build` returns. */
export interface EnvBuildResult {
  readonly driver: string;
  readonly environment: string;
  /** Whether the environment had anything to build. */
  readonly built: boolean;
  readonly durationMs: number;
}

/** `virtkit env build <name>`: builds what an environment needs ahead of time (nested-qemu's image). */
export default class EnvBuild extends VirtkitCommand {
  static override summary = "Build what a conformance environment needs ahead of time (e.g. the nested-qemu image); cached, rebuilt only when its inputs change.";
  static override description =
    "Ctrl-C or SIGTERM stops the build: the environment is told to stop and removes what it had started (nested-qemu: its build containers and temporary files), " +
    "for at most 30 s, then the command exits 130; a second Ctrl-C exits at once.";
  static override examples = ["<%= config.bin %> <%= command.id %> nested-qemu", "<%= config.bin %> <%= command.id %> nested-qemu --driver libvirt"];
  static override enableJsonFlag = true;
  static override args = {
    name: Args.string({ required: true, description: "The environment (see `virtkit env list`)." }),
  };
  static override flags = {
    driver: driverFlag({ summary: "The driver whose environment it is, when several offer one by that name." }),
    timeout: Flags.integer({ min: 1, default: 900_000, summary: "Deadline of the build in ms." }),
  };

  async run(): Promise<EnvBuildResult> {
    const { args, flags } = await this.parse(EnvBuild);
    const { offeredEnvironments } = await import("./environments.js");
    let offered;
    try {
      offered = (await offeredEnvironments(flags.driver !== undefined ? [flags.driver] : undefined)).filter(
        (o) => o.environment.name === args.name,
      );
    } catch (err) {
      throw toCliError(err);
    }
    const usage = (message: string) => new Errors.CLIError(message, { exit: 2, code: "VIRTKIT_USAGE" });
    if (offered.length === 0) throw usage(`no installed driver offers an environment "${args.name}" (see virtkit env list)`);
    if (offered.length > 1) {
      throw usage(`several drivers offer "${args.name}" (${offered.map((o) => o.plugin.name).join(", ")}): choose one with --driver`);
    }
    const { plugin, environment } = offered[0]!;
    const t0 = performance.now();
    if (!environment.prepare) {
      if (!this.jsonEnabled()) this.log(`${plugin.name} --env ${environment.name}: nothing to build`);
      return { driver: plugin.name, environment: environment.name, built: false, durationMs: 0 };
    }
    // Asked of the plugin before building: "no engine answers at ..." rather than a socket's raw ENOENT.
    let unavailable: string | undefined;
    try {
      unavailable = await environment.unavailable(process.env, { timeoutMs: Math.min(flags.timeout, 10_000) });
    } catch (err) {
      throw toCliError(err);
    }
    if (unavailable !== undefined) {
      throw new Errors.CLIError(`cannot build ${plugin.name} --env ${environment.name} here: ${unavailable}`, {
        exit: 1,
        code: "VIRTKIT_HYPERVISOR_UNAVAILABLE",
      });
    }
    const interrupt = watchInterrupt({
      onFirst: (signal, graceMs) =>
        process.stderr.write(
          `\n${signal}: stopping the build; waiting up to ${graceMs / 1000} s for it to remove what it started (again to exit at once)\n`,
        ),
    });
    // Ctrl-C and the deadline both stop the build, through the signal the environment honours.
    const signal = AbortSignal.any([AbortSignal.timeout(flags.timeout), interrupt.signal]);
    const stopped = (by: NodeJS.Signals, how: string) =>
      new Errors.CLIError(`interrupted by ${by}: the build of ${plugin.name} --env ${environment.name} stopped ${how}`, {
        exit: EXIT_INTERRUPTED,
        code: "VIRTKIT_INTERRUPTED",
      });
    try {
      const building = environment.prepare((line) => {
        if (!this.jsonEnabled()) this.log(line);
      }, { signal, timeoutMs: flags.timeout });
      const settled = building.then(
        () => "done" as const,
        (err: unknown) => ({ err }),
      );
      const outcome = await Promise.race([settled, interrupt.graceOver.then(() => "grace over" as const)]);
      const by = interrupt.by();
      if (outcome === "grace over" && by !== undefined) {
        process.stderr.write(`interrupted by ${by}: the build did not stop within the grace; exiting (partial work may remain: see the environment's sweep)\n`);
        process.exit(EXIT_INTERRUPTED);
      }
      if (by !== undefined) throw stopped(by, outcome === "done" ? "after it had finished" : "(the build returned after its own cleanup)");
      if (outcome !== "done" && outcome !== "grace over") throw toCliError(outcome.err);
    } finally {
      interrupt.dispose();
    }
    const durationMs = Math.round(performance.now() - t0);
    if (!this.jsonEnabled()) this.log(`${plugin.name} --env ${environment.name}: ready in ${(durationMs / 1000).toFixed(1)} s`);
    return { driver: plugin.name, environment: environment.name, built: true, durationMs };
  }
}
