import { readdirSync, readFileSync } from "node:fs";
import { mkdir, stat, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { dirname, join, relative, resolve } from "node:path";
import { Args, Errors, Flags } from "@oclif/core";
import { VirtkitCommand } from "../../base-command.js";
import { prepareOutputDir, shownPath } from "../../output-dir.js";
import { CLI_DIR } from "../../run-suite.js";
import { driverTemplate } from "./driver-template.js";

const NAME_RE = /^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$/;
const PACKAGE_RE = /^(?:@[a-z0-9-~][a-z0-9-._~]*\/)?[a-z0-9-~][a-z0-9-._~]*$/;

/** What `virtkit init driver` created. */
export interface InitDriverResult {
  readonly dir: string;
  readonly package: string;
  readonly files: readonly string[];
}

/** `virtkit init driver <name>`: a new driver package that passes the kit's MUST scenarios as generated. */
export default class InitDriver extends VirtkitCommand {
  static override summary = "Create a new driver package that passes the conformance kit as generated.";
  static override description =
    "Writes a driver on BaseComputeDriver (over an in-memory stand-in for the hypervisor, to replace), its plugin " +
    "manifest and options schema, a conformance environment, a vitest file running the kit with " +
    "defineConformanceSuite, and a README. @virtkit/* is not on the npm registry yet: install its packages from " +
    "tarballs (pnpm pack in a virtkit checkout; the README says how), then npm test.";
  static override examples = [
    "<%= config.bin %> <%= command.id %> acme",
    "<%= config.bin %> <%= command.id %> acme --dir packages/driver-acme --package @acme/virtkit-driver",
  ];
  static override args = {
    name: Args.string({ required: true, description: "The driver's short name: lower-case letters, digits and '-'." }),
  };
  static override flags = {
    dir: Flags.string({
      summary: "Directory to create (default ./virtkit-driver-<name>); must not exist or be empty, and its parent must be a writable directory.",
      helpValue: "<dir>",
    }),
    package: Flags.string({ summary: "npm package name (default virtkit-driver-<name>).", helpValue: "<name>" }),
  };
  static override enableJsonFlag = true;

  async run(): Promise<InitDriverResult> {
    const { args, flags } = await this.parse(InitDriver);
    const name = args.name;
    if (name.length > 40 || !NAME_RE.test(name)) {
      usage(`invalid driver name "${name}": lower-case letters, digits and single '-', starting with a letter, at most 40 characters`);
    }
    const packageName = flags.package ?? `virtkit-driver-${name}`;
    if (packageName.length > 214 || !PACKAGE_RE.test(packageName)) usage(`invalid package name "${packageName}"`);
    const { KNOWN_DRIVERS } = await import("@virtkit/core");
    const builtIn = KNOWN_DRIVERS[name];
    if (builtIn !== undefined) {
      // `--driver <name>` always loads the bundled package first: the new driver would never run under its name.
      usage(`"${name}" is the name of a driver bundled with virtkit (${builtIn}): --driver ${name} would load that one, not yours; choose another name`);
    }
    const target = flags.dir ?? `virtkit-driver-${name}`;
    // An empty --dir (an unset shell variable) would otherwise mean the current directory.
    if (target.trim() === "") usage("--dir is empty: give a directory");
    const existing = await stat(resolve(target)).catch(() => undefined);
    if (existing?.isDirectory() && readdirSync(resolve(target)).length > 0) {
      usage(shownPath(`${resolve(target)} exists and is not empty: choose another --dir`));
    }
    // Checked and created before any file is written, in bounded time (a file, /proc, a read-only mount: exit 2).
    const dir = await prepareOutputDir(target, "--dir", { parentMustExist: true });
    const files = driverTemplate({ name, packageName, versions: virtkitVersions() });
    for (const [rel, content] of Object.entries(files)) {
      const file = join(dir, rel);
      await mkdir(dirname(file), { recursive: true });
      // `wx`: never overwrite a file (the directory was empty, but another process may be writing).
      await writeFile(file, content, { flag: "wx" });
    }
    const shown = shownPath(relative(process.cwd(), dir) || ".");
    if (!this.jsonEnabled()) {
      this.log(`created ${packageName} in ${shown}:`);
      for (const rel of Object.keys(files)) this.log(`  ${rel}`);
      this.log("");
      this.log("next:");
      // Not `npm install`: @virtkit/* is not on the registry yet, the README says how to install from tarballs.
      this.log(`  cd ${shown}, install @virtkit/* from tarballs as its README.md says (not on the npm registry yet), then npm test`);
      this.log("  npx virtkit conformance run --driver ./src/index.ts");
    }
    return { dir, package: packageName, files: Object.keys(files) };
  }
}

function usage(message: string): never {
  throw new Errors.CLIError(message, { exit: 2, code: "VIRTKIT_USAGE" });
}

/** `^<version>` of the virtkit packages this CLI runs with, for the new package's dependencies. */
function virtkitVersions(): { core: string; conformance: string; cli: string } {
  const require = createRequire(join(CLI_DIR, "index.js"));
  const versionOf = (manifest: string): string =>
    `^${(JSON.parse(readFileSync(manifest, "utf8")) as { version: string }).version}`;
  return {
    core: versionOf(require.resolve("@virtkit/core/package.json")),
    conformance: versionOf(require.resolve("@virtkit/conformance/package.json")),
    cli: versionOf(join(CLI_DIR, "..", "package.json")),
  };
}
