// Which VM operation XAPI allows when, in the order ocaml/xapi/xapi_vm_lifecycle.ml checks it:
// blocked operations, the power state, operations already in progress, templates, snapshots.
import { XapiError } from "./errors.js";
import type { XapiRecord } from "./database.js";
import type { PowerState } from "./schema.js";

/** The vm_operations the simulator performs. */
export type VmOperation =
  | "start"
  | "start_on"
  | "clean_shutdown"
  | "hard_shutdown"
  | "shutdown"
  | "clean_reboot"
  | "hard_reboot"
  | "pause"
  | "unpause"
  | "suspend"
  | "resume"
  | "resume_on"
  | "destroy"
  | "clone"
  | "copy"
  | "provision"
  | "snapshot"
  | "revert"
  | "pool_migrate"
  | "migrate_send"
  | "call_plugin";

/** Every operation the simulator performs, for allowed_operations. */
export const VM_OPERATIONS: readonly VmOperation[] = [
  "start",
  "start_on",
  "clean_shutdown",
  "hard_shutdown",
  "shutdown",
  "clean_reboot",
  "hard_reboot",
  "pause",
  "unpause",
  "suspend",
  "resume",
  "resume_on",
  "destroy",
  "clone",
  "copy",
  "provision",
  "snapshot",
  "revert",
  "pool_migrate",
  "migrate_send",
];

const ALL: readonly PowerState[] = ["Halted", "Paused", "Suspended", "Running"];

/** XAPI's allowed_power_states, for the operations the simulator performs. */
export function allowedPowerStates(op: VmOperation, isSnapshot: boolean): readonly PowerState[] {
  switch (op) {
    case "provision":
    case "start":
    case "start_on":
      return ["Halted"];
    case "unpause":
      return ["Paused"];
    case "resume":
    case "resume_on":
      return ["Suspended"];
    case "call_plugin":
    case "clean_reboot":
    case "clean_shutdown":
    case "pause":
    case "pool_migrate":
    case "suspend":
      return ["Running"];
    case "clone":
    case "copy":
      return isSnapshot ? ["Halted", "Suspended"] : ["Halted"];
    case "destroy":
      return ["Halted", "Suspended"];
    case "hard_reboot":
      return ["Paused", "Running"];
    case "hard_shutdown":
    case "shutdown":
      return ["Paused", "Suspended", "Running"];
    case "migrate_send":
      return ["Halted", "Suspended", "Running"];
    case "revert":
    case "snapshot":
      return ALL;
  }
}

function allowedConcurrently(op: VmOperation, current: readonly string[]): boolean {
  const longCopies = ["clone", "copy", "export"];
  const snapshot = ["snapshot", "checkpoint"];
  const group = (ops: string[]): boolean => ops.includes(op) && current.every((o) => ops.includes(o));
  if (group(longCopies) || group(snapshot)) return true;
  if (op === "hard_shutdown") return !current.includes("hard_shutdown");
  if (op === "hard_reboot") return !current.some((o) => o === "hard_shutdown" || o === "hard_reboot");
  if (current.length === 1 && current[0] === "migrate_send") return op === "clean_shutdown" || op === "clean_reboot";
  return false;
}

const TEMPLATE_OPS: readonly VmOperation[] = ["clone", "copy", "provision"];
const SNAPSHOT_OPS: readonly VmOperation[] = ["revert", "clone", "copy", "destroy", "hard_shutdown"];

/** The lower-case power state XAPI puts in VM_BAD_POWER_STATE. */
export function lower(state: PowerState): string {
  return state.toLowerCase();
}

/** The error XAPI would raise for `op` on this VM now, or undefined when it is allowed. */
export function operationError(ref: string, vm: XapiRecord, op: VmOperation): XapiError | undefined {
  return refusal(ref, vm, op, (code, params) => new XapiError(code, params()));
}

/**
 * The checks behind operationError, in XAPI's order; `refuse` turns the first that fails into the
 * result. allowed_operations asks every operation on every change of a VM and needs only yes or no:
 * it builds no error and no parameter list.
 */
function refusal<T>(ref: string, vm: XapiRecord, op: VmOperation, refuse: (code: string, params: () => string[]) => T): T | undefined {
  const blocked = (vm.blocked_operations as Record<string, string>)[op];
  if (blocked !== undefined) return refuse("OPERATION_BLOCKED", () => [ref, blocked]);
  const power = vm.power_state as PowerState;
  const isSnapshot = vm.is_a_snapshot === true;
  const allowed = allowedPowerStates(op, isSnapshot);
  if (!allowed.includes(power)) {
    return refuse("VM_BAD_POWER_STATE", () => [ref, allowed.map(lower).join(", "), lower(power)]);
  }
  const currentOps = vm.current_operations as Record<string, string>;
  // for-in: no entries array for the usual VM with nothing in progress.
  let busy = false;
  for (const _ in currentOps) {
    busy = true;
    break;
  }
  if (busy) {
    const current = Object.entries(currentOps);
    if (!allowedConcurrently(op, current.map(([, o]) => o))) {
      return refuse("OTHER_OPERATION_IN_PROGRESS", () => {
        const [first] = current;
        const refs = current.length === 1 ? (first?.[0] ?? "") : `{${current.map(([r]) => r).join(",")}}`;
        const ops = current.length === 1 ? (first?.[1] ?? "") : `{${current.map(([, o]) => o).join(",")}}`;
        return ["VM", ref, ops, refs];
      });
    }
  }
  if (vm.is_a_template === true && !isSnapshot) {
    const isDefault = vm.is_default_template === true || (vm.other_config as Record<string, string>).default_template === "true";
    if (!TEMPLATE_OPS.includes(op) && !((op === "destroy" || op === "migrate_send") && !isDefault)) {
      return refuse("VM_IS_TEMPLATE", () => [ref, op]);
    }
  }
  if (isSnapshot && !SNAPSHOT_OPS.includes(op)) return refuse("VM_IS_SNAPSHOT", () => [ref, op]);
  if (op === "provision" && vm.is_a_template !== true) return refuse("PROVISION_ONLY_ALLOWED_ON_TEMPLATE", () => []);
  if (op === "revert" && !isSnapshot) return refuse("REVERT_ONLY_ALLOWED_ON_SNAPSHOT", () => []);
  if (vm.is_control_domain === true) {
    // Every host's dom0 (all the simulator has) is also "domain zero".
    if (op === "destroy") return refuse("OPERATION_NOT_ALLOWED", () => ["This operation is not allowed on dom0"]);
    if (op !== "start" && op !== "start_on") return refuse("OPERATION_NOT_ALLOWED", () => ["This operation is not allowed on a control domain"]);
  }
  return undefined;
}

/** allowed_operations as XAPI computes it: every operation that would pass its checks now. */
export function allowedOperations(ref: string, vm: XapiRecord): VmOperation[] {
  return VM_OPERATIONS.filter((op) => refusal(ref, vm, op, () => true) === undefined);
}
