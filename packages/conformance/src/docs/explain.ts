/**
 * `virtkit conformance explain <scenario>`: what a scenario does, step by step. The steps, contract
 * calls and environment controls are not written down (they would drift from the code): they are
 * traced from a real run of the scenario against the fake driver, once as declared and, when the
 * scenario has a refusal check, once with the capability undeclared.
 */
import type { ComputeDriver, ConformanceEnvironment, ConformanceEnvironmentFactory } from "@virtkit/core";
import { computeServiceFactory } from "../compute-service-adapter.js";
import { fakeEnvironment } from "../environments/fake-environment.js";
import { DEFAULT_SCENARIO_TIMEOUT_MS, runScenario, scenarioDeadlineMs } from "../make-test.js";
import type { ScenarioDefinition } from "../scenario.js";
import { SCENARIOS } from "../scenarios.js";
import type { ScenarioLevel, ScenarioStatus } from "../types.js";
import { scenarioDoc } from "./scenario-docs.js";

/** One traced path through a scenario. */
export interface ScenarioTrace {
  /** The steps the scenario named, in order. */
  readonly steps: readonly string[];
  /** Contract methods called, in the order of their first call. */
  readonly calls: readonly string[];
  /** Environment controls used (`guestControls.ignoreAcpi`, `verifyAdminPassword`, `a second host`). */
  readonly controls: readonly string[];
  /** How the traced run against the fake ended. */
  readonly status: ScenarioStatus;
}

/** Everything `explain` says about a scenario. */
export interface ScenarioExplanation {
  readonly id: string;
  readonly title: string;
  readonly group: string;
  readonly level: ScenarioLevel;
  /** The capability it exercises (null: the base contract) and any others its body needs. */
  readonly capability: string | null;
  readonly alsoNeeds: readonly string[];
  /** Its deadline at the default pace (`--scenario-timeout 10000`), ms. */
  readonly timeoutMs: number;
  readonly rule?: string;
  readonly nova?: string;
  /** The check function that holds the body (in the package's shipped `src/checks/`). */
  readonly check: string;
  /** The path taken when the capability is declared. */
  readonly declared: ScenarioTrace;
  /** The refusal check taken when it is not (absent: then reported unsupported without a call). */
  readonly undeclared?: ScenarioTrace;
}

/** The scenario with this id, or undefined. */
export function findScenario(id: string, table: readonly ScenarioDefinition[] = SCENARIOS): ScenarioDefinition | undefined {
  return table.find((s) => s.id === id);
}

/** Explains `def` by tracing it against the fake driver. */
export async function explainScenario(def: ScenarioDefinition): Promise<ScenarioExplanation> {
  const caps = [...(def.capability ? [def.capability] : []), ...(def.alsoNeeds ?? [])];
  const declared = await trace(def, fakeEnvironment());
  const undeclared =
    def.refuse && def.capability
      ? await trace(
          def,
          // What the refusal itself needs stays declared (else there would be nothing to refuse).
          fakeEnvironment({
            capabilities: Object.fromEntries(caps.filter((c) => !def.refuseNeeds?.includes(c)).map((c) => [c, false])),
          }),
        )
      : undefined;
  const doc = scenarioDoc(def.id);
  return {
    id: def.id,
    title: def.title,
    group: def.group,
    level: def.level,
    capability: def.capability,
    alsoNeeds: [...(def.alsoNeeds ?? [])],
    timeoutMs: scenarioDeadlineMs(def, DEFAULT_SCENARIO_TIMEOUT_MS),
    ...(doc ? { rule: doc.rule, nova: doc.nova } : {}),
    check: def.run.name || "(anonymous)",
    declared,
    ...(undeclared ? { undeclared } : {}),
  };
}

