/**
 * A user's `--focus` / `--skip` pattern. A pattern that backtracks catastrophically (`^(\w+\s?)+!$`
 * over a scenario's title) would hold the thread for hours, and no timer, deadline or Ctrl-C handler
 * can run while a regular expression does. V8 can leave such a match to its linear-time engine once
 * backtracking passes a limit: switched on here, for the process, before the first user pattern is
 * compiled. Matches are unchanged; only patterns with back-references or look-arounds (which that
 * engine lacks) still backtrack.
 */
import { setFlagsFromString } from "node:v8";

let linearFallback = false;

/** Compiles `source` (throws SyntaxError when it is not a regular expression). */
export function userPattern(source: string): RegExp {
  if (!linearFallback) {
    setFlagsFromString("--enable-experimental-regexp-engine-on-excessive-backtracks");
    linearFallback = true;
  }
  return new RegExp(source);
}
