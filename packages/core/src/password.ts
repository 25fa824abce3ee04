/**
 * Admin password generation, Nova's `utils.generate_password` made stronger: drawn with
 * `crypto.randomInt` (rejection sampling, so no modulo bias), at least one character of every
 * group, 20 characters from a 66-symbol alphabet by default (about 120 bits).
 */
import { randomInt } from "node:crypto";
import { InvalidInputError } from "./errors.js";
import { Secret } from "./secret.js";

/**
 * The character groups. Like Nova's, they leave out look-alikes (0/O, 1/l/I); the symbols avoid
 * quotes, backslash, `$`, `:` and whitespace, which agents and shells mangle.
 */
export const PASSWORD_GROUPS: readonly string[] = Object.freeze([
  "23456789",
  "ABCDEFGHJKLMNPQRSTUVWXYZ",
  "abcdefghijkmnopqrstuvwxyz",
  "!#+-.=@_~",
]);

const ALPHABET = PASSWORD_GROUPS.join("");

/** Shortest and longest length accepted by {@link generatePassword}. */
export const PASSWORD_LENGTH = Object.freeze({ min: 8, max: 1024 });

function pick(chars: string): string {
  return chars[randomInt(chars.length)] as string;
}

/** A random password of `length` characters (8..1024, default 20), as a {@link Secret}. */
export function generatePassword(length = 20): Secret {
  if (!Number.isInteger(length) || length < PASSWORD_LENGTH.min || length > PASSWORD_LENGTH.max) {
    throw new InvalidInputError(
      "password.length",
      `must be an integer from ${PASSWORD_LENGTH.min} to ${PASSWORD_LENGTH.max}`,
    );
  }
  // One from each group first, the rest from the whole alphabet, then an unbiased shuffle so the
  // guaranteed characters are not always in front.
  const chars = PASSWORD_GROUPS.map(pick);
  while (chars.length < length) chars.push(pick(ALPHABET));
  for (let i = chars.length - 1; i > 0; i--) {
    const j = randomInt(i + 1);
    [chars[i], chars[j]] = [chars[j] as string, chars[i] as string];
  }
  return new Secret(chars.join(""));
}
