/**
 * The machine's apt mirror, read from /etc/apt/sources.list and sources.list.d (one-line `.list`
 * and deb822 `.sources`): debootstrap fetches the base system from it, and the image's own apt
 * gets the same Debian entries (main suite, -updates, -security), so every layer installs what
 * this machine would.
 */
import { readFile, readdir } from "node:fs/promises";
import { join } from "node:path";

/** One `deb` entry. */
export interface AptEntry {
  readonly uri: string;
  readonly suites: readonly string[];
  readonly components: readonly string[];
  readonly signedBy?: string;
}

/** The keyring Debian's own entries are signed by; the base image has it (debian-archive-keyring). */
const DEBIAN_KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg";

/** Parses deb822 `.sources` text. */
export function parseDeb822(text: string): AptEntry[] {
  const out: AptEntry[] = [];
  for (const stanza of text.split(/\n\s*\n/)) {
    const fields = new Map<string, string>();
    let last: string | undefined;
    for (const line of stanza.split("\n")) {
      if (line.startsWith("#") || line.trim() === "") continue;
      if (/^\s/.test(line) && last !== undefined) {
        fields.set(last, `${fields.get(last) ?? ""} ${line.trim()}`);
        continue;
      }
      const m = /^([A-Za-z0-9-]+):\s*(.*)$/.exec(line);
      if (!m) continue;
      last = m[1]!.toLowerCase();
      fields.set(last, m[2]!.trim());
    }
    if (!(fields.get("types") ?? "").split(/\s+/).includes("deb")) continue;
    if ((fields.get("enabled") ?? "yes").toLowerCase() === "no") continue;
    const words = (key: string) => (fields.get(key) ?? "").split(/\s+/).filter((w) => w !== "");
    const signedBy = fields.get("signed-by");
    for (const uri of words("uris")) {
      out.push({
        uri,
        suites: words("suites"),
        components: words("components"),
        ...(signedBy !== undefined && signedBy !== "" ? { signedBy } : {}),
      });
    }
  }
  return out;
}

/** Parses one-line `.list` text (`deb [options] uri suite components...`). */
export function parseOneLine(text: string): AptEntry[] {
  const out: AptEntry[] = [];
  for (const raw of text.split("\n")) {
    const line = raw.replace(/#.*$/, "").trim();
    const m = /^deb\s+(?:\[([^\]]*)\]\s+)?(\S+)\s+(\S+)\s*(.*)$/.exec(line);
    if (!m) continue;
    const signedBy = /(?:^|\s)signed-by=(\S+)/.exec(m[1] ?? "")?.[1];
    out.push({
      uri: m[2]!,
      suites: [m[3]!],
      components: m[4]!.split(/\s+/).filter((w) => w !== ""),
      ...(signedBy !== undefined ? { signedBy } : {}),
    });
  }
  return out;
}

/** Every `deb` entry of the machine's apt configuration. */
export async function readAptEntries(root = "/etc/apt"): Promise<AptEntry[]> {
  const entries: AptEntry[] = [];
  const main = await readFile(join(root, "sources.list"), "utf8").catch(() => "");
  entries.push(...parseOneLine(main));
  const dir = join(root, "sources.list.d");
  const names = (await readdir(dir).catch(() => [] as string[])).sort();
  for (const name of names) {
    const text = await readFile(join(dir, name), "utf8").catch(() => "");
    if (name.endsWith(".list")) entries.push(...parseOneLine(text));
    else if (name.endsWith(".sources")) entries.push(...parseDeb822(text));
  }
  return entries;
}

/** What the image's apt is given: the debootstrap mirror and the image's sources file. */
export interface DebianSources {
  /** The mirror of the main suite (for debootstrap). */
  readonly mirror: string;
  readonly suite: string;
  /** deb822 text for the image's /etc/apt/sources.list.d/debian.sources. */
  readonly sourcesFile: string;
}

/**
 * The Debian entries for `suite` (and its -updates/-security suites), signed by Debian's own
 * keyring (entries of other vendors are left out: their keys are not in the image).
 */
export function debianSources(entries: readonly AptEntry[], suite = "bookworm"): DebianSources {
  const ours = entries
    .map((e) => ({ ...e, suites: e.suites.filter((s) => s === suite || s.startsWith(`${suite}-`)) }))
    .filter((e) => e.suites.length > 0 && (e.signedBy === undefined || e.signedBy === DEBIAN_KEYRING));
  const main = ours.find((e) => e.suites.includes(suite));
  if (!main) {
    throw new Error(`no apt entry for Debian ${suite} in /etc/apt/sources.list*: the base image needs a mirror`);
  }
  const stanzas = ours.map((e) =>
    [
      "Types: deb",
      `URIs: ${e.uri}`,
      `Suites: ${e.suites.join(" ")}`,
      `Components: ${(e.components.length > 0 ? e.components : ["main"]).join(" ")}`,
      `Signed-By: ${DEBIAN_KEYRING}`,
    ].join("\n"),
  );
  return { mirror: main.uri, suite, sourcesFile: stanzas.join("\n\n") + "\n" };
}
