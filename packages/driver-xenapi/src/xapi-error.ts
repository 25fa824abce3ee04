/**
 * A XAPI failure as the wire gives it: `[CODE, ...params]` (XML-RPC `ErrorDescription`, JSON-RPC
 * `error.message` + `error.data`). It stays internal: the driver throws core's typed errors and
 * keeps this one as their `cause`, so XAPI's code and parameters are there for diagnosis.
 *
 * Parameters that are session references (`OpaqueRef:` of a session, as in SESSION_INVALID) are
 * replaced by `***` at construction: a session ref is a credential and must reach no log or error.
 */

/** Error codes whose parameters name a session and are therefore masked. */
const SESSION_CODES = new Set(["SESSION_INVALID", "SESSION_NOT_REGISTERED", "SESSION_AUTHENTICATION_FAILED"]);

/** Masks what must never be shown: session refs in known positions, and anything after `session_id=`. */
export function maskXapiParams(code: string, params: readonly string[], sessionRefs: readonly string[] = []): string[] {
  return params.map((p) => {
    if (SESSION_CODES.has(code) && /^OpaqueRef:/.test(p)) return "***";
    let out = p;
    for (const ref of sessionRefs) {
      if (ref.length === 0) continue;
      // A parameter that is no string reaches here as JSON, where a secret holding `"`, `\` or a
      // control character is written escaped: that form first, so no stray escape is left.
      const escaped = JSON.stringify(ref).slice(1, -1);
      // A secret this short would mask every occurrence of common letters (and show which): the
      // whole parameter goes instead.
      if (ref.length < 4) {
        if (out.includes(ref) || out.includes(escaped)) out = "***";
        continue;
      }
      if (escaped !== ref) out = out.split(escaped).join("***");
      out = out.split(ref).join("***");
    }
    return out.replace(/session_id=[^&\s"']+/g, "session_id=***");
  });
}

/** A failure XAPI reported. `xapiCode` is XAPI's own code (`VM_BAD_POWER_STATE`, ...). */
export class XapiError extends Error {
  override name = "XapiError";
  readonly xapiCode: string;
  readonly xapiParams: readonly string[];
  /** The call that failed (`VM.start`), never its arguments. */
  readonly method: string;

  constructor(method: string, rawCode: string, params: readonly string[], sessionRefs: readonly string[] = []) {
    const masked = maskXapiParams(rawCode, params, sessionRefs);
    // A hostile host may put a secret where the code goes: no real code contains one.
    const [code = rawCode] = maskXapiParams("", [rawCode], sessionRefs);
    super(`${method}: ${code}${masked.length > 0 ? ` [${masked.join(", ")}]` : ""}`);
    this.xapiCode = code;
    this.xapiParams = Object.freeze(masked);
    this.method = method;
  }

  /** A JSON view for loggers (params already masked). */
  toJSON(): Record<string, unknown> {
    return { name: this.name, message: this.message, xapiCode: this.xapiCode, xapiParams: this.xapiParams };
  }
}

/** The endpoint could not be reached or answered something that is not XAPI (transport failure). */
export class XapiTransportError extends Error {
  override name = "XapiTransportError";
  constructor(
    readonly reason: string,
    options?: { cause?: unknown },
  ) {
    super(reason, options);
  }
}

/** True for a XAPI failure with one of `codes`. */
export function isXapiError(err: unknown, ...codes: string[]): err is XapiError {
  return err instanceof XapiError && (codes.length === 0 || codes.includes(err.xapiCode));
}

/** Turns a wire error description (`[code, ...params]`, or a bare code) into an XapiError. */
export function xapiErrorFrom(method: string, description: unknown, sessionRefs: readonly string[] = []): XapiError {
  if (Array.isArray(description) && description.length > 0) {
    const [code, ...params] = description.map((d) => (typeof d === "string" ? d : JSON.stringify(d)));
    return new XapiError(method, code ?? "INTERNAL_ERROR", params, sessionRefs);
  }
  if (typeof description === "string" && description.length > 0) return new XapiError(method, description, [], sessionRefs);
  return new XapiError(method, "INTERNAL_ERROR", ["unrecognised error description"], sessionRefs);
}
