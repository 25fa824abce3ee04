export { HumanReporter } from "./human.js";
export type { HumanReporterOptions } from "./human.js";
export { JsonReporter } from "./json.js";
export { JunitReporter, xmlEscape } from "./junit.js";
export { TapReporter } from "./tap.js";
export { REPORTERS, createReporter } from "./registry.js";
export type { ReporterName } from "./registry.js";
export type { ConformanceReporter, WriteFn } from "./reporter.js";