async function trace(def: ScenarioDefinition, factory: ConformanceEnvironmentFactory): Promise<ScenarioTrace> {
  const steps: string[] = [];
  const calls = new Set<string>();
  const controls = new Set<string>();
  const traced: ConformanceEnvironmentFactory = async (ctx) => tracedEnvironment(await factory(ctx), calls, controls);
  const result = await runScenario(def, traced, {
    // Names carry the scenario's random prefix (`vk1a2b3c4d-1`): show a stable placeholder.
    onStep: (s) => steps.push(s.replace(/\bvk[0-9a-f]{8}(?=-)/g, "<prefix>")),
    service: computeServiceFactory(),
  });
  return { steps, calls: [...calls], controls: [...controls], status: result.status };
}

function tracedEnvironment(env: ConformanceEnvironment, calls: Set<string>, controls: Set<string>): ConformanceEnvironment {
  const group = (name: string, target: object | undefined) =>
    target &&
    new Proxy(target, {
      get(t, prop) {
        const v: unknown = Reflect.get(t, prop, t);
        if (typeof v !== "function") return v;
        return (...args: unknown[]) => {
          controls.add(`${name}.${String(prop)}`);
          return (v as (...a: unknown[]) => unknown).apply(t, args);
        };
      },
    });
  const driverProxy = (driver: ComputeDriver): ComputeDriver =>
    new Proxy(driver, {
      get(t, prop) {
        const v: unknown = Reflect.get(t, prop, t);
        if (typeof v !== "function" || typeof prop !== "string") return v;
        // Bound to the driver itself: its private fields do not work through a proxy.
        return (...args: unknown[]) => {
          calls.add(prop);
          return (v as (...a: unknown[]) => unknown).apply(t, args);
        };
      },
    });
  const primary = env.hosts[0];
  return new Proxy(env, {
    get(t, prop) {
      switch (prop) {
        case "agentControls":
        case "guestControls":
        case "hypervisorControls":
          return group(prop, t[prop]);
        case "verifyAdminPassword":
          return (
            t.verifyAdminPassword &&
            ((...args: Parameters<NonNullable<ConformanceEnvironment["verifyAdminPassword"]>>) => {
              controls.add("verifyAdminPassword (a guest login)");
              return t.verifyAdminPassword!(...args);
            })
          );
        case "createDriver":
          return async (host?: string) => {
            if (host !== undefined && host !== primary) controls.add("a second host");
            return driverProxy(await t.createDriver(host));
          };
        default:
          return Reflect.get(t, prop, t);
      }
    },
  });
}

/** The human view of an explanation. */
export function renderExplanation(e: ScenarioExplanation): string {
  const out = [
    `${e.id} [${e.level}] ${e.title}`,
    "",
    `capability: ${e.capability ?? "none (the base contract every driver implements)"}${e.alsoNeeds.length ? `; also needs ${e.alsoNeeds.join(", ")}` : ""}`,
    `deadline: ${e.timeoutMs} ms at the default pace (scaled by --scenario-timeout)`,
    `check: ${e.check}`,
  ];
  if (e.rule) out.push("", "Contract rule:", `  ${e.rule}`);
  if (e.nova) out.push("", "Nova behaviour:", `  ${e.nova}`);
  const path = (title: string, t: ScenarioTrace) => {
    out.push("", `${title} (traced against the fake driver: ${t.status}):`);
    if (t.steps.length === 0) out.push("  (no named steps)");
    t.steps.forEach((s, i) => out.push(`  ${i + 1}. ${s}`));
    out.push(`  contract calls (the body's, then the kit's cleanup): ${t.calls.length ? t.calls.join(", ") : "none"}`);
    out.push(`  environment controls: ${t.controls.length ? t.controls.join(", ") : "none"}`);
  };
  path(e.capability ? `When ${e.capability} is declared` : "Steps", e.declared);
  if (e.undeclared) path(`When ${e.capability} is not declared (refusal check)`, e.undeclared);
  else if (e.capability) out.push("", `When ${e.capability} is not declared: reported unsupported without a call.`);
  out.push(
    "",
    "Environment limits: an environment may skip it (by id or group) with the reason; a run shows these as skipped, never as passes.",
  );
  return out.join("\n");
}
