// The kit's instances are frozen copies: a driver writing into one fails there, and the failure
// says why; what is no plain data (a Secret) is passed through as it is.
import { Secret } from "@virtkit/core";
import { describe, expect, it } from "vitest";
import { frozenCopy, frozenInputNote, withoutUndefined } from "./frozen-input.js";

describe("frozenCopy", () => {
  it("copies and freezes every plain object and array, leaving the original writable", () => {
    const original = { flavor: { name: "m1" }, imageMeta: { properties: { os_type: "linux" } }, tags: ["a", { b: 1 }] };
    const copy = frozenCopy(original);
    expect(copy).toEqual(original);
    expect(copy).not.toBe(original);
    for (const o of [copy, copy.flavor, copy.imageMeta, copy.imageMeta.properties, copy.tags, copy.tags[1]]) expect(Object.isFrozen(o)).toBe(true);
    original.flavor.name = "m2";
    expect(copy.flavor.name).toBe("m1");
  });

  it("passes what is not plain data through untouched", () => {
    const secret = new Secret("pw");
    const copy = frozenCopy({ secret, when: new Date(0) });
    expect(copy.secret).toBe(secret);
    expect(Object.isFrozen(secret)).toBe(false);
    expect(copy.when).toBeInstanceOf(Date);
  });
});

describe("frozenInputNote", () => {
  it("names a write, an added field and a delete on a frozen input, and nothing else", () => {
    const inst = frozenCopy({ name: "x", imageMeta: { properties: {} as Record<string, unknown> } });
    const attempts = [
      () => ((inst as { name: string }).name = "y"),
      () => (inst.imageMeta.properties.hw_disk_bus = "virtio"),
      () => delete (inst as { name?: string }).name,
    ];
    for (const attempt of attempts) {
      let err: unknown;
      try {
        attempt();
      } catch (e) {
        err = e;
      }
      expect(frozenInputNote(err)).toMatch(/the driver wrote into an input the kit froze/);
    }
    // Wrapped by a driver's error map as the cause of its own error: still named.
    let wrote: unknown;
    try {
      (inst as { name: string }).name = "y";
    } catch (e) {
      wrote = e;
    }
    expect(frozenInputNote(new Error("libvirt spawn failed", { cause: wrote }))).toMatch(/wrote into an input the kit froze/);
    // A function's or a string's read-only property is no frozen input of the kit's.
    for (const other of [() => Object.defineProperty(function f() {}, "name", { writable: false }) && ((function f() {}) as { name: string }).name, () => (("abc" as unknown as string[])[0] = "x")]) {
      try {
        other();
      } catch (e) {
        expect(frozenInputNote(e)).toBeUndefined();
      }
    }
    expect(frozenInputNote(new TypeError("x is not a function"))).toBeUndefined();
    expect(frozenInputNote(new Error("read-only property"))).toBeUndefined();
  });
});

describe("withoutUndefined", () => {
  it("drops the top-level fields given as undefined", () => {
    expect(withoutUndefined({ a: 1, b: undefined, c: { d: undefined } })).toEqual({ a: 1, c: { d: undefined } });
    expect("b" in withoutUndefined({ a: 1, b: undefined })).toBe(false);
  });
});
