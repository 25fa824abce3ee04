/** For core's unit tests: what a check must refuse with. */
import { expect } from "vitest";
import { InvalidInputError } from "../errors.js";

/** Runs `fn` and returns the InvalidInputError it must throw (fails the test otherwise). */
export function refused(fn: () => unknown): InvalidInputError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(InvalidInputError);
    return e as InvalidInputError;
  }
  throw new Error("expected an InvalidInputError");
}
