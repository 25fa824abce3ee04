/**
 * What counts as a secret in text: the placeholder that replaces one, the key names whose values
 * are secret, and the credentials a URI carries (the user-info password, query parameters with a
 * secret-looking name). Shared by the logger and the option redaction, and imports nothing.
 */

/** What replaces a secret. */
export const REDACTED = "***";

/**
 * Keys whose values are always redacted: passwords, secrets, tokens, credentials, authorization,
 * API and private keys, cookies, and sessions (a XAPI session reference logs the caller in as
 * surely as the password: `session`, `session_id`, `xapiSession`, also in a URI's query).
 */
export const SECRET_KEY_PATTERN = /pass(word)?|secret|token|credential|auth|^pwd$|api[-_]?key|private[-_]?key|cookie|session(_?id)?$/i;

/** A URI inside any text: scheme, `://`, then up to whitespace, a quote or a bracket. */
const URI_IN_TEXT_RE = /[A-Za-z][A-Za-z0-9+.-]*:\/\/[^\s"'`<>()[\]{}]+/g;

/** The raw (as written) user-info password and secret query values of `value` when it is a URI. */
export function uriSecrets(value: string): string[] {
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

/** `value` (a URI) with its user-info password and secret query values replaced; non-URIs unchanged. */
export function redactUriSecrets(value: string): string {
  let out = value;
  for (const secret of uriSecrets(value).sort((a, b) => b.length - a.length)) out = out.split(secret).join(REDACTED);
  return out;
}

/**
 * `text` with the credentials of every URI inside it replaced (`connect to
 * https://root:pw@xen-1/ failed` → `... https://root:***@xen-1/ ...`); text without `://` is
 * returned as is.
 */
export function redactUrisInText(text: string): string {
  if (!text.includes("://")) return text;
  return text.replace(URI_IN_TEXT_RE, (uri) => {
    // A trailing `.` or `,` ends the sentence, not the URI.
    const trail = /[.,;:!]+$/.exec(uri)?.[0] ?? "";
    const body = trail ? uri.slice(0, -trail.length) : uri;
    return redactUriSecrets(body) + trail;
  });
}
