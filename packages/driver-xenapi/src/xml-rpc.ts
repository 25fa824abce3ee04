/**
 * The XML-RPC codec XAPI's older hosts speak (POST /): method calls out, method responses in.
 * Small on purpose: XAPI uses strings, booleans, doubles, arrays, structs and dateTime; 64-bit
 * integers travel as strings (so a JS integer is sent as a string) unless wrapped in
 * {@link XapiFloat}, which goes out as `<double>`.
 */

/** A number XAPI declares as `float` (e.g. event.from's timeout): `<double>` in XML-RPC. */
export class XapiFloat {
  constructor(readonly value: number) {}
  toJSON(): number {
    return this.value;
  }
}

/** The values a XAPI call carries. */
export type XapiValue =
  | string
  | number
  | boolean
  | XapiFloat
  | null
  | readonly XapiValue[]
  | { readonly [key: string]: XapiValue };

const ESCAPES: Record<string, string> = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&apos;" };

function escapeXml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ESCAPES[c] ?? c);
}

function encodeValue(v: XapiValue, out: string[]): void {
  if (v instanceof XapiFloat) {
    out.push(`<value><double>${String(v.value)}</double></value>`);
  } else if (typeof v === "string") {
    out.push(`<value>${escapeXml(v)}</value>`);
  } else if (typeof v === "number") {
    out.push(Number.isInteger(v) ? `<value>${String(v)}</value>` : `<value><double>${String(v)}</double></value>`);
  } else if (typeof v === "boolean") {
    out.push(`<value><boolean>${v ? 1 : 0}</boolean></value>`);
  } else if (v === null) {
    out.push("<value></value>");
  } else if (Array.isArray(v)) {
    out.push("<value><array><data>");
    for (const item of v as readonly XapiValue[]) encodeValue(item, out);
    out.push("</data></array></value>");
  } else {
    out.push("<value><struct>");
    for (const [k, item] of Object.entries(v as Record<string, XapiValue>)) {
      out.push(`<member><name>${escapeXml(k)}</name>`);
      encodeValue(item, out);
      out.push("</member>");
    }
    out.push("</struct></value>");
  }
}

/** An XML-RPC `methodCall` document. */
export function encodeMethodCall(method: string, params: readonly XapiValue[]): string {
  const out: string[] = [`<?xml version="1.0"?><methodCall><methodName>${escapeXml(method)}</methodName><params>`];
  for (const p of params) {
    out.push("<param>");
    encodeValue(p, out);
    out.push("</param>");
  }
  out.push("</params></methodCall>");
  return out.join("");
}

/** An XML-RPC `methodResponse` document carrying `value` (used by tests and the XAPI task results). */
export function encodeMethodResponse(value: XapiValue): string {
  const out: string[] = ['<?xml version="1.0"?><methodResponse><params><param>'];
  encodeValue(value, out);
  out.push("</param></params></methodResponse>");
  return out.join("");
}

/** One parsed element. */
interface Element {
  readonly name: string;
  readonly children: Element[];
  text: string;
}

const ENTITY = /&(amp|lt|gt|quot|apos|#x[0-9a-fA-F]+|#[0-9]+);/g;

function unescapeXml(s: string): string {
  return s.replace(ENTITY, (_m, e: string) => {
    switch (e) {
      case "amp":
        return "&";
      case "lt":
        return "<";
      case "gt":
        return ">";
      case "quot":
        return '"';
      case "apos":
        return "'";
      default: {
        const code = e.startsWith("#x") ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10);
        // One XML does not allow (0, a surrogate, past U+10FFFF) is malformed, not a RangeError.
        const legal =
          code === 0x9 || code === 0xa || code === 0xd || (code >= 0x20 && code <= 0xd7ff) || (code >= 0xe000 && code <= 0xfffd) || (code >= 0x10000 && code <= 0x10ffff);
        if (!legal) throw new XmlRpcParseError("a character reference names no XML character");
        return String.fromCodePoint(code);
      }
    }
  });
}

