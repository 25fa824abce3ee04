import { describe, expect, it } from "vitest";
import { InvalidInputError } from "./errors.js";
import { PASSWORD_GROUPS, generatePassword } from "./password.js";
import { isSecret } from "./secret.js";

describe("generatePassword", () => {
  it("returns a Secret of 20 characters by default, printing as ***", () => {
    const p = generatePassword();
    expect(isSecret(p)).toBe(true);
    expect(p.length).toBe(20);
    expect(String(p)).toBe("***");
    expect(JSON.stringify({ p })).toBe('{"p":"***"}');
  });

  it.each([8, 12, 64, 1024])("honours length %i and uses every group", (n) => {
    const raw = generatePassword(n).reveal();
    expect(raw).toHaveLength(n);
    for (const group of PASSWORD_GROUPS) expect([...raw].some((c) => group.includes(c))).toBe(true);
    expect([...raw].every((c) => PASSWORD_GROUPS.join("").includes(c))).toBe(true);
  });

  it.each([0, 7, 1025, 10.5, Number.NaN])("refuses length %s", (n) => {
    expect(() => generatePassword(n)).toThrow(InvalidInputError);
  });

  it("does not repeat and spreads over the alphabet", () => {
    const seen = new Set<string>();
    const counts = new Map<string, number>();
    for (let i = 0; i < 2000; i++) {
      const raw = generatePassword().reveal();
      seen.add(raw);
      for (const c of raw) counts.set(c, (counts.get(c) ?? 0) + 1);
    }
    expect(seen.size).toBe(2000);
    const alphabet = PASSWORD_GROUPS.join("");
    expect(counts.size).toBe(alphabet.length);
    // 40000 draws over 66 symbols: ~600 each; a biased generator would leave some far off.
    for (const n of counts.values()) {
      expect(n).toBeGreaterThan(350);
      expect(n).toBeLessThan(1100);
    }
  });
});
