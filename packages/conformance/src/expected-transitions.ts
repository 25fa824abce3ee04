/**
 * The kit's own expected table: for every state an instance can be in and every operation of the
 * contract, what a driver must do. Written from Nova and XenAPI, NOT from any driver (the fake's
 * transition table is exactly what this must be able to contradict):
 *
 * - nova/compute/api.py: the vm states each API call accepts (`check_instance_state`). If Nova's
 *   compute manager can call the driver in a state, the driver must do the job there: hard reboot
 *   from ACTIVE/STOPPED/PAUSED/SUSPENDED (`ALLOW_HARD_REBOOT`), snapshot from ACTIVE/STOPPED/PAUSED/
 *   SUSPENDED, rescue from ACTIVE/STOPPED, and power off from PAUSED/SUSPENDED too (shelve powers
 *   those off through `_power_off_instance`).
 * - nova/virt/libvirt/driver.py: soft reboot of a guest that is not running goes hard
 *   (`_soft_reboot` returns False, `reboot` falls back), power off ends off from any state,
 *   suspend is a managed save, resume restores it.
 * - XenAPI's VM lifecycle: start Halted->Running; clean_shutdown Running->Halted; hard_shutdown
 *   Running/Paused/Suspended->Halted; pause Running->Paused; unpause Paused->Running; suspend
 *   Running->Suspended; resume Suspended->Running; anything else fails VM_BAD_POWER_STATE with the
 *   VM untouched (the typed refusal below).
 * - The contract's doc comments (packages/core/src/driver.ts) and the kit's existing rules.
 *
 * Where Nova never calls the driver in a state (the API refuses first) and the contract's doc
 * comments say nothing, the contract is silent: the cell lists every acceptable outcome (usually
 * "refused with InvalidStateError, state unchanged" or what Nova's libvirt driver would do) and
 * says so in `silent`.
 *
 * Events: a power-state change is announced by the event naming the state entered (STARTED for
 * RUNNING from an off state, RESUMED for RUNNING from PAUSED, PAUSED, SUSPENDED, STOPPED), once,
 * in order. The contract does not fix how a driver gets there (an in-place reset or a stop and a
 * start), so where several paths are sound each sequence is listed.
 */
import {
  InstanceNotRunningError,
  InvalidStateError,
  PasswordSetFailedError,
  type Capability,
  type LifecycleTransition,
  type PowerStateName,
} from "@virtkit/core";
import type { ScenarioLevel } from "./types.js";

/** The states of the table. RESCUED is a RUNNING instance booted from its rescue image. */
export const MATRIX_STATES = ["RUNNING", "PAUSED", "SUSPENDED", "SHUTDOWN", "CRASHED", "RESCUED"] as const;
export type MatrixState = (typeof MATRIX_STATES)[number];

/**
 * The states the kit can bring an instance into through the contract alone. CRASHED is not one:
 * no contract call crashes a guest; only the environment can (`guestControls.crash`).
 */
export const REACHABLE_STATES: readonly MatrixState[] = ["RUNNING", "PAUSED", "SUSPENDED", "SHUTDOWN", "RESCUED"];

/** States only an environment control reaches (CRASHED: `guestControls.crash`); their cells skip without it. */
export const ENVIRONMENT_STATES: readonly MatrixState[] = ["CRASHED"];

/**
 * The cells repeated with instance snapshots present (`.with-snapshots`): the operations a
 * hypervisor implements by removing, redefining, saving or restarting the domain, where existing
 * snapshots get in the way (libvirt refuses to undefine a domain that has snapshot metadata) or get
 * lost. Destroy from every state; the others from the states where they act. The snapshots must
 * survive every one of them except destroy, which must take them along.
 */
export const WITH_SNAPSHOT_CELLS: readonly (readonly [MatrixState, MatrixOperation])[] = [
  ...MATRIX_STATES.map((s) => [s, "destroy"] as const),
  ...MATRIX_STATES.map((s) => [s, "reboot-hard"] as const),
  ["RUNNING", "power-off"],
  ["PAUSED", "power-off"],
  ["SUSPENDED", "power-off"],
  ["CRASHED", "power-off"],
  ["SHUTDOWN", "power-on"],
  ["CRASHED", "power-on"],
  ["RUNNING", "suspend"],
  ["SUSPENDED", "resume"],
  ["RUNNING", "rescue"],
  ["SHUTDOWN", "rescue"],
  ["RESCUED", "unrescue"],
  ["RUNNING", "image-snapshot"],
  ["SHUTDOWN", "image-snapshot"],
];

