/**
 * Reading XAPI records: typed field access (JSON-RPC sends int64 as numbers, XML-RPC as strings),
 * the power-state mapping, and how the driver marks its VMs in `other_config` (Nova's `nova_uuid`,
 * plus a role so a rescue VM is told apart from the instance it rescues).
 */
import { PowerState } from "@virtkit/core";
import type { XapiValue } from "./xml-rpc.js";

/** A XAPI record as the wire gives it. */
export type XapiRecord = Readonly<Record<string, XapiValue>>;

/** Nova's key for the instance uuid on the instance's VM. */
export const OC_INSTANCE_UUID = "nova_uuid";
/** `instance` or `rescue`. */
export const OC_ROLE = "virtkit_role";
/** On a rescue VM: the uuid of the instance it rescues. */
export const OC_RESCUE_OF = "virtkit_instance";
/** On the instance's VM while it is rescued: `true`. */
export const OC_RESCUED = "virtkit_rescued";
/** On an instance snapshot: the power state name the instance had. */
export const OC_SNAPSHOT_POWER = "virtkit_power_state";
/**
 * When an instance snapshot was taken, to the millisecond (XAPI's snapshot_time has whole seconds,
 * so two snapshots of one second would otherwise list in no particular order).
 */
export const OC_SNAPSHOT_TAKEN = "virtkit_snapshot_taken";
/** On a snapshot made only to upload an image (destroyed afterwards). */
export const OC_IMAGE_SNAPSHOT = "virtkit_image_snapshot";
/**
 * On a VM the driver paused: the domain id it paused. XAPI shows a crashed domain kept for
 * inspection (`actions_after_crash: preserve`) as Paused too; only this mark tells the two apart.
 */
export const OC_PAUSED_DOMID = "virtkit_paused_domid";
/** The pause mark while a VM is being started paused (its domain id is not known yet). */
export const PAUSED_AT_START = "starting-paused";
/** On VDIs the driver created: the role (`root`, `rescue-root`). */
export const OC_VDI_ROLE = "virtkit_vdi";

export function str(rec: XapiRecord, key: string): string {
  const v = rec[key];
  return typeof v === "string" ? v : typeof v === "number" || typeof v === "boolean" ? String(v) : "";
}

export function num(rec: XapiRecord, key: string): number {
  const v = rec[key];
  if (typeof v === "number") return v;
  if (typeof v === "string" && v.trim() !== "") {
    const n = Number(v);
    return Number.isFinite(n) ? n : 0;
  }
  return 0;
}

export function bool(rec: XapiRecord, key: string): boolean {
  const v = rec[key];
  return v === true || v === "true" || v === "1";
}

export function refs(rec: XapiRecord, key: string): string[] {
  const v = rec[key];
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === "string") : [];
}

export function strMap(rec: XapiRecord, key: string): Record<string, string> {
  const v = rec[key];
  if (typeof v !== "object" || v === null || Array.isArray(v)) return {};
  const out: Record<string, string> = {};
  for (const [k, x] of Object.entries(v as Record<string, XapiValue>)) out[k] = typeof x === "string" ? x : String(x);
  return out;
}

/** XAPI's power_state (any case) as the contract's power state. */
export function toPowerState(xapiState: string): PowerState {
  switch (xapiState.toLowerCase()) {
    case "running":
      return PowerState.RUNNING;
    case "paused":
      return PowerState.PAUSED;
    case "suspended":
      return PowerState.SUSPENDED;
    case "halted":
      return PowerState.SHUTDOWN;
    case "crashed":
      return PowerState.CRASHED;
    default:
      return PowerState.NOSTATE;
  }
}

/**
 * The power state as the driver reads it, lower case: XAPI's, except that a Paused domain the
 * driver did not pause (no mark for this domain id) is `crashed`.
 */
export function effectivePower(rec: XapiRecord): string {
  const state = str(rec, "power_state").toLowerCase();
  if (state !== "paused") return state;
  const mark = strMap(rec, "other_config")[OC_PAUSED_DOMID];
  return mark === str(rec, "domid") || mark === PAUSED_AT_START ? "paused" : "crashed";
}

/** What a VM record is to the driver. */
export type VmKind =
  | { readonly kind: "instance"; readonly instanceUuid: string }
  | { readonly kind: "rescue"; readonly instanceUuid: string }
  | { readonly kind: "other" };

/** Classifies a VM record: the instance's VM, its rescue VM, or something else (templates, snapshots, dom0, foreign VMs). */
export function vmKind(rec: XapiRecord): VmKind {
  if (bool(rec, "is_a_template") || bool(rec, "is_a_snapshot") || bool(rec, "is_control_domain")) return { kind: "other" };
  const oc = strMap(rec, "other_config");
  if (oc[OC_ROLE] === "rescue" && oc[OC_RESCUE_OF]) return { kind: "rescue", instanceUuid: oc[OC_RESCUE_OF] };
  const uuid = oc[OC_INSTANCE_UUID];
  if (uuid) return { kind: "instance", instanceUuid: uuid };
  return { kind: "other" };
}

/**
 * Whether a VM belongs to `hostRef`: resident there (Running/Paused), or not resident anywhere
 * (Halted/Suspended) with its affinity there. In a pool every host sees every VM; this is what
 * makes "the instances on this host" mean something.
 */
export function isOnHost(rec: XapiRecord, hostRef: string): boolean {
  const resident = str(rec, "resident_on");
  if (resident !== "" && resident !== "OpaqueRef:NULL") return resident === hostRef;
  return str(rec, "affinity") === hostRef;
}
