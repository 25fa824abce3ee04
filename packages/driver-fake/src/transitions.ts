/**
 * The fake's power-state machine, after the XenAPI VM lifecycle table and Nova's driver semantics:
 * for each operation, the power states it is legal from and where it lands. Anything not listed
 * is illegal and rejects with `InvalidStateError`, changing nothing.
 */
import type { PowerStateName } from "@virtkit/core";

/** Operations that move an instance between power states (named as the driver's methods). */
export type PowerOperation =
  | "pause"
  | "unpause"
  | "suspend"
  | "resume"
  | "powerOff"
  | "powerOn"
  | "reboot"
  | "rescue"
  | "unrescue";

/** Power states an existing fake instance can be in. */
export const INSTANCE_STATES = [
  "RUNNING",
  "PAUSED",
  "SUSPENDED",
  "SHUTDOWN",
  "CRASHED",
] as const satisfies readonly PowerStateName[];
/** One of {@link INSTANCE_STATES}. */
export type InstanceStateName = (typeof INSTANCE_STATES)[number];

/** From-state -> to-state for each operation. A same-state entry is a legal no-op (or an in-place reboot). */
export const TRANSITIONS: Readonly<
  Record<PowerOperation, Readonly<Partial<Record<InstanceStateName, InstanceStateName>>>>
> = {
  pause: { RUNNING: "PAUSED" },
  unpause: { PAUSED: "RUNNING" },
  // libvirt's managed save works on a paused domain too.
  suspend: { RUNNING: "SUSPENDED", PAUSED: "SUSPENDED" },
  resume: { SUSPENDED: "RUNNING" },
  // Nova's power_off treats an instance that is already off as done (`_clean_shutdown` returns True).
  powerOff: {
    RUNNING: "SHUTDOWN",
    PAUSED: "SHUTDOWN",
    SUSPENDED: "SHUTDOWN",
    CRASHED: "SHUTDOWN",
    SHUTDOWN: "SHUTDOWN",
  },
  // Powering on a running instance is a no-op, as in Nova.
  powerOn: { SHUTDOWN: "RUNNING", CRASHED: "RUNNING", RUNNING: "RUNNING" },
  // Nova's _soft_reboot only reboots a running guest; from any other state the driver reboots hard.
  // Nova's hard reboot recreates the domain, so it also recovers paused, suspended (the saved state
  // is discarded: ALLOW_HARD_REBOOT), crashed and stopped instances. Both types share this row.
  reboot: { RUNNING: "RUNNING", PAUSED: "RUNNING", SUSPENDED: "RUNNING", CRASHED: "RUNNING", SHUTDOWN: "RUNNING" },
  rescue: { RUNNING: "RUNNING", SHUTDOWN: "RUNNING" },
  // Legal only for a rescued instance (checked separately); it boots the original disk again.
  unrescue: { RUNNING: "RUNNING", PAUSED: "RUNNING", SHUTDOWN: "RUNNING", CRASHED: "RUNNING", SUSPENDED: "RUNNING" },
};

/** Where `op` takes an instance in `state`, or undefined when the move is illegal. */
export function nextState(op: PowerOperation, state: InstanceStateName): InstanceStateName | undefined {
  return TRANSITIONS[op][state];
}
