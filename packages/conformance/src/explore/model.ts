/**
 * The explorer's reference model of one instance, built on the kit's own expected table
 * (`expected-transitions.ts`, from Nova and XenAPI), never on a driver's transition table.
 *
 * The table says, for a state and an operation, every acceptable outcome; where the contract is
 * silent it lists several. So the model is nondeterministic: an instance is a SET of possible
 * configurations, an observation is acceptable when some configuration accepts it, and the model
 * keeps the successors of the configurations that did (it learns which way the driver went).
 *
 * Configurations are the table's states, plus "in rescue mode but not running" (`SHUTDOWN+R`, ...),
 * which a driver may reach where the table leaves rescue mode unchecked (power off of a RESCUED
 * instance). The table has no row for those: the contract is silent there, so the model accepts a
 * typed refusal or any move whose events explain it, and only keeps the views consistent.
 */
import {
  InstanceNotRunningError,
  InvalidStateError,
  PasswordSetFailedError,
  SnapshotNotFoundError,
  UnsupportedOperationError,
  type LifecycleTransition,
  type PowerStateName,
} from "@virtkit/core";
import {
  STATE_POWER,
  expectedCell,
  revertCapturedState,
  type EventSequence,
  type MatrixOperation,
  type MatrixState,
  type Outcome,
} from "../expected-transitions.js";

/** The power states a reachable instance reports. */
export type ModelPower = "RUNNING" | "PAUSED" | "SUSPENDED" | "SHUTDOWN";

/** A table state, or a non-running instance that may still be in rescue mode (no table row). */
export type Config = Exclude<MatrixState, "CRASHED"> | "PAUSED+R" | "SUSPENDED+R" | "SHUTDOWN+R";

/** What the explorer can do to one instance besides the table's operations. */
export type ModelOperation = MatrixOperation | "instance-snapshot-delete";

/** An error class a refusal may use (matched with instanceof on the error thrown, never a cause). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- error constructors take different arguments
export type ErrorClass = abstract new (...args: any[]) => Error;

/** One acceptable outcome of a step. */
export type Expectation =
  | { readonly kind: "refused"; readonly errors: readonly ErrorClass[] }
  | { readonly kind: "gone"; readonly events: readonly EventSequence[] }
  | {
      readonly kind: "state";
      readonly power: ModelPower;
      readonly events: readonly EventSequence[];
      /** The configurations the instance may be in afterwards. */
      readonly next: readonly Config[];
    };

/** What the explorer saw a step do. */
export type Observation =
  | { readonly kind: "refused"; readonly error: unknown }
  | { readonly kind: "gone" }
  | { readonly kind: "state"; readonly power: PowerStateName };

/** The power state each configuration reports. */
export function configPower(c: Config): ModelPower {
  if (c === "RESCUED") return "RUNNING";
  return (c.endsWith("+R") ? c.slice(0, -2) : c) as ModelPower;
}

/** True for a configuration in rescue mode (known, or possible without a table row). */
export function inRescue(c: Config): boolean {
  return c === "RESCUED" || c.endsWith("+R");
}

/** The configuration with power `p` in rescue mode. */
export function rescued(p: ModelPower): Config {
  return p === "RUNNING" ? "RESCUED" : `${p}+R`;
}

/** True when the table has a row for `c`. */
function inTable(c: Config): c is Exclude<MatrixState, "CRASHED"> {
  return !c.endsWith("+R");
}

const EVENT_TARGET: Partial<Record<LifecycleTransition, ModelPower>> = {
  STARTED: "RUNNING",
  RESUMED: "RUNNING",
  PAUSED: "PAUSED",
  SUSPENDED: "SUSPENDED",
  STOPPED: "SHUTDOWN",
};

/**
 * Where `event` takes an instance in `from`, if it is a sound announcement there: it names a state
 * other than the current one, and RESUMED only continues a paused or saved guest.
 */
function eventFrom(event: LifecycleTransition, from: ModelPower): ModelPower | undefined {
  const to = EVENT_TARGET[event];
  if (to === undefined || to === from) return undefined;
  if (event === "RESUMED" && from !== "PAUSED" && from !== "SUSPENDED") return undefined;
  return to;
}

const explainCache = new Map<string, readonly EventSequence[]>();

/**
 * Every event sequence (up to three events) that announces a move from `from` to `to` by the
 * kit's rule: each event names the state entered, once, in order. Used where the table has no
 * cell (a revert to a snapshot taken in another state, configurations without a row); the table's
 * own cells are always a subset of these.
 */
export function explainingSequences(from: ModelPower, to: ModelPower): readonly EventSequence[] {
  const key = `${from}>${to}`;
  const cached = explainCache.get(key);
  if (cached) return cached;
  // A saved guest whose image is dropped was not running: the table lets that go unannounced.
  const out: EventSequence[] = from === to || (from === "SUSPENDED" && to === "SHUTDOWN") ? [[]] : [];
  const events = Object.keys(EVENT_TARGET) as LifecycleTransition[];
  const walk = (at: ModelPower, seq: LifecycleTransition[]) => {
    if (seq.length > 0 && at === to) out.push([...seq]);
    if (seq.length === 3) return;
    for (const e of events) {
      const next = eventFrom(e, at);
      if (next !== undefined) walk(next, [...seq, e]);
    }
  };
  walk(from, []);
  explainCache.set(key, out);
  return out;
}

