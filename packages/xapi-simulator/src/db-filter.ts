// XAPI's expression language for `<class>.get_all_records_where` (ocaml/database: db_filter_lex.mll,
// db_filter_parse.mly, db_filter.ml), as XAPI reads it:
//   expr  := value "=" value | expr "and" expr | expr "or" expr | "not" expr | "true" | "false" | "(" expr ")"
//   value := "\"" any but a double quote "\"" (a literal) | "field" "\"" db field name "\""
// `and` and `or` bind alike, left to right; `not` binds loosest (`not a and b` is `not (a and b)`).
// A field is compared by its database text ("true"/"false", a decimal int, a ref, an enum's name),
// named as the database names it (`name__label` for the API's `name_label`). An expression that does
// not parse is INVALID_VALUE [expr, why]; a field the class lacks is an INTERNAL_ERROR, as in XAPI.
import { XapiError } from "./errors.js";
import { parseType, type XapiType } from "./wire/xapi-type.js";

type Value = { readonly field: string } | { readonly literal: string };
export type FilterExpr =
  | { readonly op: "true" | "false" }
  | { readonly op: "not"; readonly e: FilterExpr }
  | { readonly op: "and" | "or"; readonly a: FilterExpr; readonly b: FilterExpr }
  | { readonly op: "eq"; readonly a: Value; readonly b: Value };

type Token = "=" | "(" | ")" | "true" | "false" | "field" | "and" | "or" | "not" | { readonly s: string };

const KEYWORDS = ["true", "false", "field", "and", "or", "not"] as const;
/** Expressions longer than this are refused before parsing: the simulator's own limit, not XAPI's. */
const MAX_EXPR = 64 * 1024;
/** Nesting deeper than this is refused (the parser recurses): the simulator's own limit, not XAPI's. */
const MAX_DEPTH = 256;

function tokens(text: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    if (c === " " || c === "\t" || c === "\n") {
      i++;
      continue;
    }
    if (c === "=" || c === "(" || c === ")") {
      out.push(c);
      i++;
      continue;
    }
    if (c === '"') {
      const end = text.indexOf('"', i + 1);
      if (end < 0) throw new Error("Failure(\"lexing: empty token\")");
      out.push({ s: text.slice(i + 1, end) });
      i = end + 1;
      continue;
    }
    const kw = KEYWORDS.find((k) => text.startsWith(k, i));
    if (!kw) throw new Error('Failure("lexing: empty token")');
    out.push(kw);
    i += kw.length;
  }
  return out;
}

class Parser {
  #at = 0;
  #depth = 0;
  constructor(private readonly toks: readonly Token[]) {}