/** Every operation of the table, as used in scenario ids (`state.paused.suspend`). */
export const MATRIX_OPERATIONS = [
  "reboot-soft",
  "reboot-hard",
  "power-off",
  "power-on",
  "pause",
  "unpause",
  "suspend",
  "resume",
  "rescue",
  "unrescue",
  "destroy",
  "image-snapshot",
  "instance-snapshot-create",
  "instance-snapshot-revert",
  "set-admin-password",
] as const;
export type MatrixOperation = (typeof MATRIX_OPERATIONS)[number];

/** What `getInfo` reports in each state. */
export const STATE_POWER: Readonly<Record<MatrixState, PowerStateName>> = {
  RUNNING: "RUNNING",
  PAUSED: "PAUSED",
  SUSPENDED: "SUSPENDED",
  SHUTDOWN: "SHUTDOWN",
  CRASHED: "CRASHED",
  RESCUED: "RUNNING",
};

/** The capability needed to reach each state (null: the base contract). */
export const STATE_CAPABILITY: Readonly<Record<MatrixState, Capability | null>> = {
  RUNNING: null,
  PAUSED: "pause",
  SUSPENDED: "suspend",
  SHUTDOWN: null,
  CRASHED: null,
  RESCUED: "rescue",
};

/** The capability each operation needs (null: the base contract). */
export const OPERATION_CAPABILITY: Readonly<Record<MatrixOperation, Capability | null>> = {
  "reboot-soft": "softReboot",
  "reboot-hard": null,
  "power-off": null,
  "power-on": null,
  pause: "pause",
  unpause: "pause",
  suspend: "suspend",
  resume: "suspend",
  rescue: "rescue",
  unrescue: "rescue",
  destroy: null,
  "image-snapshot": "imageSnapshot",
  "instance-snapshot-create": "instanceSnapshots",
  "instance-snapshot-revert": "instanceSnapshots",
  "set-admin-password": "setAdminPassword",
};

/**
 * The state the instance snapshot used by `instance-snapshot-revert` is taken in: SHUTDOWN when
 * the cell starts RUNNING (so the revert has a state to restore), RUNNING otherwise.
 */
export function revertCapturedState(from: MatrixState): MatrixState {
  return from === "RUNNING" ? "SHUTDOWN" : "RUNNING";
}

/** The lifecycle events one transition emits, in order. */
export type EventSequence = readonly LifecycleTransition[];

/** The error classes a refusal may use (matched on the error thrown, never on its causes). */
export type RefusalClass = typeof InvalidStateError | typeof InstanceNotRunningError | typeof PasswordSetFailedError;

/** The operation succeeds and the instance ends in `state`, announced by one of `events`. */
export interface StateOutcome {
  readonly kind: "state";
  readonly state: MatrixState;
  /**
   * "unchecked": the table does not say whether the instance is still in rescue mode (an
   * operation accepted on a RESCUED instance where the contract is silent).
   */
  readonly rescue?: "unchecked";
  readonly events: readonly EventSequence[];
}

/** The operation is refused with one of `errors`; the state (and rescue mode) is unchanged and no event fires. */
export interface RefusalOutcome {
  readonly kind: "refused";
  readonly errors: readonly RefusalClass[];
}

/** The instance is gone from every view. */
export interface GoneOutcome {
  readonly kind: "gone";
  readonly events: readonly EventSequence[];
}

export type Outcome = StateOutcome | RefusalOutcome | GoneOutcome;

/** One cell of the table. */
export interface ExpectedCell {
  /** Every acceptable outcome: one where the contract decides, several where it is silent. */
  readonly outcomes: readonly Outcome[];
  /** Why the contract leaves the choice open, when it does. */
  readonly silent?: string;
  /** SHOULD where the contract says so (soft reboot); MUST otherwise. */
  readonly level?: ScenarioLevel;
}

const to = (state: MatrixState, ...events: EventSequence[]): StateOutcome => ({ kind: "state", state, events });
/** Accepted on a RESCUED instance: the power state is checked, the rescue mode is not. */
const toAnyRescue = (state: MatrixState, ...events: EventSequence[]): StateOutcome => ({
  kind: "state",
  state,
  rescue: "unchecked",
  events,
});
const refused = (...errors: RefusalClass[]): RefusalOutcome => ({ kind: "refused", errors });
const gone = (...events: EventSequence[]): GoneOutcome => ({ kind: "gone", events });

const ILLEGAL = refused(InvalidStateError);
/** The contract lists these for a password that cannot be set because the guest is not running. */
const PASSWORD_NOT_RUNNING = refused(InstanceNotRunningError, PasswordSetFailedError);
/** A destroyed guest may or may not announce that it stopped; it is gone either way. */
const DESTROYED = gone([], ["STOPPED"]);
/** A reboot may reset in place (no event) or stop and start the guest. */
const REBOOTED_IN_PLACE: EventSequence[] = [[], ["STOPPED", "STARTED"]];

