// VDI, VBD and VIF constructors, destructors and plug/unplug.
import { XapiError } from "../errors.js";
import type { XapiRecord } from "../database.js";
import type { MessageDef } from "../registry.js";
import { message } from "../registry.js";

function needRunning(ctx: Parameters<MessageDef["handler"]>[0], vm: string): void {
  const state = ctx.pool.db.get("VM", vm).power_state as string;
  if (state !== "Running") throw new XapiError("VM_BAD_POWER_STATE", [vm, "running", state.toLowerCase()]);
}

/** Device messages. */
export function deviceMessages(): MessageDef[] {
  const a = { async: true } as const;
  return [
    message("VDI", "create", [["args", "VDI record"]], "VDI ref", (ctx, [args]) => {
      const r = args as XapiRecord;
      if (r.SR === undefined) throw new XapiError("FIELD_TYPE_ERROR", ["SR"]);
      if (r.virtual_size === undefined) throw new XapiError("FIELD_TYPE_ERROR", ["virtual_size"]);
      const fields: XapiRecord = {};
      for (const k of ["name_label", "name_description", "SR", "virtual_size", "type", "sharable", "read_only", "other_config", "xenstore_data", "sm_config", "tags"]) {
        if (r[k] !== undefined) fields[k] = r[k];
      }
      return ctx.pool.createVdi(fields);
    }, a),
    message("VDI", "destroy", [["self", "VDI ref"]], "void", (ctx, [vdi]) => ctx.pool.destroyVdi(vdi as string), a),
    message("VDI", "set_name_label", [["self", "VDI ref"], ["value", "string"]], "void", (ctx, [vdi, v]) => void ctx.pool.db.update("VDI", vdi as string, { name_label: v })),
    message("VDI", "set_name_description", [["self", "VDI ref"], ["value", "string"]], "void", (ctx, [vdi, v]) => void ctx.pool.db.update("VDI", vdi as string, { name_description: v })),
    message("VBD", "create", [["args", "VBD record"]], "VBD ref", (ctx, [args]) => {
      const r = args as XapiRecord;
      if (r.VM === undefined) throw new XapiError("FIELD_TYPE_ERROR", ["VM"]);
      const fields: XapiRecord = {};
      for (const k of ["VM", "VDI", "userdevice", "bootable", "mode", "type", "unpluggable", "empty", "other_config", "qos_algorithm_type", "qos_algorithm_params"]) {
        if (r[k] !== undefined) fields[k] = r[k];
      }
      return ctx.pool.createVbd(fields);
    }, a),
    message("VBD", "destroy", [["self", "VBD ref"]], "void", (ctx, [vbd]) => {
      const rec = ctx.pool.db.get("VBD", vbd as string);
      if (rec.currently_attached === true) throw new XapiError("DEVICE_ALREADY_ATTACHED", [vbd as string]);
      ctx.pool.destroyVbd(vbd as string);
    }, a),
    message("VBD", "plug", [["self", "VBD ref"]], "void", (ctx, [vbd]) => {
      const rec = ctx.pool.db.get("VBD", vbd as string);
      needRunning(ctx, rec.VM as string);
      if (rec.currently_attached === true) throw new XapiError("DEVICE_ALREADY_ATTACHED", [vbd as string]);
      ctx.pool.db.update("VBD", vbd as string, { currently_attached: true });
    }, a),
    message("VBD", "unplug", [["self", "VBD ref"]], "void", (ctx, [vbd]) => {
      const rec = ctx.pool.db.get("VBD", vbd as string);
      needRunning(ctx, rec.VM as string);
      if (rec.currently_attached !== true) throw new XapiError("DEVICE_ALREADY_DETACHED", [vbd as string]);
      ctx.pool.db.update("VBD", vbd as string, { currently_attached: false });
    }, a),
    message("VIF", "create", [["args", "VIF record"]], "VIF ref", (ctx, [args]) => {
      const r = args as XapiRecord;
      if (r.VM === undefined) throw new XapiError("FIELD_TYPE_ERROR", ["VM"]);
      if (r.network === undefined) throw new XapiError("FIELD_TYPE_ERROR", ["network"]);
      const fields: XapiRecord = {};
      for (const k of ["device", "network", "VM", "MAC", "MTU", "other_config", "qos_algorithm_type", "qos_algorithm_params", "locking_mode", "ipv4_allowed", "ipv6_allowed"]) {
        if (r[k] !== undefined) fields[k] = r[k];
      }
      return ctx.pool.createVif(fields);
    }, a),
    message("VIF", "destroy", [["self", "VIF ref"]], "void", (ctx, [vif]) => {
      const rec = ctx.pool.db.get("VIF", vif as string);
      if (rec.currently_attached === true) throw new XapiError("DEVICE_ALREADY_ATTACHED", [vif as string]);
      ctx.pool.destroyVif(vif as string);
    }, a),
    message("VIF", "plug", [["self", "VIF ref"]], "void", (ctx, [vif]) => {
      const rec = ctx.pool.db.get("VIF", vif as string);
      needRunning(ctx, rec.VM as string);
      if (rec.currently_attached === true) throw new XapiError("DEVICE_ALREADY_ATTACHED", [vif as string]);
      ctx.pool.db.update("VIF", vif as string, { currently_attached: true });
    }, a),
    message("VIF", "unplug", [["self", "VIF ref"]], "void", (ctx, [vif]) => {
      const rec = ctx.pool.db.get("VIF", vif as string);
      needRunning(ctx, rec.VM as string);
      if (rec.currently_attached !== true) throw new XapiError("DEVICE_ALREADY_DETACHED", [vif as string]);
      ctx.pool.db.update("VIF", vif as string, { currently_attached: false });
    }, a),
  ];
}
