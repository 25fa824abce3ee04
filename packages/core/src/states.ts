/**
 * Nova's three layers of instance state: the hypervisor's power state (what the driver reports),
 * the vm state (what the compute service believes the instance is) and the task state (what
 * operation is in flight). Values match nova/compute/{power_state,vm_states,task_states}.py.
 */

/** The hypervisor-level power state, with Nova's numeric values. */
export const PowerState = {
  NOSTATE: 0,
  RUNNING: 1,
  PAUSED: 3,
  SHUTDOWN: 4,
  CRASHED: 6,
  SUSPENDED: 7,
} as const;
/** One of the {@link PowerState} values. */
export type PowerState = (typeof PowerState)[keyof typeof PowerState];
/** The name of a power state (`RUNNING`, ...). */
export type PowerStateName = keyof typeof PowerState;

const POWER_STATE_NAMES = new Map<number, PowerStateName>(
  Object.entries(PowerState).map(([k, v]) => [v, k as PowerStateName]),
);

/** The name of a power state value, e.g. `powerStateName(1) === "RUNNING"`. */
export function powerStateName(state: PowerState): PowerStateName {
  return POWER_STATE_NAMES.get(state) ?? "NOSTATE";
}

/** The vm state the compute service keeps. */
export const VmState = {
  ACTIVE: "active",
  BUILDING: "building",
  PAUSED: "paused",
  SUSPENDED: "suspended",
  STOPPED: "stopped",
  RESCUED: "rescued",
  RESIZED: "resized",
  SOFT_DELETED: "soft-delete",
  DELETED: "deleted",
  ERROR: "error",
  SHELVED: "shelved",
} as const;
/** One of the {@link VmState} values. */
export type VmState = (typeof VmState)[keyof typeof VmState];

/** The task state: the operation in progress, or `null` when idle. */
export const TaskState = {
  SCHEDULING: "scheduling",
  SPAWNING: "spawning",
  IMAGE_SNAPSHOT: "image_snapshot",
  IMAGE_SNAPSHOT_PENDING: "image_snapshot_pending",
  IMAGE_PENDING_UPLOAD: "image_pending_upload",
  IMAGE_UPLOADING: "image_uploading",
  UPDATING_PASSWORD: "updating_password",
  REBOOTING: "rebooting",
  REBOOTING_HARD: "rebooting_hard",
  PAUSING: "pausing",
  UNPAUSING: "unpausing",
  SUSPENDING: "suspending",
  RESUMING: "resuming",
  POWERING_OFF: "powering-off",
  POWERING_ON: "powering-on",
  RESCUING: "rescuing",
  UNRESCUING: "unrescuing",
  MIGRATING: "migrating",
  DELETING: "deleting",
  INSTANCE_SNAPSHOT: "instance_snapshot",
  INSTANCE_SNAPSHOT_REVERTING: "instance_snapshot_reverting",
} as const;
/** One of the {@link TaskState} values. */
export type TaskState = (typeof TaskState)[keyof typeof TaskState];
