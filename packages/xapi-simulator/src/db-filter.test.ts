// XAPI's filter language for get_all_records_where, as XAPI parses and evaluates it.
import { describe, expect, it } from "vitest";
import { matchesFilter, parseFilter } from "./db-filter.js";
import { XapiError } from "./errors.js";

const types = { name_label: "string", is_a_template: "bool", power_state: "enum vm_power_state", VCPUs_max: "int", tags: "string set", other_config: "(string -> string) map" };
const vm = { name_label: "web-1", is_a_template: false, power_state: "Running", VCPUs_max: 2, tags: ["a", "b'c"], other_config: { k: "v" } };
const match = (expr: string) => matchesFilter("VM", parseFilter(expr), vm, types);

describe("get_all_records_where's filter", () => {
  it("compares fields by their database text, named as the database names them", () => {
    expect(match('field "is_a_template" = "false"')).toBe(true);
    expect(match('field "is_a_template"="true"')).toBe(false);
    expect(match('field "name__label" = "web-1"')).toBe(true);
    expect(match('"Running" = field "power_state"')).toBe(true);
    expect(match('field "VCPUs__max" = "2"')).toBe(true);
    expect(match(`field "tags" = "('a' 'b\\'c')"`)).toBe(true);
    expect(match("field \"other_config\" = \"(('k' 'v'))\"")).toBe(true);
  });

  it("and/or bind alike left to right, not binds loosest, parentheses group", () => {
    expect(match("true and false or true")).toBe(true);
    expect(match("false or true and false")).toBe(false);
    // not takes everything after it: not (true and false)
    expect(match("not true and false")).toBe(true);
    expect(match("(not true) and false")).toBe(false);
    expect(match('false or not field "power_state" = "Halted"')).toBe(true);
  });

  it("an expression that does not parse is INVALID_VALUE [expr, why]; a field the class lacks is INTERNAL_ERROR", () => {
    for (const bad of ['field "a" =', 'field "a" == "b"', "true false", "(true", 'field "a" = "b', "yes", ""]) {
      const err = (() => {
        try {
          parseFilter(bad);
        } catch (e) {
          return e;
        }
        return undefined;
      })() as XapiError;
      expect(err, bad).toBeInstanceOf(XapiError);
      expect(err.code).toBe("INVALID_VALUE");
      expect(err.params[0]).toBe(bad);
    }
    expect(() => match('field "name_label" = "web-1"')).toThrow(/INTERNAL_ERROR/);
    expect(() => match('field "nope" = "x"')).toThrow(/INTERNAL_ERROR/);
    // The simulator's own bound on nesting (XAPI's parser grows its stack): refused, not a crash.
    expect(() => parseFilter("(".repeat(10_000) + "true" + ")".repeat(10_000))).toThrow(/INVALID_VALUE/);
  });

  it("evaluates a flat chain of any length without deep recursion, and names namespaced fields per class", () => {
    // Keywords may touch (XAPI's lexer splits "orfalse"): about 9,000 links within the 64 KiB bound.
    expect(match("false" + "orfalse".repeat(9_000) + "ortrue")).toBe(true);
    expect(match("true" + "andtrue".repeat(9_000) + "andfalse")).toBe(false);
    const metrics = { memory_free: 1024 };
    expect(matchesFilter("host_metrics", parseFilter('field "memory__free" = "1024"'), metrics, { memory_free: "int" })).toBe(true);
    expect(() => matchesFilter("host_metrics", parseFilter('field "memory_free" = "1024"'), metrics, { memory_free: "int" })).toThrow(/INTERNAL_ERROR/);
    // A host's memory_overhead is no namespace's (a VM's is).
    expect(matchesFilter("host", parseFilter('field "memory_overhead" = "0"'), { memory_overhead: 0 }, { memory_overhead: "int" })).toBe(true);
  });
});
