/**
 * Runs the suite against the healthy fake and every broken variant, and says which variants were
 * caught (at least one scenario failed) and by which scenarios. Used by the catch test and bench.
 */
import { forEachLimited } from "../limited.js";
import { computeServiceFactory } from "../compute-service-adapter.js";
import { fakeEnvironment } from "../environments/fake-environment.js";
import { runConformance } from "../runner.js";
import type { AdminPasswordServiceFactory } from "../scenario.js";
import type { RunReport } from "../types.js";
import { BROKEN_VARIANTS, type BrokenVariant, type DefectClass } from "./broken-drivers.js";

/** The verdict on one broken variant. */
export interface VariantVerdict {
  readonly name: string;
  readonly defect: string;
  readonly defectClass?: DefectClass;
  /** At least one scenario the healthy fake passes failed. */
  readonly caught: boolean;
  /** Failed scenarios (leaving out those the healthy fake fails too), with reasons. */
  readonly failedBy: readonly { readonly id: string; readonly reason: string }[];
  /** At least one of the expected scenarios failed. */
  readonly caughtWhereExpected: boolean;
}

/** The whole catch-rate run. */
export interface CatchRateReport {
  readonly healthy: RunReport;
  /** Scenarios the healthy fake fails: a variant failing them too has not been told apart by them. */
  readonly healthyFailures: readonly string[];
  readonly verdicts: readonly VariantVerdict[];
  readonly caught: number;
  readonly total: number;
  /** Caught / total per defect class (variants without a class are left out). */
  readonly byClass: Readonly<Partial<Record<DefectClass, { readonly caught: number; readonly total: number }>>>;
  readonly durationMs: number;
}

function serviceFor(variant: BrokenVariant | undefined): AdminPasswordServiceFactory {
  const base = computeServiceFactory();
  if (!variant?.wrapService) return base;
  const wrap = variant.wrapService;
  return async (driver, env) => wrap(await base(driver, env));
}

/** Runs the suite against one variant (or the healthy fake when `variant` is undefined). */
export function runAgainstVariant(variant: BrokenVariant | undefined, parallel = 4): Promise<RunReport> {
  return runConformance({
    driver: { name: variant ? `fake+${variant.name}` : "fake" },
    environment: fakeEnvironment(variant?.wrap ? { wrapDriver: variant.wrap } : {}),
    service: serviceFor(variant),
    parallel,
    level: "MAY",
  });
}

/** Runs the healthy fake and every variant (`concurrency` variants at a time). */
export async function measureCatchRate(
  variants: readonly BrokenVariant[] = BROKEN_VARIANTS,
  concurrency = 4,
): Promise<CatchRateReport> {
  const t0 = performance.now();
  const healthy = await runAgainstVariant(undefined);
  const healthyFailures = new Set(healthy.results.filter((r) => r.status === "fail").map((r) => r.id));
  const verdicts: VariantVerdict[] = new Array(variants.length);
  await forEachLimited(variants, concurrency, async (v, i) => {
    const report = await runAgainstVariant(v, 2);
    const failed = report.results.filter((r) => r.status === "fail" && !healthyFailures.has(r.id));
    verdicts[i] = {
      name: v.name,
      defect: v.defect,
      ...(v.defectClass ? { defectClass: v.defectClass } : {}),
      caught: failed.length > 0,
      failedBy: failed.map((r) => ({ id: r.id, reason: r.reason ?? "" })),
      caughtWhereExpected: failed.some((r) => v.caughtBy.includes(r.id)),
    };
  });
  const caught = verdicts.filter((v) => v.caught).length;
  const byClass: Partial<Record<DefectClass, { caught: number; total: number }>> = {};
  for (const v of verdicts) {
    if (!v.defectClass) continue;
    const c = (byClass[v.defectClass] ??= { caught: 0, total: 0 });
    c.total += 1;
    if (v.caught) c.caught += 1;
  }
  return {
    healthy,
    healthyFailures: [...healthyFailures],
    verdicts,
    caught,
    total: verdicts.length,
    byClass,
    durationMs: Math.round(performance.now() - t0),
  };
}
