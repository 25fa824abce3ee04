export { DriverDecorator } from "./driver-decorator.js";
export { BROKEN_VARIANTS } from "./broken-drivers.js";
export { DEPTH_VARIANTS } from "./broken-drivers-depth.js";
export { GAP_VARIANTS } from "./broken-drivers-gaps.js";
export type { BrokenVariant } from "./broken-drivers.js";
export { measureCatchRate, runAgainstVariant } from "./catch-rate.js";
export type { CatchRateReport, VariantVerdict } from "./catch-rate.js";
export type { DefectClass } from "./broken-drivers.js";
