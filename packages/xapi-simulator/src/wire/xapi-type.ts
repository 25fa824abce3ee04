// XAPI's type language ("(string -> string) map", "VM ref set", "enum vm_power_state", ...)
// parsed once into a tree that drives how a value is put on each wire and how arguments are read.
import { XapiError } from "../errors.js";

/** A parsed XAPI type. */
export type XapiType =
  | { readonly k: "string" | "int" | "float" | "bool" | "datetime" | "void" | "any" }
  | { readonly k: "ref"; readonly cls: string }
  | { readonly k: "enum"; readonly name: string }
  | { readonly k: "set"; readonly of: XapiType }
  | { readonly k: "map"; readonly key: XapiType; readonly value: XapiType }
  | { readonly k: "record"; readonly cls: string };

const cache = new Map<string, XapiType>();

/** Parse a type as the datamodel writes it. */
export function parseType(text: string): XapiType {
  const hit = cache.get(text);
  if (hit) return hit;
  const t = parse(text.trim());
  cache.set(text, t);
  return t;
}

function parse(s: string): XapiType {
  if (s.endsWith(" set")) return { k: "set", of: parse(s.slice(0, -4).trim()) };
  if (s.endsWith(" map")) {
    const inner = s.slice(0, -4).trim();
    if (!inner.startsWith("(") || !inner.endsWith(")")) throw new Error(`bad map type ${s}`);
    const body = inner.slice(1, -1);
    const at = topLevelArrow(body);
    return { k: "map", key: parse(body.slice(0, at).trim()), value: parse(body.slice(at + 4).trim()) };
  }
  if (s.startsWith("(") && s.endsWith(")")) return parse(s.slice(1, -1));
  if (s.endsWith(" ref")) return { k: "ref", cls: s.slice(0, -4) };
  if (s.endsWith(" record")) return { k: "record", cls: s.slice(0, -7) };
  if (s.startsWith("enum ")) return { k: "enum", name: s.slice(5) };
  switch (s) {
    case "string":
    case "int":
    case "float":
    case "bool":
    case "datetime":
    case "void":
    case "any":
      return { k: s };
  }
  throw new Error(`unknown XAPI type ${s}`);
}

function topLevelArrow(body: string): number {
  let depth = 0;
  for (let i = 0; i < body.length; i++) {
    const c = body[i];
    if (c === "(") depth++;
    else if (c === ")") depth--;
    else if (depth === 0 && body.startsWith(" -> ", i)) return i;
  }
  throw new Error(`bad map type (${body})`);
}

/**
 * Read an argument as XAPI's unmarshaller would: XML-RPC sends ints as strings, JSON as numbers;
 * anything of the wrong shape is `FIELD_TYPE_ERROR [name]`.
 */
export function coerce(value: unknown, type: XapiType, name: string, records?: RecordTypes): unknown {
  const bad = (): never => {
    throw new XapiError("FIELD_TYPE_ERROR", [name]);
  };
  switch (type.k) {
    case "string":
    case "ref":
    case "enum":
    case "datetime":
      if (typeof value === "string") return value;
      if (type.k === "string" && typeof value === "number") return String(value);
      return bad();
    case "int": {
      if (typeof value === "number" && Number.isInteger(value)) return value;
      if (typeof value === "string" && /^-?\d+$/.test(value)) return Number(value);
      return bad();
    }
    case "float": {
      if (typeof value === "number") return value;
      if (typeof value === "string" && value.trim() !== "" && !Number.isNaN(Number(value))) return Number(value);
      return bad();
    }
    case "bool":
      if (typeof value === "boolean") return value;
      if (value === "true" || value === "1") return true;
      if (value === "false" || value === "0") return false;
      return bad();
    case "set":
      if (!Array.isArray(value)) return bad();
      return value.map((v) => coerce(v, type.of, name, records));
    case "map": {
      if (value === null || typeof value !== "object" || Array.isArray(value)) return bad();
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(value)) out[k] = coerce(v, type.value, name, records);
      return out;
    }
    case "record": {
      if (value === null || typeof value !== "object" || Array.isArray(value)) return bad();
      const fields = records?.(type.cls);
      if (!fields) return value;
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(value)) {
        const ft = fields[k];
        // XAPI ignores unknown fields in constructor records.
        if (ft) out[k] = coerce(v, parseType(ft), k, records);
      }
      return out;
    }
    case "void":
    case "any":
      return value;
  }
}

/** Field types of a class by name, for records inside arguments and results. */
export type RecordTypes = (cls: string) => Readonly<Record<string, string>> | undefined;