/** The table's outcomes of a cell as expectations. */
function fromTable(outcomes: readonly Outcome[]): Expectation[] {
  return outcomes.map((o): Expectation => {
    switch (o.kind) {
      case "refused":
        return { kind: "refused", errors: o.errors };
      case "gone":
        return { kind: "gone", events: o.events };
      case "state": {
        const power = STATE_POWER[o.state] as ModelPower;
        const state = o.state as Config;
        // "rescue unchecked": the table does not say whether the instance left rescue mode.
        const next = o.rescue === "unchecked" && state !== "RESCUED" ? [state, rescued(power)] : [state];
        return { kind: "state", power, events: o.events, next };
      }
    }
  });
}

const REFUSALS: readonly ErrorClass[] = [InvalidStateError, InstanceNotRunningError, PasswordSetFailedError];
const POWERS: readonly ModelPower[] = ["RUNNING", "PAUSED", "SUSPENDED", "SHUTDOWN"];

/** Where the contract is silent (no table row): a typed refusal, or any move its events explain. */
function silent(c: Config, op: ModelOperation): Expectation[] {
  const from = configPower(c);
  if (op === "destroy") return fromTable(expectedCell(from, "destroy").outcomes);
  const out: Expectation[] = [{ kind: "refused", errors: REFUSALS }];
  for (const p of POWERS) {
    if (op === "unrescue" && p !== "RUNNING") continue;
    const next: Config[] = op === "unrescue" ? [p] : op === "rescue" ? [rescued(p)] : [p, rescued(p)];
    out.push({ kind: "state", power: p, events: explainingSequences(from, p), next });
  }
  return out;
}

/** What a step may do to an instance in configuration `c`. */
export function expectationsFor(c: Config, op: ModelOperation, captured?: readonly Config[]): Expectation[] {
  if (op === "instance-snapshot-delete") {
    // Nothing in Nova or the contract ties deleting a snapshot to a state: it must change nothing.
    return [
      { kind: "refused", errors: [InvalidStateError] },
      { kind: "state", power: configPower(c), events: [[]], next: [c] },
    ];
  }
  if (op === "instance-snapshot-revert") return revertExpectations(c, captured ?? []);
  if (!inTable(c)) return silent(c, op);
  return fromTable(expectedCell(c, op).outcomes);
}

/**
 * Revert "restores disk and power state as captured". The table's cell where the snapshot was
 * taken in the state the table assumes; otherwise the captured power state, announced soundly.
 * Whether rescue mode survives a revert is not specified: refusal or either mode is accepted then.
 */
function revertExpectations(c: Config, captured: readonly Config[]): Expectation[] {
  const out: Expectation[] = [];
  for (const k of captured) {
    if (inTable(c) && k === revertCapturedState(c)) {
      out.push(...fromTable(expectedCell(c, "instance-snapshot-revert").outcomes));
      continue;
    }
    const to = configPower(k);
    const events = explainingSequences(configPower(c), to);
    if (inRescue(c) || inRescue(k)) {
      out.push({ kind: "refused", errors: [InvalidStateError] });
      out.push({ kind: "state", power: to, events, next: [to, rescued(to)] });
    } else {
      out.push({ kind: "state", power: to, events, next: [k] });
    }
  }
  return out;
}

/** A step on a capability the driver does not declare: refused as unsupported, nothing changed. */
export function unsupportedExpectations(c: Config, op: ModelOperation): Expectation[] {
  const out: Expectation[] = [{ kind: "refused", errors: [UnsupportedOperationError] }];
  // "SOFT needs capability softReboot; a driver may fall back to HARD."
  if (op === "reboot-soft") out.push(...expectationsFor(c, "reboot-hard"));
  return out;
}

/** Revert or delete of a snapshot the instance does not have. */
export const UNKNOWN_SNAPSHOT: readonly Expectation[] = [{ kind: "refused", errors: [SnapshotNotFoundError] }];

/** The result of judging one observation. */
export type Verdict =
  | { readonly ok: true; readonly next: ReadonlySet<Config> | "gone" }
  | { readonly ok: false; readonly expected: string };

const seqText = (s: EventSequence) => `[${s.join(", ")}]`;

/** A short human form of an expectation. */
export function describeExpectation(e: Expectation): string {
  switch (e.kind) {
    case "refused":
      return `refused ${e.errors.map((x) => x.name).join("/")}`;
    case "gone":
      return `gone ${e.events.map(seqText).join("|")}`;
    case "state":
      return `${e.power} ${e.events.length > 4 ? `(${e.events.length} sequences)` : e.events.map(seqText).join("|")}`;
  }
}

/**
 * Judges what a step did (`obs`, and the events about the instance, transients folded) against
 * every configuration the model allows. Refusals must be the typed error itself and announce nothing.
 */
export function judge(
  configs: ReadonlySet<Config>,
  expectationsOf: (c: Config) => readonly Expectation[],
  obs: Observation,
  events: EventSequence,
): Verdict {
  const next = new Set<Config>();
  let gone = false;
  const seen: string[] = [];
  const same = (a: EventSequence) => a.length === events.length && a.every((t, i) => t === events[i]);
  for (const c of configs) {
    for (const e of expectationsOf(c)) {
      const text = describeExpectation(e);
      if (!seen.includes(text)) seen.push(text);
      if (e.kind === "refused" && obs.kind === "refused") {
        if (events.length === 0 && e.errors.some((cls) => obs.error instanceof cls)) next.add(c);
      } else if (e.kind === "gone" && obs.kind === "gone") {
        if (e.events.some(same)) gone = true;
      } else if (e.kind === "state" && obs.kind === "state") {
        if (e.power === obs.power && e.events.some(same)) for (const n of e.next) next.add(n);
      }
    }
  }
  if (gone) return { ok: true, next: "gone" };
  if (next.size > 0) return { ok: true, next };
  return { ok: false, expected: seen.join(" or ") };
}
