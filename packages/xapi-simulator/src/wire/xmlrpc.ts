// XML-RPC as XAPI speaks it (POST /): ints travel as <string>, the reply is a struct
// {Status: "Success", Value} or {Status: "Failure", ErrorDescription: [code, ...params]}.
import { XapiError } from "../errors.js";
import type { RecordTypes, XapiType } from "./xapi-type.js";
import { parseType } from "./xapi-type.js";

/** A decoded XML-RPC call. */
export interface XmlRpcCall {
  readonly method: string;
  readonly params: unknown[];
}

/** A datetime read from `<dateTime.iso8601>`: kept as XAPI's string form. */
const ENTITY: Record<string, string> = { lt: "<", gt: ">", amp: "&", quot: '"', apos: "'" };

function unescapeXml(s: string): string {
  if (!s.includes("&")) return s;
  return s.replace(/&(#x[0-9a-fA-F]+|#\d+|lt|gt|amp|quot|apos);/g, (_, e: string) => {
    if (e.startsWith("#x")) return String.fromCodePoint(parseInt(e.slice(2), 16));
    if (e.startsWith("#")) return String.fromCodePoint(parseInt(e.slice(1), 10));
    return ENTITY[e] ?? "";
  });
}

/** Escape text for an XML element body. */
export function escapeXml(s: string): string {
  return s.replace(/[&<>]/g, (c) => (c === "&" ? "&amp;" : c === "<" ? "&lt;" : "&gt;"));
}

class Cursor {
  pos = 0;
  constructor(readonly src: string) {}

  /** Skip whitespace, comments and processing instructions. */
  skip(): void {
    for (;;) {
      while (this.pos < this.src.length && /\s/.test(this.src[this.pos] ?? "")) this.pos++;
      if (this.src.startsWith("<?", this.pos)) {
        const end = this.src.indexOf("?>", this.pos);
        if (end < 0) throw this.fail();
        this.pos = end + 2;
      } else if (this.src.startsWith("<!--", this.pos)) {
        const end = this.src.indexOf("-->", this.pos);
        if (end < 0) throw this.fail();
        this.pos = end + 3;
      } else return;
    }
  }

  /** Read `<name>` or `<name/>`; returns the name and whether it self-closed. */
  open(): { name: string; empty: boolean } {
    this.skip();
    const m = /^<([A-Za-z][\w.:-]*)\s*(\/?)>/.exec(this.src.slice(this.pos, this.pos + 64));
    if (!m) throw this.fail();
    this.pos += m[0].length;
    return { name: m[1] ?? "", empty: m[2] === "/" };
  }

  expectOpen(name: string): boolean {
    const t = this.open();
    if (t.name !== name) throw this.fail();
    return t.empty;
  }

  close(name: string): void {
    this.skip();
    const tag = `</${name}>`;
    if (!this.src.startsWith(tag, this.pos)) throw this.fail();
    this.pos += tag.length;
  }

  peekClose(): boolean {
    this.skip();
    return this.src.startsWith("</", this.pos);
  }

  text(): string {
    const end = this.src.indexOf("<", this.pos);
    if (end < 0) throw this.fail();
    const raw = this.src.slice(this.pos, end);
    this.pos = end;
    return unescapeXml(raw);
  }

  fail(): XapiError {
    return new XapiError("XMLRPC_UNMARSHAL_FAILURE", ["request", "malformed XML-RPC"]);
  }
}

function readValue(c: Cursor): unknown {
  const empty = c.expectOpen("value");
  if (empty) return "";
  // An untyped <value>text</value> is a string.
  const save = c.pos;
  const leading = c.text();
  if (c.src.startsWith("</value>", c.pos)) {
    c.pos += 8;
    return leading;
  }
  c.pos = save;
  const t = c.open();
  let v: unknown;
  if (t.empty) {
    v = t.name === "nil" ? null : t.name === "string" ? "" : t.name === "array" || t.name === "struct" ? emptyOf(t.name) : c.fail();
    if (v instanceof XapiError) throw v;
  } else {
    switch (t.name) {
      case "string":
        v = c.text();
        break;
      case "i4":
      case "int":
      case "i8":
        v = Number(c.text().trim());
        break;
      case "double":
        v = Number(c.text().trim());
        break;
      case "boolean":
        v = c.text().trim() === "1";
        break;
      case "dateTime.iso8601":
        v = c.text().trim();
        break;
      case "array": {
        const items: unknown[] = [];
        if (!c.expectOpen("data")) {
          while (!c.peekClose()) items.push(readValue(c));
          c.close("data");
        }
        v = items;
        break;
      }
      case "struct": {
        const obj: Record<string, unknown> = {};
        while (!c.peekClose()) {
          c.expectOpen("member");
          c.expectOpen("name");
          const key = c.text();
          c.close("name");
          obj[key] = readValue(c);
          c.close("member");
        }
        v = obj;
        break;
      }
      default:
        throw c.fail();
    }
    c.close(t.name);
  }
  c.close("value");
  return v;
}