  whole(): FilterExpr {
    const e = this.#expr();
    if (this.#at !== this.toks.length) throw new Error("Parsing.Parse_error");
    return e;
  }

  #peek(): Token | undefined {
    return this.toks[this.#at];
  }

  #take(): Token {
    const t = this.toks[this.#at++];
    if (t === undefined) throw new Error("Parsing.Parse_error");
    return t;
  }

  #expr(): FilterExpr {
    if (++this.#depth > MAX_DEPTH) throw new Error("Parsing.Parse_error");
    try {
      // `not` binds loosest: it takes everything after it.
      if (this.#peek() === "not") {
        this.#at++;
        return { op: "not", e: this.#expr() };
      }
      let left = this.#primary();
      for (let t = this.#peek(); t === "and" || t === "or"; t = this.#peek()) {
        this.#at++;
        const right: FilterExpr = this.#peek() === "not" ? this.#expr() : this.#primary();
        left = { op: t, a: left, b: right };
      }
      return left;
    } finally {
      this.#depth--;
    }
  }

  #primary(): FilterExpr {
    const t = this.#take();
    if (t === "true" || t === "false") return { op: t };
    if (t === "(") {
      const e = this.#expr();
      if (this.#take() !== ")") throw new Error("Parsing.Parse_error");
      return e;
    }
    this.#at--;
    const a = this.#value();
    if (this.#take() !== "=") throw new Error("Parsing.Parse_error");
    return { op: "eq", a, b: this.#value() };
  }

  #value(): Value {
    const t = this.#take();
    if (t === "field") {
      const name = this.#take();
      if (typeof name !== "object") throw new Error("Parsing.Parse_error");
      return { field: name.s };
    }
    if (typeof t !== "object") throw new Error("Parsing.Parse_error");
    return { literal: t.s };
  }
}

/** Parses an expression as XAPI does; INVALID_VALUE [expr, why] when it does not parse. */
export function parseFilter(text: string): FilterExpr {
  try {
    if (text.length > MAX_EXPR) throw new Error("Parsing.Parse_error");
    return new Parser(tokens(text)).whole();
  } catch (e) {
    throw new XapiError("INVALID_VALUE", [text, (e as Error).message]);
  }
}

/** A string in XAPI's S-expression form (quoted with ', with \ and ' escaped). */
function sexprString(s: string): string {
  return `'${s.replace(/\\/g, "\\\\").replace(/'/g, "\\'")}'`;
}

/** A field's value as XAPI's database holds it in text (Schema.Value.marshal). */
function dbText(value: unknown, type: XapiType): string {
  switch (type.k) {
    case "bool":
      return value === true ? "true" : "false";
    case "int":
    case "float":
      return String(value ?? 0);
    case "set":
      return `(${(Array.isArray(value) ? value : []).map((v) => sexprString(dbText(v, type.of))).join(" ")})`;
    case "map": {
      const entries = Object.entries((value ?? {}) as Record<string, unknown>);
      return `(${entries.map(([k, v]) => `(${sexprString(k)} ${sexprString(dbText(v, type.value))})`).join(" ")})`;
    }
    default:
      return typeof value === "string" ? value : String(value ?? "");
  }
}

/**
 * Whether `record` (of a class with field types `types`) matches `expr`. A field is named as the
 * database names it: `name__label` for `name_label` (namespace and field joined by two underscores).
 */
export function matchesFilter(
  cls: string,
  expr: FilterExpr,
  record: Readonly<Record<string, unknown>>,
  types: Readonly<Record<string, string>>,
): boolean {
  const text = (v: Value): string => {
    if ("literal" in v) return v.literal;
    const apiName = v.field.replace(/__/g, "_");
    const type = types[apiName];
    if (type === undefined || (v.field !== apiName) !== namespaced(cls, apiName)) {
      throw new XapiError("INTERNAL_ERROR", [`Db_exn.DBCache_NotFound("missing field", "${v.field}", "")`]);
    }
    return dbText(record[apiName], parseType(type));
  };
  // A chain of and/or (`a or b or c ...`, any length) is walked down its left side in a loop, not
  // by recursion: only nesting (parentheses, `not`) recurses, and the parser bounds that.
  const run = (e: FilterExpr): boolean => {
    const links: Extract<FilterExpr, { op: "and" | "or" }>[] = [];
    let first = e;
    while (first.op === "and" || first.op === "or") {
      links.push(first);
      first = first.a;
    }
    let value: boolean;
    switch (first.op) {
      case "true":
        value = true;
        break;
      case "false":
        value = false;
        break;
      case "not":
        value = !run(first.e);
        break;
      case "eq":
        value = text(first.a) === text(first.b);
        break;
    }
    for (let i = links.length - 1; i >= 0; i--) {
      const link = links[i]!;
      value = link.op === "and" ? value && run(link.b) : value || run(link.b);
    }
    return value;
  };
  return run(expr);
}

/**
 * API fields the database keeps under a namespace (`name__label`), by class: the datamodel's
 * `namespace` groups of the classes the simulator holds (a host's `memory_overhead` is no
 * namespace's, a VM's is). A filter must name these with two underscores.
 */
const NAMESPACED_COMMON = ["name_label", "name_description"];
const NAMESPACED_BY_CLASS: Readonly<Record<string, readonly string[]>> = {
  VM: [
    "memory_overhead",
    "memory_target",
    "memory_static_max",
    "memory_dynamic_max",
    "memory_dynamic_min",
    "memory_static_min",
    "VCPUs_params",
    "VCPUs_max",
    "VCPUs_at_startup",
    "actions_after_shutdown",
    "actions_after_reboot",
    "actions_after_crash",
    "actions_after_softreboot",
    "PV_bootloader",
    "PV_kernel",
    "PV_ramdisk",
    "PV_args",
    "PV_bootloader_args",
    "PV_legacy_args",
    "HVM_boot_policy",
    "HVM_boot_params",
    "HVM_shadow_multiplier",
  ],
  host: ["API_version_major", "API_version_minor", "API_version_vendor", "API_version_vendor_implementation"],
  host_metrics: ["memory_total", "memory_free"],
  VM_metrics: ["memory_actual", "VCPUs_number", "VCPUs_utilisation", "VCPUs_CPU", "VCPUs_params", "VCPUs_flags"],
  VBD: ["qos_algorithm_type", "qos_algorithm_params", "qos_supported_algorithms"],
  VIF: ["qos_algorithm_type", "qos_algorithm_params", "qos_supported_algorithms"],
};

/** The same per class, common ones included, as sets: looked up for every field of every record a filter reads. */
const NAMESPACED = new Map(Object.entries(NAMESPACED_BY_CLASS).map(([cls, fields]) => [cls, new Set([...NAMESPACED_COMMON, ...fields])]));
const NAMESPACED_ELSEWHERE = new Set(NAMESPACED_COMMON);

/** Whether `cls`'s API field `field` lives under a namespace in XAPI's database. */
function namespaced(cls: string, field: string): boolean {
  return (NAMESPACED.get(cls) ?? NAMESPACED_ELSEWHERE).has(field);
}
