/**
 * Driver options as they may be shown (reports, `--json`, error messages): values under
 * password-like keys ({@link SECRET_KEY_PATTERN}) and the password of a URI's user info
 * (`qemu+tcp://admin:pw@host/system`) or of a query parameter with such a key become `***`.
 */
import { REDACTED, SECRET_KEY_PATTERN } from "./logger.js";

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

/** `value` with its URI user-info password and secret query values replaced; non-URIs unchanged. */
function redactUriSecrets(value: string): string {
  let out = value;
  for (const secret of uriSecrets(value)) out = out.split(secret).join(REDACTED);
  return out;
}

/** The raw (as written) password and secret query values of `value` when it is a URI. */
function uriSecrets(value: string): string[] {
  const m = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/([^/?#]*)(?:[/?#]|$)/.exec(value);
  if (!m) return [];
  const secrets: string[] = [];
  const authority = m[1] ?? "";
  const at = authority.lastIndexOf("@");
  if (at >= 0) {
    const userinfo = authority.slice(0, at);
    const colon = userinfo.indexOf(":");
    if (colon >= 0 && colon < userinfo.length - 1) secrets.push(userinfo.slice(colon + 1));
  }
  const q = value.indexOf("?");
  if (q >= 0) {
    for (const part of value.slice(q + 1).split("#")[0]!.split("&")) {
      const eq = part.indexOf("=");
      if (eq > 0 && eq < part.length - 1 && SECRET_KEY_PATTERN.test(part.slice(0, eq))) secrets.push(part.slice(eq + 1));
    }
  }
  return secrets;
}
