/**
 * The little XML the driver needs: escaping for the documents it writes, and a small reader for
 * the documents libvirt hands back (domain XML, snapshot XML). Hand-written on purpose: libvirt's
 * XML is plain (no DTDs, no custom entities), and the candidates on npm pull in several packages.
 */

/** Escapes text for element content and for attribute values in either quote style. */
export function escapeXml(value: string | number): string {
  const text = String(value);
  // Most values (uuids, sizes, paths, names) have nothing to escape: one scan, no copies.
  return NEEDS_ESCAPE.test(text) ? text.replace(ESCAPED, (c) => ESCAPES[c]!) : text;
}

const NEEDS_ESCAPE = /[&<>"']/;
const ESCAPED = /[&<>"']/g;
const ESCAPES: Readonly<Record<string, string>> = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&apos;" };

/** One parsed element. */
export interface XmlElement {
  /** Qualified name as written, e.g. `disk` or `virtkit:instance`. */
  readonly name: string;
  readonly attributes: Readonly<Record<string, string>>;
  readonly children: readonly XmlElement[];
  /** Concatenated text content directly inside this element (entities decoded). */
  readonly text: string;
}

/** Raised for input that is not well-formed (for this reader's purposes). */
export class XmlParseError extends Error {
  override name = "XmlParseError";
}

const ENTITIES: Readonly<Record<string, string>> = { amp: "&", lt: "<", gt: ">", quot: '"', apos: "'" };

/** A character reference's character; one XML does not allow (0, a surrogate, past U+10FFFF) is a parse error. */
function fromReference(m: string, code: number): string {
  const legal =
    code === 0x9 ||
    code === 0xa ||
    code === 0xd ||
    (code >= 0x20 && code <= 0xd7ff) ||
    (code >= 0xe000 && code <= 0xfffd) ||
    (code >= 0x10000 && code <= 0x10ffff);
  if (!legal)
    throw new XmlParseError(`character reference ${m.length > 16 ? `${m.slice(0, 16)}...` : m} names no XML character`);
  return String.fromCodePoint(code);
}

function decodeEntities(s: string): string {
  return s.replace(/&(#x[0-9a-fA-F]+|#[0-9]+|[a-zA-Z]+);/g, (m, body: string) => {
    if (body.startsWith("#x")) return fromReference(m, parseInt(body.slice(2), 16));
    if (body.startsWith("#")) return fromReference(m, parseInt(body.slice(1), 10));
    const e = ENTITIES[body];
    if (e === undefined) throw new XmlParseError(`unknown entity ${m}`);
    return e;
  });
}

interface MutableElement {
  name: string;
  attributes: Record<string, string>;
  children: MutableElement[];
  text: string;
}

/** How deep elements may nest. */
const MAX_DEPTH = 256;

const NAME = /^[A-Za-z_][\w.:-]*/;
const ATTR = /^\s+([A-Za-z_][\w.:-]*)\s*=\s*("([^"<]*)"|'([^'<]*)')/;

/**
 * Parses a document into its root element. Comments, processing instructions and the XML
 * declaration are skipped; CDATA is kept as text. Throws {@link XmlParseError} on mismatched or
 * unclosed tags, bad attributes, unknown entities or more than one root element.
 */
export function parseXml(input: string): XmlElement {
  const stack: MutableElement[] = [];
  let root: MutableElement | undefined;
  let i = 0;
  const n = input.length;
  while (i < n) {
    const lt = input.indexOf("<", i);
    const textEnd = lt === -1 ? n : lt;
    if (textEnd > i) {
      const text = input.slice(i, textEnd);
      const top = stack[stack.length - 1];
      if (top) top.text += decodeEntities(text);
      else if (text.trim() !== "") throw new XmlParseError("text outside the root element");
    }
    if (lt === -1) break;
    i = lt;
    if (input.startsWith("<!--", i)) {
      const end = input.indexOf("-->", i + 4);
      if (end === -1) throw new XmlParseError("unterminated comment");
      i = end + 3;
    } else if (input.startsWith("<![CDATA[", i)) {
      const end = input.indexOf("]]>", i + 9);
      const top = stack[stack.length - 1];
      if (end === -1 || !top) throw new XmlParseError("bad CDATA section");
      top.text += input.slice(i + 9, end);
      i = end + 3;
    } else if (input.startsWith("<?", i)) {
      const end = input.indexOf("?>", i + 2);
      if (end === -1) throw new XmlParseError("unterminated processing instruction");
      i = end + 2;
    } else if (input.startsWith("<!", i)) {
      throw new XmlParseError("DTDs are not supported");
    } else if (input.startsWith("</", i)) {
      const m = NAME.exec(input.slice(i + 2));
      const close = m ? input.indexOf(">", i + 2 + m[0].length) : -1;
      if (!m || close === -1 || input.slice(i + 2 + m[0].length, close).trim() !== "") {
        throw new XmlParseError(`bad closing tag at ${i}`);
      }
      const top = stack.pop();
      if (!top || top.name !== m[0]) throw new XmlParseError(`mismatched closing tag </${m[0]}>`);
      i = close + 1;
    } else {
      const rest = input.slice(i + 1);
      const m = NAME.exec(rest);
      if (!m) throw new XmlParseError(`bad tag at ${i}`);
      const el: MutableElement = { name: m[0], attributes: {}, children: [], text: "" };
      let j = i + 1 + m[0].length;
      for (;;) {
        const a = ATTR.exec(input.slice(j));
        if (!a) break;
        const key = a[1] as string;
        if (Object.hasOwn(el.attributes, key)) throw new XmlParseError(`duplicate attribute ${key}`);
        el.attributes[key] = decodeEntities(a[3] ?? a[4] ?? "");
        j += a[0].length;
      }
      while (j < n && /\s/.test(input[j] as string)) j++;
      const selfClosing = input.startsWith("/>", j);
      if (!selfClosing && input[j] !== ">") throw new XmlParseError(`bad tag <${el.name}> at ${i}`);
      i = j + (selfClosing ? 2 : 1);
      const parent = stack[stack.length - 1];
      if (parent) parent.children.push(el);
      else if (root) throw new XmlParseError("more than one root element");
      else root = el;
      if (!selfClosing) {
        // libvirt's documents nest a dozen deep; a daemon nesting thousands would overflow every
        // recursive walk of the tree (a destroy that could never read its disks).
        if (stack.length >= MAX_DEPTH) throw new XmlParseError(`elements nested deeper than ${MAX_DEPTH}`);
        stack.push(el);
      }
    }
  }
  if (stack.length > 0) throw new XmlParseError(`unclosed element <${stack[stack.length - 1]?.name}>`);
  if (!root) throw new XmlParseError("no root element");
  return root;
}

/** The first child named `name`, if any. */
export function child(el: XmlElement | undefined, name: string): XmlElement | undefined {
  return el?.children.find((c) => c.name === name);
}

/** All children named `name`. */
export function children(el: XmlElement | undefined, name: string): XmlElement[] {
  return el ? el.children.filter((c) => c.name === name) : [];
}

/** Follows a path of child names from `el`, e.g. `path(domain, "devices", "disk")`. */
export function path(el: XmlElement | undefined, ...names: string[]): XmlElement | undefined {
  let cur = el;
  for (const nm of names) cur = child(cur, nm);
  return cur;
}

/** Writes `el` back as XML (attributes in single quotes, every value escaped). */
export function serializeXml(el: XmlElement, indent = ""): string {
  const attrs = Object.entries(el.attributes)
    .map(([k, v]) => ` ${k}='${escapeXml(v)}'`)
    .join("");
  const text = el.text.trim();
  if (el.children.length === 0 && text === "") return `${indent}<${el.name}${attrs}/>`;
  // Leaf text is kept verbatim (it may be a whole document, e.g. the XML kept for unrescue).
  if (el.children.length === 0) return `${indent}<${el.name}${attrs}>${escapeXml(el.text)}</${el.name}>`;
  const inner = el.children.map((c) => serializeXml(c, indent + "  ")).join("\n");
  // Mixed content is not used by libvirt; text beside child elements is kept before them.
  const lead = text === "" ? "" : `${indent}  ${escapeXml(text)}\n`;
  return `${indent}<${el.name}${attrs}>\n${lead}${inner}\n${indent}</${el.name}>`;
}
