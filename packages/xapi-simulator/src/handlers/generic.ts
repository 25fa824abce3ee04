// Messages XAPI generates for every class: get_record, get_all, get_all_records(_where), get_by_uuid,
// get_by_name_label, a getter per field and a setter (plus map/set add/remove) per writable field.
import { matchesFilter, parseFilter } from "../db-filter.js";
import { XapiError } from "../errors.js";
import type { MessageDef } from "../registry.js";
import { message } from "../registry.js";
import type { XapiClass } from "../schema.js";
import { CLASS_FIELDS, fieldTypes, isWritable } from "../schema.js";
import { parseType } from "../wire/xapi-type.js";

/** Classes without get_by_name_label in XAPI although they have a name_label field. */
const NO_NAME_LOOKUP = new Set<string>(["pool"]);

/**
 * Fields the datamodel declares read-only but sets through an explicit set_<field> message
 * (datamodel_vm.ml etc.). VM memory sizes other than through set_memory_limits need a halted VM.
 */
const EXPLICIT_SETTERS: Record<string, Record<string, string>> = {
  // field -> the name XAPI gives the object parameter
  VM: {
    HVM_boot_policy: "self",
    domain_type: "self",
    HVM_shadow_multiplier: "self",
    ha_always_run: "self",
    ha_restart_priority: "self",
    memory_static_min: "self",
    memory_static_max: "self",
    memory_dynamic_min: "self",
    memory_dynamic_max: "self",
  },
  VDI: { read_only: "self", sharable: "self" },
  SR: { name_label: "sr", name_description: "sr", physical_size: "self", shared: "sr" },
  VBD: { mode: "self" },
  VIF: { locking_mode: "self", ipv4_allowed: "self", ipv6_allowed: "self" },
  network: { default_locking_mode: "network" },
  task: { status: "self", progress: "self", result: "self", error_info: "self" },
  PBD: { device_config: "self" },
};
const EXPLICIT_COLLECTIONS = new Set(["VIF.ipv4_allowed", "VIF.ipv6_allowed"]);
const NEEDS_HALTED = new Set(["VM.memory_static_min", "VM.memory_static_max", "VM.HVM_boot_policy", "VM.domain_type", "VM.HVM_shadow_multiplier"]);

/** Writable fields whose setters XAPI implements by hand with checks (see vm.ts). */
const CUSTOM_SETTERS = new Set<string>(["VM.set_is_a_template", "VM.set_affinity"]);

/** The generated messages of one class. */
export function genericMessages(cls: XapiClass): MessageDef[] {
  const types = fieldTypes(cls) ?? {};
  const self = [["self", `${cls} ref`]] as const;
  const defs: MessageDef[] = [
    message(cls, "get_record", self, `${cls} record`, (ctx, [ref]) => ctx.pool.db.get(cls, ref as string)),
    message(cls, "get_by_uuid", [["uuid", "string"]], `${cls} ref`, (ctx, [uuid]) => ctx.pool.db.byUuid(cls, uuid as string)),
  ];
  // XAPI lists no sessions: a client sees only its own.
  if (cls !== "session") {
    defs.push(
      message(cls, "get_all", [], `${cls} ref set`, (ctx) => [...ctx.pool.db.all(cls).keys()]),
      message(cls, "get_all_records", [], `(${cls} ref -> ${cls} record) map`, (ctx) => Object.fromEntries(ctx.pool.db.all(cls))),
      // The database layer's filter (db-filter.ts): only the records the expression matches.
      message(cls, "get_all_records_where", [["expr", "string"]], `(${cls} ref -> ${cls} record) map`, (ctx, [expr]) => {
        const filter = parseFilter(expr as string);
        const out: Record<string, unknown> = {};
        for (const [ref, r] of ctx.pool.db.all(cls)) if (matchesFilter(cls, filter, r, types)) out[ref] = r;
        return out;
      }),
    );
  }
  if ("name_label" in types && !NO_NAME_LOOKUP.has(cls)) {
    defs.push(
      message(cls, "get_by_name_label", [["label", "string"]], `${cls} ref set`, (ctx, [label]) => {
        const out: string[] = [];
        for (const [ref, r] of ctx.pool.db.all(cls)) if (r.name_label === label) out.push(ref);
        return out;
      }),
    );
  }
  for (const [field, type] of Object.entries(types)) {
    defs.push(message(cls, `get_${field}`, self, type, (ctx, [ref]) => ctx.pool.db.get(cls, ref as string)[field]));
    const update = (ctx: Parameters<MessageDef["handler"]>[0], ref: string, value: unknown): void => {
      if (cls === "VM") {
        const state = String(ctx.pool.db.get("VM", ref).power_state);
        if (NEEDS_HALTED.has(`VM.${field}`) && state !== "Halted") throw new XapiError("VM_BAD_POWER_STATE", [ref, "halted", state.toLowerCase()]);
        ctx.pool.updateVm(ref, { [field]: value });
      } else ctx.pool.db.update(cls, ref, { [field]: value });
    };
    const explicit = EXPLICIT_SETTERS[cls]?.[field];
    if (!explicit && (!isWritable(cls, field) || CUSTOM_SETTERS.has(`${cls}.set_${field}`))) continue;
    const selfName = explicit ?? "self";
    defs.push(message(cls, `set_${field}`, [[selfName, `${cls} ref`], ["value", type]], "void", (ctx, [ref, value]) => update(ctx, ref as string, value)));
    // Explicit setters come with add/remove only where XAPI declares them (VIF's address sets).
    if (explicit && !EXPLICIT_COLLECTIONS.has(`${cls}.${field}`)) continue;
    const t = parseType(type);
    if (t.k === "map") {
      const keyType = type.slice(1, type.indexOf(" -> "));
      const valueType = type.slice(type.indexOf(" -> ") + 4, type.lastIndexOf(")"));
      defs.push(
        message(cls, `add_to_${field}`, [[selfName, `${cls} ref`], ["key", keyType], ["value", valueType]], "void", (ctx, [ref, key, value]) => {
          const current = ctx.pool.db.get(cls, ref as string)[field] as Record<string, unknown>;
          if (Object.hasOwn(current, key as string)) {
            throw new XapiError("MAP_DUPLICATE_KEY", [cls, field, String(ctx.pool.db.get(cls, ref as string).uuid), String(key)]);
          }
          update(ctx, ref as string, { ...current, [key as string]: value });
        }),
        message(cls, `remove_from_${field}`, [[selfName, `${cls} ref`], ["key", keyType]], "void", (ctx, [ref, key]) => {
          const next = { ...(ctx.pool.db.get(cls, ref as string)[field] as Record<string, unknown>) };
          delete next[key as string];
          update(ctx, ref as string, next);
        }),
      );
    } else if (t.k === "set") {
      const itemType = type.slice(0, -4);
      defs.push(
        message(cls, `add_${field}`, [[selfName, `${cls} ref`], ["value", itemType]], "void", (ctx, [ref, value]) => {
          const current = ctx.pool.db.get(cls, ref as string)[field] as unknown[];
          if (!current.includes(value)) update(ctx, ref as string, [...current, value]);
        }),
        message(cls, `remove_${field}`, [[selfName, `${cls} ref`], ["value", itemType]], "void", (ctx, [ref, value]) => {
          update(ctx, ref as string, (ctx.pool.db.get(cls, ref as string)[field] as unknown[]).filter((v) => v !== value));
        }),
      );
    }
  }
  return defs;
}

/** Generated messages of every held class. */
export function allGenericMessages(): MessageDef[] {
  return (Object.keys(CLASS_FIELDS) as XapiClass[]).flatMap(genericMessages);
}
