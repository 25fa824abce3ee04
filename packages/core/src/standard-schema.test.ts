// A plugin's options schema may be any Standard Schema validator: zod 4, zod 3 (here through
// `zod/v3`, the zod 3 API zod 4 ships), or a hand-written one. This file also compiles under
// `tsc` (the typecheck script), which is the check that a zod 3 schema raises no TS2344.
import type { StandardSchemaV1 } from "@standard-schema/spec";
import { describe, expect, expectTypeOf, it } from "vitest";
import { z as z3 } from "zod/v3";
import { z as z4 } from "zod";
import { DriverLoadError, InvalidInputError } from "./errors.js";
import { missingPluginOptions, validatePluginManifest, validatePluginOptions } from "./plugin-loader.js";
import type { DriverPlugin, PluginOptions, PluginOptionsInput } from "./plugin.js";

function plugin<S extends StandardSchemaV1>(optionsSchema: S): DriverPlugin<S> {
  return {
    kind: "virtkit-driver",
    name: "std",
    version: "1.0.0",
    contractVersion: "^1.0.0",
    description: "fixture",
    optionsSchema,
    register(container, { token, options }) {
      container.register(token, { useValue: options as never });
    },
  };
}

/** A validator written by hand against the spec: `{ uri: string }`, path segments as objects. */
const handWritten: StandardSchemaV1<{ uri?: unknown }, { uri: string }> = {
  "~standard": {
    version: 1,
    vendor: "hand",
    validate(value) {
      const uri = (value as { uri?: unknown }).uri;
      if (typeof uri !== "string") return { issues: [{ message: "uri is required", path: [{ key: "uri" }] }] };
      return { value: { uri } };
    },
  },
};

describe("Standard Schema options", () => {
  it("takes a zod 3 schema: typed options, coercion, messages on the declared key", () => {
    const p = plugin(z3.object({ uri: z3.string(), timeout: z3.coerce.number().int().positive().optional() }).strict());
    expectTypeOf<PluginOptions<typeof p>>().toEqualTypeOf<{ uri: string; timeout?: number | undefined }>();
    expect(validatePluginManifest(p, "std")).toBe(p);
    expect(validatePluginOptions(p, { uri: "x://", timeout: "5" })).toEqual({ uri: "x://", timeout: 5 });
    expect(() => validatePluginOptions(p, { timeout: "5" })).toThrow(InvalidInputError);
    try {
      validatePluginOptions(p, { uri: "x://", timeout: "-1" });
    } catch (e) {
      expect((e as InvalidInputError).field).toBe("option.timeout");
    }
    expect(missingPluginOptions(p)).toEqual(["uri"]);
  });

  it("takes a zod 4 schema, with its input and output types", () => {
    const p = plugin(z4.strictObject({ n: z4.coerce.number().default(1) }));
    expectTypeOf<PluginOptions<typeof p>>().toEqualTypeOf<{ n: number }>();
    expectTypeOf<PluginOptionsInput<typeof p>>().toEqualTypeOf<{ n?: unknown }>();
    expect(validatePluginOptions(p, { n: "7" })).toEqual({ n: 7 });
    expect(validatePluginOptions(p)).toEqual({ n: 1 });
    expect(missingPluginOptions(p)).toEqual([]);
  });

  it("takes a hand-written validator and reads object path segments", () => {
    const p = plugin(handWritten);
    expect(validatePluginOptions(p, { uri: "a://b" })).toEqual({ uri: "a://b" });
    try {
      validatePluginOptions(p, {});
      throw new Error("accepted");
    } catch (e) {
      expect(e).toBeInstanceOf(InvalidInputError);
      // The key is not declared in a way virtkit can see, so it is not shown (it could be a user's key).
      expect((e as InvalidInputError).message).toContain("uri is required");
    }
    expect(missingPluginOptions(p)).toEqual(["uri"]);
  });

  it("refuses a validator that answers with a promise", () => {
    const asyncSchema: StandardSchemaV1 = {
      "~standard": { version: 1, vendor: "async", validate: async (value) => ({ value }) },
    };
    const e = (() => {
      try {
        validatePluginOptions(plugin(asyncSchema), {});
      } catch (err) {
        return err;
      }
    })();
    expect(e).toBeInstanceOf(DriverLoadError);
    expect((e as DriverLoadError).reason).toContain("asynchronously");
    expect(missingPluginOptions(plugin(asyncSchema))).toBeUndefined();
  });

  it("refuses a manifest whose schema is neither a Standard Schema nor zod-like", () => {
    const bad = { ...plugin(handWritten), optionsSchema: { "~standard": { version: 2, validate: () => ({}) } } };
    expect(() => validatePluginManifest(bad, "std")).toThrow(/Standard Schema validator/);
  });

  it("says nothing is missing for a refusal that is not about missing keys", () => {
    const p = plugin(z4.strictObject({ uri: z4.string().startsWith("x") }));
    expect(missingPluginOptions(p, { uri: "y" })).toBeUndefined();
  });
});
