/** Reporter name → class, vitest's `ReportersMap` shape. */
import { HumanReporter } from "./human.js";
import { JsonReporter } from "./json.js";
import { JunitReporter } from "./junit.js";
import { TapReporter } from "./tap.js";
import type { ConformanceReporter } from "./reporter.js";

/** Every built-in reporter by name. */
export const REPORTERS = {
  human: HumanReporter,
  json: JsonReporter,
  junit: JunitReporter,
  tap: TapReporter,
} as const;

/** A built-in reporter name. */
export type ReporterName = keyof typeof REPORTERS;

/** A reporter by name (the human one without live output). */
export function createReporter(name: ReporterName): ConformanceReporter {
  return new REPORTERS[name]();
}