function emptyOf(name: string): unknown {
  return name === "array" ? [] : {};
}

/** Parse a `<methodCall>`. */
export function parseMethodCall(body: string): XmlRpcCall {
  const c = new Cursor(body);
  c.expectOpen("methodCall");
  c.expectOpen("methodName");
  const method = c.text().trim();
  c.close("methodName");
  const params: unknown[] = [];
  c.skip();
  if (!c.peekClose()) {
    if (!c.expectOpen("params")) {
      while (!c.peekClose()) {
        c.expectOpen("param");
        params.push(readValue(c));
        c.close("param");
      }
      c.close("params");
    }
  }
  c.close("methodCall");
  return { method, params };
}

/** Encode a value of a known XAPI type the way XAPI's XML-RPC does. */
export function xmlValue(v: unknown, type: XapiType, records: RecordTypes): string {
  switch (type.k) {
    case "string":
    case "ref":
    case "enum":
      return `<value>${escapeXml(String(v ?? ""))}</value>`;
    case "int":
      return `<value>${String(v ?? 0)}</value>`;
    case "float":
      return `<value><double>${Number(v ?? 0)}</double></value>`;
    case "bool":
      return `<value><boolean>${v ? 1 : 0}</boolean></value>`;
    case "datetime":
      return `<value><dateTime.iso8601>${escapeXml(String(v ?? ""))}</dateTime.iso8601></value>`;
    case "void":
      return "<value></value>";
    case "set":
      return `<value><array><data>${((v as unknown[]) ?? []).map((x) => xmlValue(x, type.of, records)).join("")}</data></array></value>`;
    case "map": {
      let out = "<value><struct>";
      for (const [k, x] of Object.entries((v as Record<string, unknown>) ?? {})) {
        out += `<member><name>${escapeXml(k)}</name>${xmlValue(x, type.value, records)}</member>`;
      }
      return out + "</struct></value>";
    }
    case "record": {
      const fields = records(type.cls);
      let out = "<value><struct>";
      for (const [k, x] of Object.entries((v as Record<string, unknown>) ?? {})) {
        const ft = fields?.[k];
        out += `<member><name>${escapeXml(k)}</name>${ft ? xmlValue(x, parseType(ft), records) : xmlAny(x)}</member>`;
      }
      return out + "</struct></value>";
    }
    case "any":
      return xmlAny(v);
  }
}

/** Encode a value whose type is only known from its JavaScript shape (strings, arrays, structs). */
export function xmlAny(v: unknown): string {
  if (typeof v === "string") return `<value>${escapeXml(v)}</value>`;
  if (typeof v === "number") return Number.isInteger(v) ? `<value>${v}</value>` : `<value><double>${v}</double></value>`;
  if (typeof v === "boolean") return `<value><boolean>${v ? 1 : 0}</boolean></value>`;
  if (Array.isArray(v)) return `<value><array><data>${v.map(xmlAny).join("")}</data></array></value>`;
  if (v && typeof v === "object") {
    let out = "<value><struct>";
    for (const [k, x] of Object.entries(v)) out += `<member><name>${escapeXml(k)}</name>${xmlAny(x)}</member>`;
    return out + "</struct></value>";
  }
  return "<value></value>";
}

const HEAD = '<?xml version="1.0"?><methodResponse><params><param>';
const TAIL = "</param></params></methodResponse>";

/** A successful reply around an already-encoded value. */
export function xmlSuccess(encodedValue: string): string {
  return `${HEAD}<value><struct><member><name>Status</name><value>Success</value></member><member><name>Value</name>${encodedValue}</member></struct></value>${TAIL}`;
}

/** A failure reply. */
export function xmlFailure(description: readonly string[]): string {
  return `${HEAD}<value><struct><member><name>Status</name><value>Failure</value></member><member><name>ErrorDescription</name>${xmlAny([...description])}</member></struct></value>${TAIL}`;
}