/** How deep elements may nest in a reply. */
const MAX_DEPTH = 256;

/** Malformed XML-RPC. */
export class XmlRpcParseError extends Error {
  override name = "XmlRpcParseError";
}

/** Parses an XML document into elements (no attributes kept: XML-RPC uses none). Linear in the input. */
export function parseXml(xml: string): Element {
  const root: Element = { name: "#root", children: [], text: "" };
  const stack: Element[] = [root];
  const re = /<!\[CDATA\[([\s\S]*?)\]\]>|<\?[\s\S]*?\?>|<!--[\s\S]*?-->|<(\/?)([A-Za-z_][\w.:-]*)[^>]*?(\/?)>|([^<]+)/g;
  let m: RegExpExecArray | null;
  let consumed = 0;
  while ((m = re.exec(xml)) !== null) {
    if (m.index !== consumed) throw new XmlRpcParseError(`unexpected character at offset ${consumed}`);
    consumed = re.lastIndex;
    const top = stack[stack.length - 1]!;
    if (m[1] !== undefined) {
      top.text += m[1];
    } else if (m[5] !== undefined) {
      top.text += unescapeXml(m[5]);
    } else if (m[3] !== undefined) {
      if (m[2] === "/") {
        if (top.name !== m[3]) throw new XmlRpcParseError(`closing </${m[3]}> does not match <${top.name}>`);
        stack.pop();
      } else {
        const el: Element = { name: m[3], children: [], text: "" };
        top.children.push(el);
        if (m[4] !== "/") {
          // XAPI's replies nest a few dozen deep; thousands would overflow the recursive decode.
          if (stack.length > MAX_DEPTH) throw new XmlRpcParseError(`elements nested deeper than ${MAX_DEPTH}`);
          stack.push(el);
        }
      }
    }
  }
  if (consumed !== xml.length) throw new XmlRpcParseError(`unexpected character at offset ${consumed}`);
  if (stack.length !== 1) throw new XmlRpcParseError(`unclosed <${stack[stack.length - 1]!.name}>`);
  return root;
}

function child(el: Element, name: string): Element {
  const c = el.children.find((x) => x.name === name);
  if (!c) throw new XmlRpcParseError(`<${el.name}> has no <${name}>`);
  return c;
}

/** Decodes a `<value>` element. Integers come back as numbers, untyped values as strings. */
export function decodeValue(value: Element): XapiValue {
  const typed = value.children[0];
  if (!typed) return value.text;
  switch (typed.name) {
    case "string":
    case "dateTime.iso8601":
    case "base64":
      return typed.text;
    case "i4":
    case "i8":
    case "int":
      return Number(typed.text.trim());
    case "double":
      return Number(typed.text.trim());
    case "boolean":
      return typed.text.trim() === "1";
    case "nil":
      return null;
    case "array":
      return child(typed, "data").children.filter((c) => c.name === "value").map(decodeValue);
    case "struct": {
      const out: Record<string, XapiValue> = {};
      for (const member of typed.children) {
        if (member.name !== "member") continue;
        out[child(member, "name").text] = decodeValue(child(member, "value"));
      }
      return out;
    }
    default:
      throw new XmlRpcParseError(`unknown XML-RPC type <${typed.name}>`);
  }
}

/** Decodes a `methodResponse` into its single value (a `fault` becomes a thrown parse error). */
export function decodeMethodResponse(xml: string): XapiValue {
  const root = parseXml(xml);
  const resp = child(root, "methodResponse");
  const fault = resp.children.find((c) => c.name === "fault");
  if (fault) throw new XmlRpcParseError("XML-RPC fault");
  return decodeValue(child(child(child(resp, "params"), "param"), "value"));
}

/** Decodes a bare `<value>...</value>` fragment: the form of a XAPI task's `result`. */
export function decodeValueFragment(xml: string): XapiValue {
  const trimmed = xml.trim();
  if (trimmed === "") return "";
  const root = parseXml(trimmed);
  return decodeValue(child(root, "value"));
}
