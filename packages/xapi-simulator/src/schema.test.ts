// Holds the simulator to XAPI's own datamodel (fixtures/xapi-datamodel.json, extracted from
// xapi-project/xen-api): every class, field, message signature and error code it uses must be
// XAPI's, with the same types and parameter names, so the simulator cannot speak a dialect.
import { readFileSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { CLASS_FIELDS, fieldTypes, isWritable } from "./schema.js";
import type { XapiClass } from "./schema.js";
import { VM_OPERATIONS } from "./vm-lifecycle.js";
import { buildRegistry } from "./world.js";

interface Fixture {
  source: { repository: string; commit: string };
  classes: Record<string, { fields: Record<string, { type: string; qualifier: string }>; messages: Record<string, { params: { name: string; type: string }[]; result: string }[]>; enums: Record<string, string[]> }>;
  errors: Record<string, string[] | null>;
}

const fixture = JSON.parse(readFileSync(new URL("../fixtures/xapi-datamodel.json", import.meta.url), "utf8")) as Fixture;

/**
 * Where XAPI's code sends other parameters than datamodel_errors.ml declares, the simulator does
 * what the code does. Each entry names the source that shows it.
 */
const PARAM_EXCEPTIONS: Record<string, string> = {
  SESSION_AUTHENTICATION_FAILED: "ocaml/xapi/xapi_session.ml raises it with [uname; msg]",
  VM_IS_TEMPLATE: "ocaml/xapi/xapi_vm_lifecycle.ml check_template raises it with [ref_str; operation]",
  XENAPI_PLUGIN_FAILURE: "python3/examples/XenAPIPlugin.py dispatch reports [method, exception class, message]",
};

/** Codes that reach a client without being XAPI's own: a dom0 plugin's failure, passed through. */
const FOREIGN_CODES: Record<string, string> = {
  UNKNOWN_XENAPI_PLUGIN_FUNCTION: "python3/examples/XenAPIPlugin.py dispatch, for a function the plugin lacks",
};

describe("schema against XAPI's datamodel", () => {
  it("names its source commit", () => {
    expect(fixture.source.repository).toBe("https://github.com/xapi-project/xen-api");
    expect(fixture.source.commit).toMatch(/^[0-9a-f]{40}$/);
  });

  for (const [cls, fields] of Object.entries(CLASS_FIELDS)) {
    it(`class ${cls}: every field exists with XAPI's type and writability`, () => {
      const model = fixture.classes[cls];
      expect(model, `class ${cls}`).toBeDefined();
      for (const field of Object.keys(fields)) {
        const f = model?.fields[field];
        expect(f, `${cls}.${field}`).toBeDefined();
        expect(fieldTypes(cls)?.[field], `${cls}.${field} type`).toBe(f?.type);
        expect(isWritable(cls as XapiClass, field), `${cls}.${field} RW`).toBe(f?.qualifier === "RW");
      }
    });
  }

  it("every message the simulator answers is XAPI's, with its parameter names, types and result", () => {
    const problems: string[] = [];
    for (const [name, def] of buildRegistry()) {
      // XAPI's database layer adds get_all_records_where(session, expr) to every class beside
      // get_all_records; the datamodel extraction lists only the idl's own messages.
      if (def.name === "get_all_records_where") {
        const base = fixture.classes[def.cls]?.messages.get_all_records;
        if (!base || base[0]?.result !== def.result || JSON.stringify(def.params) !== JSON.stringify([["expr", "string"]])) {
          problems.push(`${name}: not get_all_records' result with (expr string)`);
        }
        continue;
      }
      const sigs = fixture.classes[def.cls]?.messages[def.name];
      if (!sigs) {
        problems.push(`${name}: no such message`);
        continue;
      }
      const ours = [...(def.noSession ? [] : [["session_id", "session ref"]]), ...def.params];
      const match = sigs.some(
        (sig) =>
          sig.params.length === ours.length &&
          sig.params.every((p, i) => p.name === ours[i]?.[0] && p.type === ours[i]?.[1]) &&
          (def.result === "event batch" ? sig.result.includes("event batch") : sig.result === def.result),
      );
      if (!match) problems.push(`${name}: ${JSON.stringify(ours)} -> ${def.result} vs ${JSON.stringify(sigs)}`);
    }
    expect(problems).toEqual([]);
  });

  it("answers every generated accessor XAPI has for the fields it holds", () => {
    const registry = buildRegistry();
    // XAPI messages on held fields the simulator leaves out, each with the reason.
    const notSimulated: Record<string, string> = {
      "VM.set_suspend_VDI": "suspend images are created and destroyed by suspend/resume only",
      "VM.set_bios_strings": "BIOS strings are not simulated",
    };
    const missing: string[] = [];
    for (const [cls, fields] of Object.entries(CLASS_FIELDS)) {
      const messages = fixture.classes[cls]?.messages ?? {};
      for (const field of Object.keys(fields)) {
        for (const name of [`get_${field}`, `set_${field}`, `add_to_${field}`, `remove_from_${field}`, `add_${field}`, `remove_${field}`]) {
          if (messages[name] && !registry.has(`${cls}.${name}`) && !notSimulated[`${cls}.${name}`]) missing.push(`${cls}.${name}`);
        }
      }
      for (const name of ["get_record", "get_by_uuid", "get_all", "get_all_records", "get_by_name_label"]) {
        if (messages[name] && !registry.has(`${cls}.${name}`)) missing.push(`${cls}.${name}`);
      }
    }
    expect(missing).toEqual([]);
  });

  it("the VM operations it computes are XAPI's vm_operations", () => {
    const ops = fixture.classes.VM?.enums.vm_operations ?? [];
    for (const op of VM_OPERATIONS) expect(ops).toContain(op);
    expect(fixture.classes.task?.enums.task_status_type).toEqual(["pending", "success", "failure", "cancelling", "cancelled"]);
    expect(fixture.classes.VM?.enums.vm_power_state).toEqual(["Halted", "Paused", "Running", "Suspended"]);
  });

  it("every error code it raises is XAPI's, with XAPI's number of parameters", () => {
    const dir = new URL(".", import.meta.url).pathname;
    const files: string[] = [];
    const walk = (d: string): void => {
      for (const f of readdirSync(d)) {
        const p = join(d, f);
        if (statSync(p).isDirectory()) walk(p);
        else if (f.endsWith(".ts") && !f.endsWith(".test.ts") && !p.includes("/testing/")) files.push(p);
      }
    };
    walk(dir);
    const problems: string[] = [];
    let seen = 0;
    for (const file of files) {
      const src = readFileSync(file, "utf8");
      for (const m of src.matchAll(/XapiError\("([A-Z0-9_]+)"(\s*,\s*\[)?/g)) {
        seen++;
        const code = m[1] ?? "";
        if (FOREIGN_CODES[code]) continue;
        if (!(code in fixture.errors)) {
          problems.push(`${file}: ${code} is not a XAPI error`);
          continue;
        }
        const declared = fixture.errors[code];
        if (!m[2] || declared === null || declared === undefined || PARAM_EXCEPTIONS[code]) continue;
        const count = countElements(src, (m.index ?? 0) + m[0].length);
        if (count !== undefined && count !== declared.length) problems.push(`${file}: ${code} with ${count} params, XAPI declares ${JSON.stringify(declared)}`);
      }
    }
    expect(seen).toBeGreaterThan(40);
    expect(problems).toEqual([]);
    for (const code of Object.keys(PARAM_EXCEPTIONS)) expect(fixture.errors[code]).toBeDefined();
  });
});

/** Top-level elements of the array literal starting at `start` (just after "["), or undefined for a spread. */
function countElements(src: string, start: number): number | undefined {
  let depth = 0;
  let count = 0;
  let any = false;
  for (let i = start; i < src.length; i++) {
    const c = src[i];
    if (c === "'" || c === '"' || c === "`") {
      const end = skipString(src, i);
      i = end;
      any = true;
      continue;
    }
    if (c === "(" || c === "[" || c === "{") depth++;
    else if (c === ")" || c === "}") depth--;
    else if (c === "]") {
      if (depth === 0) return any ? count + 1 : 0;
      depth--;
    } else if (c === "," && depth === 0) {
      count++;
      any = false;
      continue;
    } else if (c === "." && src.startsWith("...", i) && depth === 0) return undefined;
    if (c && !/\s/.test(c)) any = true;
  }
  return undefined;
}

function skipString(src: string, i: number): number {
  const q = src[i];
  for (let j = i + 1; j < src.length; j++) {
    if (src[j] === "\\") j++;
    else if (q === "`" && src.startsWith("${", j)) {
      let d = 1;
      j += 2;
      while (j < src.length && d > 0) {
        if (src[j] === "{") d++;
        else if (src[j] === "}") d--;
        j++;
      }
      j--;
    } else if (src[j] === q) return j;
  }
  return src.length;
}
