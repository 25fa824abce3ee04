/**
 * Output directories (`matrix --out`, `init driver --dir`) checked and created BEFORE any work, in
 * bounded time: each missing level is made with a plain mkdir (Node's recursive mkdir spins forever
 * under /proc), and a probe file proves the directory takes files (root passes `access` even where
 * nothing can be written). Every problem is a usage error (exit 2) that names the path.
 */
import { randomBytes } from "node:crypto";
import { mkdir, readlink, stat, unlink, writeFile } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { Errors } from "@oclif/core";

/** Options of {@link prepareOutputDir}. */
export interface PrepareOutputDirOptions {
  /** Refuse to create more than the last level (`init driver --dir`: a typo in a parent is not created). */
  readonly parentMustExist?: boolean;
}

/** Deeper than this many missing levels is refused (a path built by mistake, not a directory to make). */
const MAX_MISSING_LEVELS = 32;

/** Control characters, which a terminal would act on rather than show. */
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g;

/** Text naming paths as shown to the user: control characters escaped (`\u001b`), so an escape sequence in `--out` is shown, not run. */
export function shownPath(text: string): string {
  return text.replace(CONTROL, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

/** Makes sure `path` is a writable directory, creating it (and missing parents, unless refused); returns it resolved. */
export async function prepareOutputDir(path: string, flag: string, options: PrepareOutputDirOptions = {}): Promise<string> {
  const fail = (why: string) => new Errors.CLIError(shownPath(`${flag} ${path}: ${why}`), { exit: 2, code: "VIRTKIT_USAGE" });
  // An empty value (an unset shell variable) would silently mean the current directory.
  if (path.trim() === "") throw new Errors.CLIError(`${flag} is empty: give a directory`, { exit: 2, code: "VIRTKIT_USAGE" });
  const dir = resolve(path);
  const missing: string[] = [];
  let at = dir;
  for (;;) {
    const st = await stat(at).catch((err: NodeJS.ErrnoException) => err);
    if (!(st instanceof Error)) {
      if (!st.isDirectory()) throw fail(at === dir ? "exists and is not a directory" : `${at} is not a directory`);
      break;
    }
    if (st.code !== "ENOENT" && st.code !== "ENOTDIR") throw fail(`cannot look at ${at}: ${st.code ?? st.message}`);
    // A dangling symbolic link: mkdir would say "exists", which it does not, quite.
    const link = await readlink(at).catch(() => undefined);
    if (link !== undefined) throw fail(`${at === dir ? "is" : `${at} is`} a symbolic link to ${link}, which does not exist`);
    missing.unshift(at);
    const parent = dirname(at);
    if (parent === at || missing.length > MAX_MISSING_LEVELS) throw fail("no existing parent directory");
    at = parent;
  }
  if (options.parentMustExist && missing.length > 1) throw fail(`the parent directory ${dirname(dir)} does not exist`);
  for (const level of missing) {
    try {
      await mkdir(level);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === "EEXIST" && (await stat(level).catch(() => undefined))?.isDirectory()) continue;
      throw fail(`cannot create ${level} (${code ?? (err as Error).message}): choose a directory on a writable file system`);
    }
  }
  const probe = join(dir, `.virtkit-write-probe-${process.pid}-${randomBytes(4).toString("hex")}`);
  try {
    await writeFile(probe, "", { flag: "wx" });
  } catch (err) {
    throw fail(`the directory is not writable (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  await unlink(probe).catch(() => undefined);
  return dir;
}
