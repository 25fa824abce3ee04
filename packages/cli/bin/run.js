#!/usr/bin/env node
// The `virtkit` command. oclif reads the compiled manifest (oclif.manifest.json), so help and
// command lookup do not import any command module. Errors are ONE line on stderr (exit 2 for
// usage errors), never a stack trace; with --json oclif prints them as {"error": ...}.
import { flush, run } from "@oclif/core";

const argv = process.argv.slice(2);
try {
  await run(argv, import.meta.url);
  await flush();
} catch (err) {
  const exit = err?.oclif?.exit;
  if (err?.code === "EEXIT") {
    process.exitCode = typeof exit === "number" ? exit : 0;
  } else if (argv.includes("--json")) {
    const code = typeof err?.code === "string" ? err.code : "VIRTKIT_ERROR";
    const message = String(err?.message ?? err).replace(/\s+/g, " ").trim();
    process.stdout.write(`${JSON.stringify({ error: { code, message, exit: typeof exit === "number" ? exit : 1 } }, null, 2)}\n`);
    process.exitCode = typeof exit === "number" ? exit : 1;
  } else {
    const message = String(err?.message ?? err)
      .replace(/^The following errors? occurred:\s*/i, "")
      .replace(/\s*See more help with --help\s*$/i, "")
      // A daemon's or host's text may carry terminal escapes: never sent to the terminal as such.
      .replace(/[\u0000-\u001f\u007f-\u009f]+/g, " ")
      .replace(/\s+/g, " ")
      .trim();
    const code = typeof err?.code === "string" && err.code !== "EEXIT" ? ` [${err.code}]` : "";
    const usage = exit === 2 || exit === undefined;
    process.stderr.write(`virtkit: error: ${message}${code}${usage ? " (see --help)" : ""}\n`);
    process.exitCode = typeof exit === "number" ? exit : 1;
  }
}
// The command is done (report written, cleanup run): a handle a driver left open must not hang the CLI.
const { exitWhenHeldOpen } = await import("../dist/held-open.js");
exitWhenHeldOpen();
