/**
 * Flags shared by several commands, as `Flags.custom` so their parsing (and its one-line usage
 * errors) live in one place. Parsers stay cheap: nothing here imports a driver.
 */
import { Errors, Flags } from "@oclif/core";

const DRIVER_SPEC = /^(?:[a-z0-9][a-z0-9._-]*|@[a-z0-9-~][a-z0-9-._~]*\/[a-z0-9-~][a-z0-9-._~/]*|[a-z0-9-~][a-z0-9-._~]*\/[A-Za-z0-9._~/-]+|\.{0,2}\/.+|\/.+|file:.+|.+\.m?js)$/;
const OPTION_PAIR = /^[A-Za-z][A-Za-z0-9_.-]*=/;

/** `--driver <short name | package | path>`. */
export const driverFlag = Flags.custom<string>({
  char: "d",
  summary: "Driver to test: a short name (fake, libvirt), a package name or a path to a .js/.mjs plugin.",
  helpValue: "<name|package|path>",
  async parse(input) {
    const spec = input.trim();
    if (spec.length === 0 || !DRIVER_SPEC.test(spec)) {
      throw new Errors.CLIError(`invalid --driver "${input}": expected a short name, a package name or a path to a .js/.mjs file`, {
        exit: 2,
        code: "VIRTKIT_USAGE",
      });
    }
    return spec;
  },
});

/** `--option key=value`, repeatable; values are validated later against the plugin's schema. */
export const optionFlag = Flags.custom<string>({
  char: "o",
  summary: "Driver option as key=value (repeatable), validated against the driver's options schema.",
  helpValue: "<key=value>",
  multiple: true,
  async parse(input) {
    if (!OPTION_PAIR.test(input)) {
      // Never echo the input: it may be a password or a URI with credentials.
      throw new Errors.CLIError("invalid --option: expected key=value with a key starting with a letter (the value is not shown)", {
        exit: 2,
        code: "VIRTKIT_USAGE",
      });
    }
    return input;
  },
});

/** A regular expression flag (`--focus`, `--skip`), checked at parse time. */
export const patternFlag = Flags.custom<string>({
  multiple: true,
  helpValue: "<regex>",
  async parse(input) {
    try {
      new RegExp(input);
    } catch (err) {
      throw new Errors.CLIError(`invalid pattern "${input}": ${(err as Error).message}`, { exit: 2, code: "VIRTKIT_USAGE" });
    }
    return input;
  },
});

/** `--level MUST|SHOULD|MAY`: which levels fail the run. */
export const levelFlag = Flags.option({
  options: ["MUST", "SHOULD", "MAY"] as const,
  default: "MUST" as const,
  summary: "Failures at this level or stricter fail the run (MUST < SHOULD < MAY).",
});
