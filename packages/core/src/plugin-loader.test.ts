import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { DriverLoadError, InvalidInputError, OperationAbortedError, OperationTimeoutError } from "./errors.js";
import {
  loadDriverPlugin,
  nearestKey,
  parseOptionPairs,
  pluginCandidates,
  validatePluginManifest,
  validatePluginOptions,
} from "./plugin-loader.js";
import type { DriverPlugin } from "./plugin.js";

const ZOD_URL = pathToFileURL(join(dirname(createRequire(import.meta.url).resolve("zod")), "index.js")).href;

/** The source of a plugin module; `overrides` is spliced into the manifest object literal. */
function pluginSource(
  name: string,
  overrides = "",
  exportLine = "export const plugin = manifest; export default manifest;",
) {
  return `import { z } from ${JSON.stringify(ZOD_URL)};
const manifest = {
  kind: "virtkit-driver",
  name: ${JSON.stringify(name)},
  version: "1.2.3",
  contractVersion: "^1.0.0",
  description: "fixture",
  optionsSchema: z.strictObject({ uri: z.string().default("test:///default"), timeout: z.coerce.number().int().positive().optional() }),
  register(container, reg) { container.register(reg.token, { useValue: { name: ${JSON.stringify(name)}, options: reg.options } }); },
  ${overrides}
};
${exportLine}
`;
}

let root: string;
const write = (rel: string, content: string): string => {
  const file = join(root, rel);
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, content);
  return file;
};
const pkg = (dir: string, manifest: Record<string, unknown>) => write(`${dir}/package.json`, JSON.stringify(manifest));

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), "virtkit-loader-"));
  write("drivers/local.mjs", pluginSource("local"));
  write("drivers/default-only.js", pluginSource("defonly", "", "export default manifest;"));
  write("drivers/cjs-like.mjs", pluginSource("cjs", "", "export default { plugin: manifest };"));
  write("drivers/contract2.mjs", pluginSource("future", 'contractVersion: "^2.0.0",'));
  write("drivers/throws.mjs", 'throw new Error("boom at import");');
  write("drivers/nothing.mjs", "export const unrelated = 1;");
  write("drivers/never.mjs", "await new Promise(() => {});\nexport const plugin = {};");
  write("drivers/never-too.mjs", "await new Promise(() => {});\nexport const plugin = {};");
  write("drivers/driver.ts", "export {}");
  write("project/package.json", JSON.stringify({ name: "user-project", type: "module" }));
  // A short name known to virtkit, installed in the user's project with an import-only exports map.
  pkg("project/node_modules/@virtkit/driver-fake", {
    name: "@virtkit/driver-fake",
    type: "module",
    exports: { ".": { types: "./dist/index.d.ts", import: "./dist/index.js" } },
  });
  write("project/node_modules/@virtkit/driver-fake/dist/index.js", pluginSource("fake"));
  // An unknown short name found under the community prefix.
  pkg("project/node_modules/virtkit-driver-demo", { name: "virtkit-driver-demo", type: "module", main: "main.js" });
  write("project/node_modules/virtkit-driver-demo/main.js", pluginSource("demo"));
  // A scoped package with a subpath and a pattern export.
  pkg("project/node_modules/@acme/hv", {
    name: "@acme/hv",
    type: "module",
    exports: { ".": "./index.js", "./plugin": { node: { import: "./plugin.js" } }, "./drivers/*": "./lib/*.js" },
  });
  write("project/node_modules/@acme/hv/index.js", "export const notAPlugin = true;");
  write("project/node_modules/@acme/hv/plugin.js", pluginSource("acme"));
  write("project/node_modules/@acme/hv/lib/xen.js", pluginSource("acme-xen"));
  pkg("project/node_modules/unbuilt-driver", { name: "unbuilt-driver", exports: "./dist/index.js" });
  pkg("project/node_modules/require-only", { name: "require-only", exports: { require: "./index.cjs" } });
  write("project/node_modules/require-only/index.cjs", "module.exports = {};");
});

afterAll(() => rmSync(root, { recursive: true, force: true }));

async function loadError(spec: string, cwd = join(root, "project")): Promise<DriverLoadError> {
  try {
    await loadDriverPlugin(spec, { cwd });
  } catch (e) {
    expect(e).toBeInstanceOf(DriverLoadError);
    return e as DriverLoadError;
  }
  throw new Error(`expected ${spec} to fail`);
}

