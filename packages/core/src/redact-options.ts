/**
 * Driver options as they may be shown (reports, `--json`, error messages): values under
 * password-like keys ({@link SECRET_KEY_PATTERN}) and the password of a URI's user info
 * (`qemu+tcp://admin:pw@host/system`) or of a query parameter with such a key become `***`.
 */
import { REDACTED, SECRET_KEY_PATTERN, redactUriSecrets, uriSecrets } from "./secret-patterns.js";

/** A copy of `options` safe to print: secret values replaced by `***`. */
export function redactOptions(options: Readonly<Record<string, string>>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(options)) {
    out[key] = SECRET_KEY_PATTERN.test(key) ? REDACTED : redactUriSecrets(value);
  }
  return out;
}

/** `text` with every secret of `options` (as {@link redactOptions} sees them) replaced by `***`. */
export function scrubOptionSecrets(text: string, options: object): string {
  let out = text;
  for (const secret of optionSecrets(options).sort((a, b) => b.length - a.length)) out = out.split(secret).join(REDACTED);
  return out;
}

/** The secret substrings of `options`' values, for scrubbing messages that may echo them. */
function optionSecrets(options: object): string[] {
  const out: string[] = [];
  for (const [key, value] of Object.entries(options)) {
    if (typeof value !== "string" || value.length === 0) continue;
    if (SECRET_KEY_PATTERN.test(key)) out.push(value);
    else out.push(...uriSecrets(value));
  }
  return out;
}
