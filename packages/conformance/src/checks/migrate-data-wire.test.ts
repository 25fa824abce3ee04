// MigrateData as another host receives it: plain JSON passes as a copy, anything JSON would change fails.
import { DEFAULT_MIGRATION_POLICY, type MigrateData } from "@virtkit/core";
import { describe, expect, it } from "vitest";
import { overTheWire } from "./migrate-data-wire.js";

const base: MigrateData = {
  sourceHost: "a",
  destHost: "b",
  policy: DEFAULT_MIGRATION_POLICY,
  plan: { scheme: "none", flags: [], params: {} },
  extra: { uri: "qemu+tcp://b/system", block: false, disks: 2 },
};

describe("overTheWire", () => {
  it("hands back an equal copy, not the object itself; an undefined field is dropped", () => {
    const data = { ...base, extra: { ...base.extra, gone: undefined as unknown as string } };
    const copy = overTheWire(data, "checkCanLiveMigrateDestination");
    expect(copy).not.toBe(data);
    expect(copy).toEqual({ ...base, extra: base.extra });
  });

  it("accepts one plain object referenced twice (JSON copies it), refuses a cycle", () => {
    const shared = { n: 1 };
    const dag = { ...base, plan: { ...base.plan, params: { a: shared, b: shared } } } as unknown as MigrateData;
    expect(overTheWire(dag, "step")).toEqual(dag);
    const cyclic: Record<string, unknown> = { ...base.extra };
    cyclic.self = cyclic;
    expect(() => overTheWire({ ...base, extra: cyclic } as unknown as MigrateData, "preLiveMigration")).toThrow(
      /preLiveMigration returned MigrateData that cannot cross to another host as JSON: MigrateData\.extra\.self refers back to itself/,
    );
  });

  it.each([
    ["a Date", new Date(0), /MigrateData\.extra\.x is a Date, not a plain object/],
    ["a Map", new Map(), /MigrateData\.extra\.x is a Map/],
    ["NaN", Number.NaN, /MigrateData\.extra\.x is NaN/],
    ["a bigint", 1n, /MigrateData\.extra\.x is a bigint/],
    ["a function", () => 1, /MigrateData\.extra\.x is a function/],
  ])("refuses %s, naming where it is", (_what, value, message) => {
    const data = { ...base, extra: { ...base.extra, x: value } } as unknown as MigrateData;
    expect(() => overTheWire(data, "checkCanLiveMigrateSource")).toThrow(message);
  });
});