describe("pluginCandidates", () => {
  it("maps known short names, tries prefixes for unknown ones, keeps package names", () => {
    expect(pluginCandidates("fake")).toEqual(["@virtkit/driver-fake"]);
    expect(pluginCandidates("libvirt")).toEqual(["@virtkit/driver-libvirt"]);
    expect(pluginCandidates("xenapi")).toEqual(["@virtkit/driver-xenapi"]);
    expect(pluginCandidates("vbox")).toEqual(["@virtkit/driver-vbox", "virtkit-driver-vbox", "vbox"]);
    expect(pluginCandidates("@acme/hv/plugin")).toEqual(["@acme/hv/plugin"]);
  });
});

describe("loadDriverPlugin", () => {
  it("loads a known short name from the user's project (import-only exports)", async () => {
    const plugin = await loadDriverPlugin("fake", { cwd: join(root, "project") });
    expect(plugin).toMatchObject({ kind: "virtkit-driver", name: "fake", version: "1.2.3" });
  });

  it("finds the project's packages from a subdirectory", async () => {
    mkdirSync(join(root, "project/src/deep"), { recursive: true });
    expect((await loadDriverPlugin("demo", { cwd: join(root, "project/src/deep") })).name).toBe("demo");
  });

  it("tries virtkit-driver-<name> for an unknown short name, with main", async () => {
    expect((await loadDriverPlugin("demo", { cwd: join(root, "project") })).name).toBe("demo");
  });

  it("loads a full package name, a scoped subpath and a pattern export", async () => {
    const cwd = join(root, "project");
    expect((await loadDriverPlugin("virtkit-driver-demo", { cwd })).name).toBe("demo");
    expect((await loadDriverPlugin("@acme/hv/plugin", { cwd })).name).toBe("acme");
    expect((await loadDriverPlugin("@acme/hv/drivers/xen", { cwd })).name).toBe("acme-xen");
  });

  it("searches extra paths after cwd", async () => {
    const plugin = await loadDriverPlugin("fake", { cwd: root, paths: [join(root, "project")] });
    expect(plugin.name).toBe("fake");
  });

  it("loads a file by absolute path, relative path, bare file name and file URL with a query", async () => {
    const abs = join(root, "drivers/local.mjs");
    expect((await loadDriverPlugin(abs)).name).toBe("local");
    expect((await loadDriverPlugin("./drivers/local.mjs", { cwd: root })).name).toBe("local");
    expect((await loadDriverPlugin("local.mjs", { cwd: join(root, "drivers") })).name).toBe("local");
    expect((await loadDriverPlugin(`${pathToFileURL(abs).href}?fresh=1`)).name).toBe("local");
  });

  it("accepts a default export and a CommonJS-style { plugin } default", async () => {
    expect((await loadDriverPlugin(join(root, "drivers/default-only.js"))).name).toBe("defonly");
    expect((await loadDriverPlugin(join(root, "drivers/cjs-like.mjs"))).name).toBe("cjs");
  });

  it("refuses a plugin built for another contract, saying both versions", async () => {
    const err = await loadError(join(root, "drivers/contract2.mjs"));
    expect(err.reason).toBe("built for contract ^2.0.0, this virtkit implements 1.0.0");
    expect(err.message).toContain("built for contract ^2.0.0, this virtkit implements 1.0.0");
  });

  it.each([
    [
      "an unknown short name",
      "nosuch",
      /not found \(tried @virtkit\/driver-nosuch, virtkit-driver-nosuch, nosuch from /,
    ],
    ["an unknown package", "@acme/nosuch", /not found/],
    ["a missing file", "./drivers/missing.mjs", /no such file/],
    ["a .ts file with no manifest (TypeScript is loaded, then checked)", "./drivers/driver.ts", /exports no plugin manifest/],
    ["a module that throws", "./drivers/throws.mjs", /importing .* failed: boom at import/],
    ["a module with no manifest", "./drivers/nothing.mjs", /exports no plugin manifest/],
    ["a package that does not export the subpath", "@acme/hv/secret", /does not export "\.\/secret"/],
    ["a package whose root is not a plugin", "@acme/hv", /exports no plugin manifest|invalid plugin manifest/],
    ["an unbuilt package", "unbuilt-driver", /does not exist \(is the package built\?\)/],
    ["a require-only package", "require-only", /does not export "\."/],
    ["an empty spec", " ", /empty driver spec/],
    ["a malformed spec", "Not A Package!", /not a short name, a package name or a path/],
    ["a file URL with an encoded slash", "file:///tmp/a%2Fb.js", /not a valid file URL/],
  ])("refuses %s", async (_label, spec, reason) => {
    const cwd = spec.startsWith("./") ? root : join(root, "project");
    const err = await loadError(spec, cwd);
    expect(err.reason).toMatch(reason);
    // A spec that names nothing (a typo) is told apart by a field, not by the reason's wording.
    expect(err.notFound).toBe(["nosuch", "@acme/nosuch", "./drivers/missing.mjs"].includes(spec));
  });

  it("keeps the import failure as the cause", async () => {
    const err = await loadError("./drivers/throws.mjs", root);
    expect((err.cause as Error).message).toBe("boom at import");
  });

  it("stops on an aborted signal", async () => {
    const controller = new AbortController();
    controller.abort();
    await expect(
      loadDriverPlugin("fake", { cwd: join(root, "project"), signal: controller.signal }),
    ).rejects.toBeInstanceOf(OperationAbortedError);
  });

  it("gives up on a module whose top-level await never settles at timeoutMs, naming its file", async () => {
    const t0 = Date.now();
    const err = await loadDriverPlugin("./drivers/never.mjs", { cwd: root, timeoutMs: 200 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OperationTimeoutError);
    expect((err as Error).message).toBe(`loading the driver plugin ${join(root, "drivers", "never.mjs")} did not finish within 200 ms`);
    expect(Date.now() - t0).toBeLessThan(5_000);
    await expect(loadDriverPlugin("./drivers/local.mjs", { cwd: root, timeoutMs: 0 })).rejects.toBeInstanceOf(InvalidInputError);
  });

  it("an abort while a module hangs stops the wait (and its deadline) at once", async () => {
    const controller = new AbortController();
    const loading = loadDriverPlugin("./drivers/never-too.mjs", { cwd: root, timeoutMs: 60_000, signal: controller.signal });
    setTimeout(() => controller.abort(new Error("Ctrl-C")), 50);
    await expect(loading).rejects.toBeInstanceOf(OperationAbortedError);
  });
});

describe("validatePluginManifest", () => {
  const good = {
    kind: "virtkit-driver",
    name: "x",
    version: "0.1.0",
    contractVersion: ">=1.0.0 <2",
    description: "d",
    optionsSchema: z.object({}),
    register: () => undefined,
  };
  it("accepts a good manifest", () => {
    expect(validatePluginManifest(good, "x")).toBe(good);
  });
  it.each([
    [{ kind: "driver" }, 'kind must be "virtkit-driver"'],
    [{ name: "" }, "name must be"],
    [{ name: "has space" }, "name must be"],
    [{ version: "1.0" }, "version must be a semver version"],
    [{ version: undefined }, "version must be a semver version"],
    [{ contractVersion: "banana" }, "contractVersion must be a semver range"],
    [{ description: 3 }, "description must be a string"],
    [{ optionsSchema: undefined }, "optionsSchema is missing"],
    [{ optionsSchema: {} }, "optionsSchema must be a Standard Schema validator"],
    [{ register: "nope" }, "register must be a function"],
    [{ conformanceEnvironment: {} }, "conformanceEnvironment, when given, must be a function"],
  ])("refuses %j", (patch, reason) => {
    try {
      validatePluginManifest({ ...good, ...patch }, "x");
      throw new Error("accepted");
    } catch (e) {
      expect(e).toBeInstanceOf(DriverLoadError);
      expect((e as DriverLoadError).reason).toContain("invalid plugin manifest");
      expect((e as DriverLoadError).reason).toContain(reason);
    }
  });
  it("lists every problem at once", () => {
    expect(() => validatePluginManifest({ ...good, version: "x", register: 1 }, "x")).toThrow(
      /version must be a semver version; register must be a function/,
    );
  });
  it.each([null, 5, "plugin"])("refuses %j", (v) => {
    expect(() => validatePluginManifest(v, "x")).toThrow(DriverLoadError);
  });
});

describe("parseOptionPairs", () => {
  it("splits at the first = and keeps the rest", () => {
    expect(parseOptionPairs(["uri=test:///default", "timeout=5", "query=a=b", "empty="])).toEqual({
      uri: "test:///default",
      timeout: "5",
      query: "a=b",
      empty: "",
    });
    expect(parseOptionPairs([])).toEqual({});
  });
  it.each([
    [["novalue"], "option #1 must be key=value"],
    [["=x"], "option #1 has an empty key"],
    [["uri=a", "hunter2key=1", "hunter2key=2"], "option #3 repeats the key of option #2"],
    [["9hunter2=1"], "option #1 has a malformed key (8 characters): keys start with a letter"],
    [["__proto__=1"], "option #1 has a malformed key (9 characters): keys start with a letter"],
    [["uri=x", "hunter2 key=1"], "option #2 has a malformed key (11 characters): keys start with a letter"],
  ])("refuses %j by position, without naming the key", (pairs, reason) => {
    try {
      parseOptionPairs(pairs);
      throw new Error("accepted");
    } catch (e) {
      expect(e).toBeInstanceOf(InvalidInputError);
      expect((e as InvalidInputError).field).toBe("option");
      expect((e as InvalidInputError).reason).toContain(reason);
      expect((e as Error).message).not.toMatch(/hunter2|proto/);
    }
  });
  it("does not echo a malformed key that may be a credential (a URI given without uri=)", () => {
    try {
      parseOptionPairs(["qemu+tcp://admin:hunter2@host/system?x=1"]);
      throw new Error("accepted");
    } catch (e) {
      expect(e).toBeInstanceOf(InvalidInputError);
      expect((e as InvalidInputError).field).toBe("option");
      expect((e as Error).message).toMatch(/option #1 has a malformed key/);
      expect((e as Error).message).not.toContain("hunter2");
    }
  });
  it("never echoes a value", () => {
    expect(() => parseOptionPairs(["password=hunter2", "password=hunter2"])).toThrow(/^(?!.*hunter2)/s);
    try {
      parseOptionPairs(["hunter2"]);
    } catch (e) {
      expect((e as Error).message).not.toContain("hunter2");
    }
  });
});

describe("validatePluginOptions", () => {
  const manifest = (schema: z.ZodType): DriverPlugin =>
    ({
      kind: "virtkit-driver",
      name: "opt",
      version: "1.0.0",
      contractVersion: "^1.0.0",
      description: "",
      optionsSchema: schema,
      register: () => undefined,
    }) as DriverPlugin;
  const loose = manifest(
    z.object({ uri: z.string().default("test:///default"), timeout: z.coerce.number().int().positive().optional() }),
  );

  it("coerces and applies defaults", () => {
    expect(validatePluginOptions(loose, parseOptionPairs(["timeout=5"]))).toEqual({
      uri: "test:///default",
      timeout: 5,
    });
    expect(validatePluginOptions(loose)).toEqual({ uri: "test:///default" });
  });

  it("refuses unknown keys even for a non-strict schema, by position and length, listing the known keys", () => {
    try {
      validatePluginOptions(loose, { uri: "x", hunter2secret: "1" });
      throw new Error("accepted");
    } catch (e) {
      expect(e).toBeInstanceOf(InvalidInputError);
      expect((e as InvalidInputError).field).toBe("option");
      expect((e as Error).message).toBe(
        "Invalid option: unknown option key #2 (13 characters); known keys of driver opt: uri, timeout",
      );
    }
  });

  it("suggests the declared key a mistyped one most likely meant, naming only the declared key", () => {
    const opts = manifest(z.object({ timeoutMs: z.coerce.number().optional(), uri: z.string().optional(), insecure: z.boolean().optional() }));
    const message = (raw: Record<string, string>): string => {
      try {
        validatePluginOptions(opts, raw);
      } catch (e) {
        return (e as Error).message;
      }
      throw new Error("accepted");
    };
    expect(message({ timeoutMS: "5" })).toBe(
      "Invalid option: unknown option key #1 (9 characters); did you mean timeoutMs?; known keys of driver opt: timeoutMs, uri, insecure",
    );
    expect(message({ timoutMs: "5" })).toContain("did you mean timeoutMs?");
    expect(message({ insceure: "true" })).toContain("did you mean insecure?");
    // Nothing close: no guess (and never the typed text).
    expect(message({ hunter2secret: "1" })).not.toContain("did you mean");
    expect(message({ url: "x" })).toContain("did you mean uri?");
    expect(message({ colour: "red" })).not.toContain("did you mean");
    expect(nearestKey("ur", ["uri"])).toBeUndefined();
    expect(nearestKey("URI", ["uri"])).toBe("uri");
  });

  it("refuses unknown keys reported by a strict schema that is not a plain object, without naming them", () => {
    const strict = manifest(z.strictObject({ a: z.string().optional() }).transform((o) => o));
    try {
      validatePluginOptions(strict, { hunter2secret: "1" });
      throw new Error("accepted");
    } catch (e) {
      expect(e).toBeInstanceOf(InvalidInputError);
      expect((e as InvalidInputError).field).toBe("option");
      expect((e as Error).message).toMatch(/unknown option key #1 \(13 characters\)$/);
    }
  });

  it("names no key the schema does not declare, even in a record schema's message", () => {
    const record = manifest(
      z.record(z.string(), z.string().min(3, { error: (iss) => `too short under ${String(iss.path?.[0] ?? "?")}` })),
    );
    try {
      validatePluginOptions(record, { "hunter2secret.example": "x" });
      throw new Error("accepted");
    } catch (e) {
      expect(e).toBeInstanceOf(InvalidInputError);
      expect((e as InvalidInputError).field).toBe("option");
      expect((e as Error).message).not.toContain("hunter2");
    }
  });

  it.each([
    [{ timeout: "abc" }, "option.timeout"],
    [{ timeout: "-1" }, "option.timeout"],
    [{ uri: 5 }, "option.uri"],
  ])("maps schema errors to option.<key>: %j", (raw, field) => {
    try {
      validatePluginOptions(loose, raw);
      throw new Error("accepted");
    } catch (e) {
      expect(e).toBeInstanceOf(InvalidInputError);
      expect((e as InvalidInputError).field).toBe(field);
      expect((e as InvalidInputError).reason.length).toBeGreaterThan(0);
    }
  });

  it("refuses non-object options", () => {
    expect(() => validatePluginOptions(loose, ["a=1"])).toThrow(InvalidInputError);
    expect(() => validatePluginOptions(loose, null)).toThrow(InvalidInputError);
  });

  it("does not echo a refused secret value", () => {
    const withPassword = manifest(z.strictObject({ password: z.string().min(12) }));
    try {
      validatePluginOptions(withPassword, { password: "hunter2" });
      throw new Error("accepted");
    } catch (e) {
      expect((e as InvalidInputError).field).toBe("option.password");
      expect((e as Error).message).not.toContain("hunter2");
    }
  });

  it("scrubs a secret value a plugin's own message echoes", () => {
    const echoing = manifest(
      z.strictObject({
        password: z.string().refine((v) => v.length >= 12, { error: (iss) => `"${String(iss.input)}" is too short` }),
        uri: z.string().refine((v) => v.startsWith("xen"), { error: (iss) => `${String(iss.input)} is not a xen URI` }),
      }),
    );
    for (const [raw, field] of [
      [{ password: "hunter2" }, "option.password"],
      [{ password: "correct-horse-battery", uri: "https://root:hunter2@xen-1/api?token=s3cr3tTok" }, "option.uri"],
    ] as const) {
      try {
        validatePluginOptions(echoing, raw);
        throw new Error("accepted");
      } catch (e) {
        expect(e).toBeInstanceOf(InvalidInputError);
        expect((e as InvalidInputError).field).toBe(field);
        expect((e as Error).message).toContain("***");
        expect((e as Error).message).not.toMatch(/hunter2|s3cr3tTok/);
      }
    }
  });

  it("turns a schema that cannot run synchronously into a DriverLoadError", () => {
    const asyncSchema = manifest(z.object({ a: z.string().refine(async () => true) }));
    expect(() => validatePluginOptions(asyncSchema, { a: "x" })).toThrow(DriverLoadError);
  });
});