const NOVA_NEVER = "Nova's API never calls the driver in this state; the contract is silent";

/** The table. Every state x every operation; the type makes a missing cell a compile error. */
export const EXPECTED_TRANSITIONS: Readonly<Record<MatrixState, Readonly<Record<MatrixOperation, ExpectedCell>>>> = {
  RUNNING: {
    "reboot-soft": { outcomes: [to("RUNNING", ...REBOOTED_IN_PLACE)], level: "SHOULD" },
    "reboot-hard": { outcomes: [to("RUNNING", ...REBOOTED_IN_PLACE)] },
    "power-off": { outcomes: [to("SHUTDOWN", ["STOPPED"])] },
    // Nova's API refuses start of an ACTIVE instance; the kit's reading: power on is idempotent
    // like power off (a no-op, no reboot behind the caller's back).
    "power-on": { outcomes: [to("RUNNING", [])] },
    pause: { outcomes: [to("PAUSED", ["PAUSED"])] },
    unpause: { outcomes: [ILLEGAL] },
    suspend: { outcomes: [to("SUSPENDED", ["SUSPENDED"])] },
    resume: { outcomes: [ILLEGAL] },
    // Nova's manager powers off first, then the driver boots the rescue image.
    rescue: { outcomes: [to("RESCUED", ["STOPPED", "STARTED"])] },
    unrescue: { outcomes: [ILLEGAL] },
    destroy: { outcomes: [DESTROYED] },
    // "The instance's power state afterwards equals the one before"; a cold snapshot may go round.
    "image-snapshot": {
      outcomes: [to("RUNNING", [], ["PAUSED", "RESUMED"], ["SUSPENDED", "STARTED"], ["STOPPED", "STARTED"])],
    },
    "instance-snapshot-create": { outcomes: [to("RUNNING", [])] },
    // Captured SHUTDOWN: revert "restores disk and power state as captured".
    "instance-snapshot-revert": { outcomes: [to("SHUTDOWN", ["STOPPED"])] },
    "set-admin-password": { outcomes: [to("RUNNING", [])] },
  },
  PAUSED: {
    // "Soft reboot of a non-running instance: hard" (Nova's _soft_reboot returns False).
    "reboot-soft": { outcomes: [to("RUNNING", ["STOPPED", "STARTED"], ["RESUMED"])], level: "SHOULD" },
    "reboot-hard": { outcomes: [to("RUNNING", ["STOPPED", "STARTED"], ["RESUMED"])] },
    // Shelve powers off a PAUSED instance; XenAPI hard_shutdown Paused->Halted.
    "power-off": { outcomes: [to("SHUTDOWN", ["STOPPED"])] },
    "power-on": {
      outcomes: [ILLEGAL, to("RUNNING", ["STOPPED", "STARTED"], ["RESUMED"])],
      silent: `${NOVA_NEVER} (start needs STOPPED); Nova's libvirt power_on hard-reboots`,
    },
    pause: {
      outcomes: [ILLEGAL, to("PAUSED", [])],
      silent: `${NOVA_NEVER}; refusing or an idempotent no-op are both sound`,
    },
    unpause: { outcomes: [to("RUNNING", ["RESUMED"])] },
    suspend: {
      outcomes: [ILLEGAL, to("SUSPENDED", ["SUSPENDED"])],
      silent: `${NOVA_NEVER} (suspend needs ACTIVE); a managed save of a paused guest works in libvirt`,
    },
    resume: { outcomes: [ILLEGAL] },
    rescue: {
      outcomes: [ILLEGAL, to("RESCUED", ["STOPPED", "STARTED"])],
      silent: `${NOVA_NEVER} (rescue needs ACTIVE or STOPPED)`,
    },
    unrescue: { outcomes: [ILLEGAL] },
    destroy: { outcomes: [DESTROYED] },
    "image-snapshot": {
      outcomes: [to("PAUSED", [], ["SUSPENDED", "STARTED", "PAUSED"], ["STOPPED", "STARTED", "PAUSED"])],
    },
    "instance-snapshot-create": {
      outcomes: [ILLEGAL, to("PAUSED", [])],
      silent: "Nova has no instance snapshots and the contract names no state for them",
    },
    // Captured RUNNING. Leaving PAUSED for RUNNING: resumed in place, or stopped and restarted from the snapshot.
    "instance-snapshot-revert": { outcomes: [to("RUNNING", ["RESUMED"], ["STARTED"], ["STOPPED", "STARTED"])] },
    "set-admin-password": { outcomes: [PASSWORD_NOT_RUNNING] },
  },
  SUSPENDED: {
    "reboot-soft": { outcomes: [to("RUNNING", ["STARTED"], ["STOPPED", "STARTED"])], level: "SHOULD" },
    "reboot-hard": { outcomes: [to("RUNNING", ["STARTED"], ["STOPPED", "STARTED"])] },
    // Shelve powers off a SUSPENDED instance; XenAPI hard_shutdown Suspended->Halted. The saved
    // memory is discarded: the instance is SHUTDOWN, not still SUSPENDED. The guest was not running
    // either way: libvirt (dropping a managed-save image) announces nothing, XenAPI a power change.
    "power-off": { outcomes: [to("SHUTDOWN", ["STOPPED"], [])] },
    "power-on": {
      outcomes: [ILLEGAL, to("RUNNING", ["STARTED"], ["RESUMED"])],
      silent: `${NOVA_NEVER} (start needs STOPPED); starting a managed-saved libvirt domain restores it`,
    },
    pause: { outcomes: [ILLEGAL] },
    unpause: { outcomes: [ILLEGAL] },
    suspend: {
      outcomes: [ILLEGAL, to("SUSPENDED", [])],
      silent: `${NOVA_NEVER}; refusing or an idempotent no-op are both sound`,
    },
    // libvirt restores a managed save with STARTED; a driver that resumes in place says RESUMED.
    resume: { outcomes: [to("RUNNING", ["STARTED"], ["RESUMED"])] },
    rescue: {
      outcomes: [ILLEGAL, to("RESCUED", ["STARTED"], ["STOPPED", "STARTED"])],
      silent: `${NOVA_NEVER} (rescue needs ACTIVE or STOPPED)`,
    },
    unrescue: { outcomes: [ILLEGAL] },
    destroy: { outcomes: [DESTROYED] },
    "image-snapshot": { outcomes: [to("SUSPENDED", [])] },
    "instance-snapshot-create": {
      outcomes: [ILLEGAL, to("SUSPENDED", [])],
      silent: "Nova has no instance snapshots and the contract names no state for them",
    },
    "instance-snapshot-revert": { outcomes: [to("RUNNING", ["STARTED"], ["RESUMED"], ["STOPPED", "STARTED"])] },
    "set-admin-password": { outcomes: [PASSWORD_NOT_RUNNING] },
  },
  SHUTDOWN: {
    "reboot-soft": { outcomes: [to("RUNNING", ["STARTED"])], level: "SHOULD" },
    "reboot-hard": { outcomes: [to("RUNNING", ["STARTED"])] },
    // Idempotent, as the kit already requires (lifecycle.power-off-hard).
    "power-off": { outcomes: [to("SHUTDOWN", [])] },
    "power-on": { outcomes: [to("RUNNING", ["STARTED"])] },
    pause: { outcomes: [ILLEGAL] },
    unpause: { outcomes: [ILLEGAL] },
    suspend: { outcomes: [ILLEGAL] },
    resume: { outcomes: [ILLEGAL] },
    rescue: { outcomes: [to("RESCUED", ["STARTED"])] },
    unrescue: { outcomes: [ILLEGAL] },
    destroy: { outcomes: [gone([])] },
    "image-snapshot": { outcomes: [to("SHUTDOWN", [])] },
    // The basic case of every hypervisor with snapshots (XenAPI Halted, libvirt offline snapshots).
    "instance-snapshot-create": { outcomes: [to("SHUTDOWN", [])] },
    "instance-snapshot-revert": { outcomes: [to("RUNNING", ["STARTED"])] },
    "set-admin-password": { outcomes: [PASSWORD_NOT_RUNNING] },
  },
  // Reached only through the environment (guestControls.crash); skipped where it cannot crash a guest.
  CRASHED: {
    "reboot-soft": { outcomes: [to("RUNNING", ["STARTED"], ["STOPPED", "STARTED"])], level: "SHOULD" },
    "reboot-hard": { outcomes: [to("RUNNING", ["STARTED"], ["STOPPED", "STARTED"])] },
    // Nova's _clean_shutdown counts CRASHED as shut down; _destroy then ends it.
    "power-off": { outcomes: [to("SHUTDOWN", ["STOPPED"])] },
    "power-on": { outcomes: [to("RUNNING", ["STARTED"])] },
    pause: { outcomes: [ILLEGAL] },
    unpause: { outcomes: [ILLEGAL] },
    suspend: { outcomes: [ILLEGAL] },
    resume: { outcomes: [ILLEGAL] },
    rescue: {
      outcomes: [ILLEGAL, to("RESCUED", ["STARTED"], ["STOPPED", "STARTED"])],
      silent: "Nova rescues ERROR instances; the contract is silent",
    },
    unrescue: { outcomes: [ILLEGAL] },
    destroy: { outcomes: [DESTROYED] },
    "image-snapshot": {
      outcomes: [ILLEGAL, to("CRASHED", [])],
      silent: "Nova snapshots no ERROR instance; the contract is silent",
    },
    "instance-snapshot-create": {
      outcomes: [ILLEGAL, to("CRASHED", [])],
      silent: "the contract names no state for instance snapshots",
    },
    "instance-snapshot-revert": { outcomes: [to("RUNNING", ["STARTED"], ["STOPPED", "STARTED"])] },
    "set-admin-password": { outcomes: [PASSWORD_NOT_RUNNING] },
  },
  // Nova's API accepts only unrescue (and delete) for RESCUED; everything else is silent.
  RESCUED: {
    "reboot-soft": {
      outcomes: [ILLEGAL, to("RESCUED", ...REBOOTED_IN_PLACE)],
      silent: `${NOVA_NEVER}; a reboot must at least not leave rescue mode behind the caller's back`,
      level: "SHOULD",
    },
    "reboot-hard": {
      outcomes: [ILLEGAL, to("RESCUED", ...REBOOTED_IN_PLACE)],
      silent: `${NOVA_NEVER}; a reboot must at least not leave rescue mode behind the caller's back`,
    },
    "power-off": {
      outcomes: [ILLEGAL, toAnyRescue("SHUTDOWN", ["STOPPED"])],
      silent: `${NOVA_NEVER} (stop needs ACTIVE or ERROR)`,
    },
    "power-on": { outcomes: [ILLEGAL, to("RESCUED", [])], silent: `${NOVA_NEVER}; like RUNNING, at most a no-op` },
    pause: { outcomes: [ILLEGAL, toAnyRescue("PAUSED", ["PAUSED"])], silent: NOVA_NEVER },
    unpause: { outcomes: [ILLEGAL] },
    suspend: { outcomes: [ILLEGAL, toAnyRescue("SUSPENDED", ["SUSPENDED"])], silent: NOVA_NEVER },
    resume: { outcomes: [ILLEGAL] },
    // Nova refuses; a second rescue would lose the way back to the original disk.
    rescue: { outcomes: [ILLEGAL] },
    unrescue: { outcomes: [to("RUNNING", ["STOPPED", "STARTED"])] },
    destroy: { outcomes: [DESTROYED] },
    "image-snapshot": {
      outcomes: [ILLEGAL, to("RESCUED", [], ["PAUSED", "RESUMED"], ["SUSPENDED", "STARTED"], ["STOPPED", "STARTED"])],
      silent: `${NOVA_NEVER} (snapshot needs ACTIVE, STOPPED, PAUSED or SUSPENDED)`,
    },
    "instance-snapshot-create": {
      outcomes: [ILLEGAL, to("RESCUED", [])],
      silent: "the contract names no state for instance snapshots",
    },
    // Captured RUNNING before the rescue: whether the rescue survives a revert is not specified.
    "instance-snapshot-revert": {
      outcomes: [ILLEGAL, toAnyRescue("RUNNING", ...REBOOTED_IN_PLACE)],
      silent: "the contract does not say whether a revert leaves rescue mode",
    },
    "set-admin-password": {
      outcomes: [refused(InvalidStateError, InstanceNotRunningError, PasswordSetFailedError), to("RESCUED", [])],
      silent: `${NOVA_NEVER} (set_admin_password needs ACTIVE)`,
    },
  },
};

/** The cell for `from` x `operation`. */
export function expectedCell(from: MatrixState, operation: MatrixOperation): ExpectedCell {
  return EXPECTED_TRANSITIONS[from][operation];
}

/** A short human form of an outcome: `PAUSED [PAUSED]`, `refused InvalidStateError`, `gone`. */
export function describeOutcome(outcome: Outcome): string {
  const seqs = (events: readonly EventSequence[]) => events.map((e) => `[${e.join(", ")}]`).join(" | ");
  switch (outcome.kind) {
    case "refused":
      return `refused ${outcome.errors.map((e) => e.name).join(" or ")}`;
    case "gone":
      return `gone ${seqs(outcome.events)}`;
    case "state":
      return `${outcome.state}${outcome.rescue === "unchecked" ? " (rescue mode unchecked)" : ""} ${seqs(outcome.events)}`;
  }
}
