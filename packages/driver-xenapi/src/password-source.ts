/**
 * Where the XAPI password comes from: the environment variable `VIRTKIT_XENAPI_PASSWORD`, or an
 * interactive prompt that does not echo. Never an option or a flag: those end up in shell history,
 * process listings and reports.
 */
import { InvalidInputError, Secret } from "@virtkit/core";

/** The environment variable read for the password. */
export const PASSWORD_ENV = "VIRTKIT_XENAPI_PASSWORD";

/** A readable terminal (process.stdin fits). */
export interface PromptInput {
  readonly isTTY?: boolean;
  setRawMode?(mode: boolean): unknown;
  on(event: "data", listener: (chunk: Buffer | string) => void): unknown;
  off(event: "data", listener: (chunk: Buffer | string) => void): unknown;
  resume(): unknown;
  pause(): unknown;
}

/** Where the prompt is written (process.stderr fits). */
export interface PromptOutput {
  write(text: string): unknown;
}

/** True when `env` holds a non-empty password. */
function passwordInEnv(env: Readonly<Record<string, string | undefined>>): boolean {
  const v = env[PASSWORD_ENV];
  return v !== undefined && v.length > 0;
}

/**
 * Refuses up front, before any call or scenario, when no password can come: `VIRTKIT_XENAPI_PASSWORD`
 * unset and no terminal to ask on. The CLI turns this `InvalidInputError` into a usage error (exit 2).
 */
export function checkXenapiPasswordSource(
  env: Readonly<Record<string, string | undefined>> = process.env,
  input: Pick<PromptInput, "isTTY"> = process.stdin,
): void {
  if (passwordInEnv(env) || input.isTTY) return;
  throw new InvalidInputError(
    "password",
    `--option url=... needs the XAPI password in the environment variable ${PASSWORD_ENV} (no terminal to ask on); it is never taken as an option`,
  );
}

/** The password from `env`, else asked on the terminal; refused when neither is there. */
export async function resolveXenapiPassword(
  who: string,
  env: Readonly<Record<string, string | undefined>> = process.env,
  input: PromptInput = process.stdin,
  output: PromptOutput = process.stderr,
): Promise<Secret> {
  const fromEnv = env[PASSWORD_ENV];
  if (fromEnv !== undefined && passwordInEnv(env)) return new Secret(fromEnv);
  checkXenapiPasswordSource(env, input);
  return promptHidden(`XenAPI password for ${who}: `, input, output);
}

/** Reads one line without echoing it. */
export function promptHidden(question: string, input: PromptInput, output: PromptOutput): Promise<Secret> {
  return new Promise((resolve, reject) => {
    let typed = "";
    output.write(question);
    input.setRawMode?.(true);
    input.resume();
    const done = (err?: Error) => {
      input.off("data", onData);
      input.setRawMode?.(false);
      input.pause();
      output.write("\n");
      if (err) reject(err);
      else resolve(new Secret(typed));
    };
    const onData = (chunk: Buffer | string) => {
      for (const ch of chunk.toString()) {
        if (ch === "\r" || ch === "\n") return done();
        if (ch === "\u0003" || ch === "\u0004") return done(new InvalidInputError("password", "the prompt was cancelled"));
        if (ch === "\u007f" || ch === "\b") typed = typed.slice(0, -1);
        else typed += ch;
      }
    };
    input.on("data", onData);
  });
}
