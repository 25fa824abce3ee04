/**
 * Finds a scenario's secrets (passwords) in text the driver produced (errors, log lines, the
 * report) in the forms a driver is likely to let slip: as written, JSON-escaped, URL-encoded, and
 * inside base64 or hex (a guest agent takes a password base64-encoded: an error quoting the agent
 * command it sent holds it that way), and blanks them out for the report.
 */

/** What a found secret is replaced with. */
export const REDACTED = "[REDACTED]";

/** Runs of base64 (standard or URL-safe alphabet) or hex long enough to hold a password. */
const ENCODED_RUN = /[A-Za-z0-9+/_-]{8,}={0,2}/g;
/** Hex inside a run (glued to other letters: `0x70617373...`), tried at both alignments. */
const HEX_RUN = /[0-9a-fA-F]{8,}/g;

/** The forms of each secret searched for as text (the raw value, JSON-escaped, URL-encoded). */
function plainForms(secrets: readonly string[]): string[] {
  const forms = secrets.flatMap((s) => [s, JSON.stringify(s).slice(1, -1), encodeURIComponent(s), encodeURIComponent(s).replace(/%20/g, "+")]);
  return [...new Set(forms)].filter((f) => f.length > 0);
}

/** The texts an encoded run may stand for: its base64 decodings at each alignment, and hex. */
function decodings(run: string): string[] {
  const out: string[] = [];
  for (const hex of run.match(HEX_RUN) ?? []) {
    for (const skip of [0, 1]) out.push(Buffer.from(hex.slice(skip, hex.length - ((hex.length - skip) % 2)), "hex").toString("latin1"));
  }
  const b64 = run.replace(/=+$/, "");
  // A run may start inside a longer base64 text (cut by a character outside the alphabet):
  // each of the four alignments is decoded.
  for (let skip = 0; skip < 4 && b64.length - skip >= 8; skip++) {
    const part = b64.slice(skip);
    out.push(Buffer.from(part.replace(/-/g, "+").replace(/_/g, "/"), "base64").toString("latin1"));
  }
  return out;
}

/** A scanner for one set of secrets (empty values are ignored). */
export class SecretScan {
  readonly #secrets: readonly string[];
  readonly #plain: readonly string[];
  /** The plain forms as latin1 text of their UTF-8 bytes: what a decoding of bytes shows. */
  readonly #bytes: readonly string[];

  constructor(secrets: readonly string[]) {
    this.#secrets = [...new Set(secrets)].filter((s) => s.length > 0);
    this.#plain = plainForms(this.#secrets);
    this.#bytes = this.#plain.map((s) => Buffer.from(s, "utf8").toString("latin1"));
  }

  get empty(): boolean {
    return this.#secrets.length === 0;
  }

  /** True when `text` holds a secret in any of the forms searched. */
  found(text: string): boolean {
    if (this.empty) return false;
    if (this.#plain.some((f) => text.includes(f))) return true;
    return this.#encodedRuns(text).length > 0;
  }

  /** `text` with every form of a secret found replaced by {@link REDACTED}. */
  redact(text: string): string {
    if (this.empty) return text;
    let out = this.#plain.reduce((t, f) => t.split(f).join(REDACTED), text);
    for (const run of this.#encodedRuns(out)) out = out.split(run).join(REDACTED);
    return out;
  }

  /**
   * `value` (JSON data) with every string in it redacted, one string at a time: redacting its JSON
   * text instead could take the letter of an escape (`\n` before a base64 run) and leave JSON
   * that no longer parses.
   */
  redactData<T>(value: T): T {
    if (this.empty) return value;
    return JSON.parse(JSON.stringify(value), (_key, v: unknown) => (typeof v === "string" ? this.redact(v) : v)) as T;
  }

  /** The base64 or hex runs of `text` whose decoding holds a secret. */
  #encodedRuns(text: string): string[] {
    const runs = text.match(ENCODED_RUN) ?? [];
    return runs.filter((run) => decodings(run).some((d) => this.#bytes.some((b) => d.includes(b))));
  }
}
