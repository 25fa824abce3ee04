// VM messages: power operations by XAPI's power-state table, clone/copy/provision, snapshot and
// revert, pool_migrate inside a pool and migrate_send across pools.
import { XapiError } from "../errors.js";
import type { XapiRecord } from "../database.js";
import { NULL_REF, xapiDate } from "../database.js";
import type { XapiPool } from "../pool.js";
import type { CallContext, MessageDef } from "../registry.js";
import { message } from "../registry.js";
import type { PowerState } from "../schema.js";
import { lower } from "../vm-lifecycle.js";

const vmParam = [["vm", "VM ref"]] as const;

/** OCaml's string_of_float, as XAPI formats a timeout in VM_SHUTDOWN_TIMEOUT. */
function ocamlFloat(seconds: number): string {
  return Number.isInteger(seconds) ? `${seconds}.` : String(seconds);
}

/** Fields a clone, copy or snapshot takes over from its source. */
function copyable(vm: XapiRecord): XapiRecord {
  const skip = new Set([
    "uuid",
    "allowed_operations",
    "current_operations",
    "VBDs",
    "VIFs",
    "consoles",
    "crash_dumps",
    "VTPMs",
    "snapshots",
    "children",
    "metrics",
    "guest_metrics",
    "resident_on",
    "domid",
    "suspend_VDI",
    "snapshot_of",
    "snapshot_time",
    "is_a_snapshot",
    "is_default_template",
    "power_state",
    // Only a snapshot holds metadata (the VM it was taken of); its clones start without.
    "snapshot_metadata",
  ]);
  const out: XapiRecord = {};
  for (const [k, v] of Object.entries(vm)) if (!skip.has(k)) out[k] = structuredClone(v);
  return out;
}

/** XAPI's refusal of a field change that needs the VM halted. */
function requireHalted(vm: string, rec: XapiRecord): void {
  if (rec.power_state !== "Halted") throw new XapiError("VM_BAD_POWER_STATE", [vm, "halted", lower(rec.power_state as PowerState)]);
}

/** A VBD record copied onto the VM `vm` with the disk `vdi` (clone, copy, cross-pool move). */
function vbdCopy(vbd: XapiRecord, vm: string, vdi: string): XapiRecord {
  return {
    VM: vm,
    VDI: vdi,
    userdevice: vbd.userdevice,
    bootable: vbd.bootable,
    mode: vbd.mode,
    type: vbd.type,
    unpluggable: vbd.unpluggable,
    empty: vdi === NULL_REF,
    other_config: structuredClone(vbd.other_config),
  };
}

function pickHost(pool: XapiPool, vm: XapiRecord, preferred?: string): string {
  const need = pool.vmMemory(vm);
  if (preferred) {
    // start_on / resume_on: that host or nothing.
    const free = pool.hostFreeMemory(preferred);
    if (free < need) throw new XapiError("HOST_NOT_ENOUGH_FREE_MEMORY", [String(need), String(free)]);
    return preferred;
  }
  // Pool-wide placement prefers the affinity host; when no host fits XAPI says NO_HOSTS_AVAILABLE.
  const candidates = [vm.affinity as string, ...pool.hosts].filter((h) => pool.db.has("host", h));
  for (const h of candidates) if (pool.hostFreeMemory(h) >= need) return h;
  throw new XapiError("NO_HOSTS_AVAILABLE", []);
}

/** Bring a domain up on a host (start, resume, reboot's second half). */
function bootOn(pool: XapiPool, ref: string, host: string, paused: boolean, freshBoot: boolean): void {
  const vm = pool.db.get("VM", ref);
  pool.db.get("host", host);
  pool.reserveMemory(host, pool.vmMemory(vm));
  const domid = pool.nextDomid(host);
  pool.setResident(ref, host);
  pool.updateVm(ref, { power_state: paused ? "Paused" : "Running", resident_on: host, domid });
  pool.db.update("VM_metrics", vm.metrics as string, {
    start_time: xapiDate(),
    memory_actual: Number(vm.memory_static_max),
    VCPUs_number: Number(vm.VCPUs_at_startup),
    last_updated: xapiDate(),
  });
  pool.setDevicesAttached(ref, true);
  const guest = pool.world.guestOf(String(vm.uuid));
  if (freshBoot) guest.booted(domid);
  else guest.writeConsole(`[resumed on ${String(pool.db.get("host", host).name_label)} as domain ${domid}]`);
}

/** Take a domain down (halt, suspend, reboot's first half). */
function takeDown(pool: XapiPool, ref: string, to: PowerState): void {
  const vm = pool.db.get("VM", ref);
  const host = vm.resident_on as string;
  if (host !== NULL_REF && pool.db.has("host", host)) pool.reserveMemory(host, -pool.vmMemory(vm));
  pool.setResident(ref, NULL_REF);
  pool.updateVm(ref, { power_state: to, resident_on: NULL_REF, domid: -1 });
  pool.setDevicesAttached(ref, false);
}

function destroySuspendVdi(pool: XapiPool, ref: string): void {
  const vdi = pool.db.get("VM", ref).suspend_VDI as string;
  if (vdi !== NULL_REF && pool.db.has("VDI", vdi)) pool.destroyVdi(vdi);
  pool.updateVm(ref, { suspend_VDI: NULL_REF });
}

/** Halt from any live state. */
function hardHalt(pool: XapiPool, ref: string): void {
  const state = pool.powerState(ref);
  if (state === "Running" || state === "Paused") takeDown(pool, ref, "Halted");
  else if (state === "Suspended") {
    destroySuspendVdi(pool, ref);
    pool.updateVm(ref, { power_state: "Halted" });
  }
}

/**
 * A clean shutdown or reboot: the guest acknowledges and acts, or, ignoring ACPI, does nothing
 * while XAPI waits out its timeout (VM_SHUTDOWN_TIMEOUT). A hard_shutdown meanwhile ends the wait.
 */
async function waitForCleanAction(ctx: CallContext, ref: string): Promise<void> {
  const pool = ctx.pool;
  const guest = pool.world.guestOf(String(pool.db.get("VM", ref).uuid));
  if (!guest.ignoresAcpi) return;
  const timeoutMs = pool.world.options.cleanShutdownTimeoutMs;
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    await ctx.sleep(Math.min(25, deadline - Date.now()));
    const state = pool.powerState(ref);
    if (state !== "Running") throw new XapiError("VM_BAD_POWER_STATE", [ref, "running", lower(state)]);
    if (!guest.ignoresAcpi) return;
  }
  throw new XapiError("VM_SHUTDOWN_TIMEOUT", [ref, ocamlFloat(timeoutMs / 1000)]);
}

/** A running domain crashes: XAPI applies actions_after_crash as xenopsd does (preserve pauses it). */
export function crashVm(pool: XapiPool, ref: string): void {
  const vm = pool.db.get("VM", ref);
  if (vm.power_state !== "Running") throw new Error(`VM ${String(vm.uuid)} is not running`);
  const host = vm.resident_on as string;
  switch (vm.actions_after_crash as string) {
    case "preserve":
      pool.updateVm(ref, { power_state: "Paused" });
      return;
    case "destroy":
    case "coredump_and_destroy":
      takeDown(pool, ref, "Halted");
      return;
    default:
      takeDown(pool, ref, "Halted");
      bootOn(pool, ref, host, false, true);
  }
}

/** Copy a VM (and its disks) inside its pool: clone, copy and snapshot share this. */
function duplicate(pool: XapiPool, ref: string, fields: XapiRecord, disk: (vdi: XapiRecord, vdiRef: string) => { sr: string; fields: XapiRecord } | undefined): string {
  const src = pool.db.get("VM", ref);
  const newRef = pool.createVm({ ...copyable(src), ...fields });
  for (const vbdRef of src.VBDs as string[]) {
    const vbd = pool.db.find("VBD", vbdRef);
    if (!vbd) continue;
    let vdi = NULL_REF;
    if (vbd.empty !== true && pool.db.has("VDI", vbd.VDI as string)) {
      const vdiRec = pool.db.get("VDI", vbd.VDI as string);
      const plan = disk(vdiRec, vbd.VDI as string);
      if (!plan) continue;
      vdi = pool.createVdi(
        {
          name_label: vdiRec.name_label,
          name_description: vdiRec.name_description,
          type: vdiRec.type,
          sharable: vdiRec.sharable,
          read_only: vdiRec.read_only,
          other_config: structuredClone(vdiRec.other_config),
          sm_config: structuredClone(vdiRec.sm_config),
          xenstore_data: structuredClone(vdiRec.xenstore_data),
          virtual_size: vdiRec.virtual_size,
          ...plan.fields,
          SR: plan.sr,
        },
        pool.disk(vbd.VDI as string).clone(),
      );
    }
    pool.createVbd({
      ...vbdCopy(vbd, newRef, vdi),
      qos_algorithm_type: vbd.qos_algorithm_type,
      qos_algorithm_params: structuredClone(vbd.qos_algorithm_params),
    });
  }
  for (const vifRef of src.VIFs as string[]) {
    const vif = pool.db.find("VIF", vifRef);
    if (!vif) continue;
    pool.createVif({
      VM: newRef,
      device: vif.device,
      network: vif.network,
      MAC: vif.MAC_autogenerated === true ? "" : vif.MAC,
      MTU: vif.MTU,
      other_config: structuredClone(vif.other_config),
      qos_algorithm_type: vif.qos_algorithm_type,
      qos_algorithm_params: structuredClone(vif.qos_algorithm_params),
    });
  }
  return newRef;
}

/** Destroy a VM record with its VBDs, VIFs and metrics (not its VDIs, as XAPI). */
function destroyVmRecord(pool: XapiPool, ref: string, withVdis = false): void {
  const vm = pool.db.get("VM", ref);
  destroySuspendVdi(pool, ref);
  const vdis: string[] = [];
  for (const vbd of vm.VBDs as string[]) {
    const v = pool.db.find("VBD", vbd)?.VDI as string | undefined;
    if (v && v !== NULL_REF) vdis.push(v);
    pool.destroyVbd(vbd);
  }
  for (const vif of vm.VIFs as string[]) pool.destroyVif(vif);
  if (withVdis) for (const v of vdis) if (pool.db.has("VDI", v)) pool.destroyVdi(v);
  const of = vm.snapshot_of as string;
  const parent = pool.db.find("VM", of);
  if (parent) pool.updateVm(of, { snapshots: (parent.snapshots as string[]).filter((r) => r !== ref) });
  for (const snap of vm.snapshots as string[]) if (pool.db.has("VM", snap)) pool.updateVm(snap, { snapshot_of: NULL_REF });
  pool.db.destroy("VM_metrics", vm.metrics as string);
  pool.cpu.forget(ref);
  pool.db.destroy("VM", ref);
  if (vm.is_a_snapshot !== true) pool.world.forgetGuestIfGone(String(vm.uuid));
}

/** What VM.revert never copies from a snapshot: identity, live state, devices and relations the VM keeps (XAPI's do_not_copy). */
const REVERT_KEEPS = new Set([
  "uuid",
  "suspend_VDI",
  "power_state",
  "parent",
  "current_operations",
  "allowed_operations",
  "guest_metrics",
  "resident_on",
  "domid",
  "protection_policy",
  "snapshot_schedule",
  "scheduled_to_be_resident_on",
  "snapshots",
  "tags",
  "affinity",
  "consoles",
  "VBDs",
  "VIFs",
  "VGPUs",
  // Relations XAPI derives from other rows rather than storing on the VM.
  "children",
  "crash_dumps",
  "VTPMs",
  "metrics",
]);
/** Without metadata (a snapshot from before XAPI kept it) the snapshot's own record is the source, its snapshot marks left out. */
const REVERT_KEEPS_WITHOUT_METADATA = new Set([
  ...REVERT_KEEPS,
  "name_label",
  "is_a_snapshot",
  "is_a_template",
  "is_default_template",
  "snapshot_of",
  "snapshot_time",
  "transportable_snapshot_id",
  "snapshot_metadata",
]);

/** The fields VM.revert writes onto the VM: the snapshot's metadata (the VM as it was), less what the VM keeps. */
function revertedFields(snap: XapiRecord): XapiRecord {
  let source = snap;
  let keeps = REVERT_KEEPS_WITHOUT_METADATA;
  const metadata = snap.snapshot_metadata;
  if (typeof metadata === "string" && metadata !== "") {
    source = JSON.parse(metadata) as XapiRecord;
    keeps = REVERT_KEEPS;
  }
  const out: XapiRecord = {};
  for (const [k, v] of Object.entries(source)) if (!keeps.has(k)) out[k] = structuredClone(v);
  // XAPI's default_values: a reverted VM is not restarted by HA.
  out.ha_always_run = false;
  return out;
}

function parseProvisionDisks(xml: string): { device: string; size: number; sr: string; bootable: boolean; type: string }[] {
  const out: { device: string; size: number; sr: string; bootable: boolean; type: string }[] = [];
  for (const m of xml.matchAll(/<disk\b([^>]*)\/?>/g)) {
    const attrs = Object.fromEntries([...(m[1] ?? "").matchAll(/(\w+)="([^"]*)"/g)].map((a) => [a[1], a[2]]));
    out.push({ device: attrs.device ?? "0", size: Number(attrs.size ?? 0), sr: attrs.sr ?? "", bootable: attrs.bootable === "true", type: attrs.type ?? "system" });
  }
  return out;
}

interface MigratePlan {
  readonly target: XapiPool;
  readonly host: string;
  readonly vdiMap: Record<string, string>;
  readonly vifMap: Record<string, string>;
}

/** Check a migrate_send request as XAPI's assert_can_migrate does. */
function planMigration(ctx: CallContext, ref: string, dest: Record<string, string>, vdiMap: Record<string, string>, vifMap: Record<string, string>): MigratePlan {
  const pool = ctx.pool;
  const vm = pool.db.get("VM", ref);
  const target = pool.world.poolByMasterUrl(dest.master ?? "");
  if (!target) throw new XapiError("VM_MIGRATE_CONTACT_REMOTE_SERVICE_FAILED", []);
  if (target === pool) throw new XapiError("NOT_IMPLEMENTED", ["VM.migrate_send inside one pool (storage motion) is not simulated"]);
  target.checkSession(dest.session_id ?? "");
  const host = dest.host ?? "";
  target.db.get("host", host);
  for (const vbdRef of vm.VBDs as string[]) {
    const vbd = pool.db.get("VBD", vbdRef);
    if (vbd.empty === true || vbd.type !== "Disk") continue;
    const sr = vdiMap[vbd.VDI as string];
    if (!sr) throw new XapiError("VDI_NOT_IN_MAP", [vbd.VDI as string]);
    target.db.get("SR", sr);
  }
  for (const vifRef of vm.VIFs as string[]) {
    const net = vifMap[vifRef];
    if (!net) throw new XapiError("VIF_NOT_IN_MAP", [vifRef]);
    target.db.get("network", net);
  }
  if (vm.power_state === "Running" || vm.power_state === "Paused") {
    const need = pool.vmMemory(vm);
    const free = target.hostFreeMemory(host);
    if (need > free) throw new XapiError("HOST_NOT_ENOUGH_FREE_MEMORY", [String(need), String(free)]);
  }
  return { target, host, vdiMap, vifMap };
}

/** Recreate a VM (same uuid) with copies of its disks in another pool; returns its new ref. */
function transplant(pool: XapiPool, ref: string, plan: MigratePlan, snapshotOf: string): string {
  const { target } = plan;
  const vm = pool.db.get("VM", ref);
  const fields = copyable(vm);
  delete fields.affinity;
  delete fields.parent;
  const newRef = target.createVm({
    ...fields,
    uuid: vm.uuid,
    is_a_snapshot: vm.is_a_snapshot,
    snapshot_time: vm.snapshot_time,
    snapshot_of: snapshotOf,
    power_state: "Halted",
  });
  for (const vbdRef of vm.VBDs as string[]) {
    const vbd = pool.db.get("VBD", vbdRef);
    let vdi = NULL_REF;
    if (vbd.empty !== true && pool.db.has("VDI", vbd.VDI as string)) {
      const src = pool.db.get("VDI", vbd.VDI as string);
      const base = src.snapshot_of as string;
      const sr = plan.vdiMap[vbd.VDI as string] ?? plan.vdiMap[base] ?? (target.db.get("pool", target.poolRef).default_SR as string);
      vdi = target.createVdi(
        {
          name_label: src.name_label,
          name_description: src.name_description,
          type: src.type,
          sharable: src.sharable,
          read_only: src.read_only,
          other_config: structuredClone(src.other_config),
          sm_config: {},
          xenstore_data: structuredClone(src.xenstore_data),
          virtual_size: src.virtual_size,
          is_a_snapshot: src.is_a_snapshot,
          snapshot_time: src.snapshot_time,
          SR: sr,
        },
        pool.disk(vbd.VDI as string).clone(),
      );
    }
    target.createVbd(vbdCopy(vbd, newRef, vdi));
  }
  for (const vifRef of vm.VIFs as string[]) {
    const vif = pool.db.get("VIF", vifRef);
    target.createVif({
      VM: newRef,
      device: vif.device,
      network: plan.vifMap[vifRef] ?? target.networkRef,
      MAC: vif.MAC,
      MTU: vif.MTU,
      other_config: structuredClone(vif.other_config),
      qos_algorithm_type: vif.qos_algorithm_type,
      qos_algorithm_params: structuredClone(vif.qos_algorithm_params),
    });
  }
  return newRef;
}

function freeDevices(pool: XapiPool, vm: string, cls: "VBD" | "VIF", field: string, count: number): string[] {
  const rec = pool.db.get("VM", vm);
  const taken = new Set((rec[`${cls}s`] as string[]).map((r) => String(pool.db.find(cls, r)?.[field])));
  return Array.from({ length: count }, (_, i) => String(i)).filter((d) => !taken.has(d));
}

/** VM messages. */
export function vmMessages(): MessageDef[] {
  const opMs = (ctx: CallContext): number => ctx.pool.world.options.operationMs;
  const migMs = (ctx: CallContext): number => Math.max(ctx.pool.world.options.operationMs, ctx.pool.world.faults.migrationMs);
  const start = (ctx: CallContext, ref: string, paused: boolean, host?: string): Promise<void> =>
    ctx.pool.vmOperation(ctx, ref, host ? "start_on" : "start", opMs(ctx), (vm) => {
      if (host) ctx.pool.db.get("host", host);
      bootOn(ctx.pool, ref, pickHost(ctx.pool, vm, host), paused, true);
    });
  const resume = (ctx: CallContext, ref: string, paused: boolean, host?: string): Promise<void> =>
    ctx.pool.vmOperation(ctx, ref, host ? "resume_on" : "resume", opMs(ctx), (vm) => {
      if (host) ctx.pool.db.get("host", host);
      const target = pickHost(ctx.pool, vm, host);
      destroySuspendVdi(ctx.pool, ref);
      ctx.pool.updateVm(ref, { power_state: "Halted" });
      bootOn(ctx.pool, ref, target, paused, false);
    });
  const asyncOpts = { async: true } as const;
  return [
    message("VM", "start", [...vmParam, ["start_paused", "bool"], ["force", "bool"]], "void", (ctx, [vm, paused]) => start(ctx, vm as string, paused as boolean), asyncOpts),
    message(
      "VM",
      "start_on",
      [...vmParam, ["host", "host ref"], ["start_paused", "bool"], ["force", "bool"]],
      "void",
      (ctx, [vm, host, paused]) => start(ctx, vm as string, paused as boolean, host as string),
      asyncOpts,
    ),
    message(
      "VM",
      "clean_shutdown",
      vmParam,
      "void",
      (ctx, [vm]) =>
        ctx.pool.vmOperation(ctx, vm as string, "clean_shutdown", opMs(ctx), async () => {
          await waitForCleanAction(ctx, vm as string);
          takeDown(ctx.pool, vm as string, "Halted");
        }),
      asyncOpts,
    ),
    message(
      "VM",
      "shutdown",
      vmParam,
      "void",
      (ctx, [vm]) =>
        ctx.pool.vmOperation(ctx, vm as string, "shutdown", opMs(ctx), async (rec) => {
          // Clean first; a guest that does not comply is then halted hard, as XAPI does.
          if (rec.power_state === "Running") {
            await waitForCleanAction(ctx, vm as string).catch((e: unknown) => {
              if (e instanceof XapiError && e.code === "TASK_CANCELLED") throw e;
            });
          }
          hardHalt(ctx.pool, vm as string);
        }),
      asyncOpts,
    ),
    message("VM", "hard_shutdown", vmParam, "void", (ctx, [vm]) => ctx.pool.vmOperation(ctx, vm as string, "hard_shutdown", opMs(ctx), () => hardHalt(ctx.pool, vm as string)), asyncOpts),
    message(
      "VM",
      "clean_reboot",
      vmParam,
      "void",
      (ctx, [vm]) =>
        ctx.pool.vmOperation(ctx, vm as string, "clean_reboot", opMs(ctx), async (rec) => {
          await waitForCleanAction(ctx, vm as string);
          const host = rec.resident_on as string;
          takeDown(ctx.pool, vm as string, "Halted");
          bootOn(ctx.pool, vm as string, host, false, true);
        }),
      asyncOpts,
    ),
    message(
      "VM",
      "hard_reboot",
      vmParam,
      "void",
      (ctx, [vm]) =>
        ctx.pool.vmOperation(ctx, vm as string, "hard_reboot", opMs(ctx), (rec) => {
          const host = rec.resident_on as string;
          takeDown(ctx.pool, vm as string, "Halted");
          bootOn(ctx.pool, vm as string, host, false, true);
        }),
      asyncOpts,
    ),
    message("VM", "pause", vmParam, "void", (ctx, [vm]) => ctx.pool.vmOperation(ctx, vm as string, "pause", opMs(ctx), () => void ctx.pool.updateVm(vm as string, { power_state: "Paused" })), asyncOpts),
    message("VM", "unpause", vmParam, "void", (ctx, [vm]) => ctx.pool.vmOperation(ctx, vm as string, "unpause", opMs(ctx), () => void ctx.pool.updateVm(vm as string, { power_state: "Running" })), asyncOpts),
    // The RRD daemon's latest rate of a VM data source (cpu<N>, cpu_usage: utilisation 0..1).
    // XAPI reads it from the host running the domain; a VM without one has no live data source.
    message(
      "VM",
      "query_data_source",
      [
        ["self", "VM ref"],
        ["data_source", "string"],
      ],
      "float",
      (ctx, [vm, name]) => {
        const rec = ctx.pool.db.get("VM", vm as string);
        const cpu = ctx.pool.cpu.sample(vm as string);
        const m = /^cpu(\d+)$/.exec(name as string);
        const known = name === "cpu_usage" || (m !== null && Number(m[1]) < (cpu?.perVcpu.length ?? 0));
        if (!cpu || Number(rec.domid) < 0 || !known) throw new XapiError("INTERNAL_ERROR", [`Rrdd_error(Invalid_data_source ${String(name)})`]);
        return cpu.rate;
      },
    ),
    message(
      "VM",
      "suspend",
      vmParam,
      "void",
      (ctx, [vm]) =>
        ctx.pool.vmOperation(ctx, vm as string, "suspend", opMs(ctx), (rec) => {
          const pool = ctx.pool;
          const sr = pool.db.get("pool", pool.poolRef).suspend_image_SR as string;
          const vdi = pool.createVdi({ name_label: "Suspend image", name_description: `suspend image of ${String(rec.uuid)}`, SR: sr, virtual_size: Number(rec.memory_static_max), type: "suspend" });
          takeDown(pool, vm as string, "Suspended");
          pool.updateVm(vm as string, { suspend_VDI: vdi });
        }),
      asyncOpts,
    ),
    message("VM", "resume", [...vmParam, ["start_paused", "bool"], ["force", "bool"]], "void", (ctx, [vm, paused]) => resume(ctx, vm as string, paused as boolean), asyncOpts),
    message(
      "VM",
      "resume_on",
      [...vmParam, ["host", "host ref"], ["start_paused", "bool"], ["force", "bool"]],
      "void",
      (ctx, [vm, host, paused]) => resume(ctx, vm as string, paused as boolean, host as string),
      asyncOpts,
    ),
    message("VM", "destroy", [["self", "VM ref"]], "void", (ctx, [vm]) => ctx.pool.vmOperation(ctx, vm as string, "destroy", 0, () => destroyVmRecord(ctx.pool, vm as string)), asyncOpts),
    message(
      "VM",
      "clone",
      [...vmParam, ["new_name", "string"]],
      "VM ref",
      (ctx, [vm, name]) =>
        ctx.pool.vmOperation(ctx, vm as string, "clone", opMs(ctx), (rec) => {
          const other = { ...(rec.other_config as Record<string, string>) };
          delete other.default_template;
          return duplicate(ctx.pool, vm as string, { name_label: name, other_config: other, is_a_template: rec.is_a_template, is_default_template: false }, (v) => ({ sr: v.SR as string, fields: {} }));
        }),
      asyncOpts,
    ),
    message(
      "VM",
      "copy",
      [...vmParam, ["new_name", "string"], ["sr", "SR ref"]],
      "VM ref",
      (ctx, [vm, name, sr]) =>
        ctx.pool.vmOperation(ctx, vm as string, "copy", opMs(ctx), (rec) => {
          if (sr !== NULL_REF) ctx.pool.db.get("SR", sr as string);
          const other = { ...(rec.other_config as Record<string, string>) };
          delete other.default_template;
          return duplicate(ctx.pool, vm as string, { name_label: name, other_config: other, is_a_template: rec.is_a_template, is_default_template: false }, (v) => ({
            sr: sr === NULL_REF ? (v.SR as string) : (sr as string),
            fields: {},
          }));
        }),
      asyncOpts,
    ),
    message(
      "VM",
      "provision",
      vmParam,
      "void",
      (ctx, [vm]) =>
        ctx.pool.vmOperation(ctx, vm as string, "provision", opMs(ctx), (rec) => {
          const pool = ctx.pool;
          const other = { ...(rec.other_config as Record<string, string>) };
          const disks = parseProvisionDisks(other.disks ?? "");
          const defaultSr = pool.db.get("pool", pool.poolRef).default_SR as string;
          for (const d of disks) {
            const sr = d.sr ? pool.db.byUuid("SR", d.sr) : defaultSr;
            const vdi = pool.createVdi({ name_label: `${String(rec.name_label)} ${d.device}`, name_description: "Created by template provisioner", SR: sr, virtual_size: d.size, type: d.type === "system" ? "system" : "user" });
            pool.createVbd({ VM: vm, VDI: vdi, userdevice: d.device, bootable: d.bootable, mode: "RW", type: "Disk", empty: false, unpluggable: false });
          }
          delete other.disks;
          pool.updateVm(vm as string, { other_config: other });
        }),
      asyncOpts,
    ),
    message(
      "VM",
      "snapshot",
      [...vmParam, ["new_name", "string"], ["ignore_vdis", "VDI ref set"]],
      "VM ref",
      (ctx, [vm, name, ignore]) =>
        ctx.pool.vmOperation(ctx, vm as string, "snapshot", opMs(ctx), (rec) => {
          const pool = ctx.pool;
          const now = xapiDate();
          // snapshot_metadata: the VM's record as it was, which VM.revert copies back (XAPI keeps
          // it serialised; its format is XAPI's own, so clients treat it as opaque).
          const metadata = JSON.stringify(rec);
          const snap = duplicate(pool, vm as string, { name_label: name, is_a_template: true, is_a_snapshot: true, snapshot_of: vm, snapshot_time: now, snapshot_metadata: metadata }, (v, vdiRef) =>
            (ignore as string[]).includes(vdiRef) ? undefined : { sr: v.SR as string, fields: { is_a_snapshot: true, snapshot_of: vdiRef, snapshot_time: now } },
          );
          for (const vbd of pool.db.get("VM", snap).VBDs as string[]) {
            const snapVdi = pool.db.get("VBD", vbd).VDI as string;
            const base = pool.db.find("VDI", snapVdi)?.snapshot_of as string | undefined;
            if (base && pool.db.has("VDI", base)) pool.db.update("VDI", base, { snapshots: [...(pool.db.get("VDI", base).snapshots as string[]), snapVdi] });
          }
          pool.updateVm(vm as string, { snapshots: [...(rec.snapshots as string[]), snap] });
          return snap;
        }),
      { async: true, defaults: [[]] },
    ),
    message(
      "VM",
      "revert",
      [["snapshot", "VM ref"]],
      "void",
      (ctx, [snapshot]) =>
        ctx.pool.vmOperation(ctx, snapshot as string, "revert", opMs(ctx), (snap) => {
          const pool = ctx.pool;
          const target = snap.snapshot_of as string;
          if (!pool.db.has("VM", target)) throw new XapiError("VM_REVERT_FAILED", [target, snapshot as string]);
          hardHalt(pool, target);
          const vmRec = pool.db.get("VM", target);
          // Replace the VM's disks by copies of the snapshot's, device by device.
          for (const vbdRef of [...(vmRec.VBDs as string[])]) {
            const vbd = pool.db.get("VBD", vbdRef);
            if (vbd.type !== "Disk" || vbd.empty === true) continue;
            const vdi = vbd.VDI as string;
            pool.destroyVbd(vbdRef);
            if (pool.db.has("VDI", vdi) && (pool.db.get("VDI", vdi).VBDs as string[]).length === 0) pool.destroyVdi(vdi);
          }
          for (const vbdRef of snap.VBDs as string[]) {
            const vbd = pool.db.get("VBD", vbdRef);
            if (vbd.type !== "Disk" || vbd.empty === true) continue;
            const src = pool.db.get("VDI", vbd.VDI as string);
            const vdi = pool.createVdi(
              { name_label: src.name_label, name_description: src.name_description, type: src.type, other_config: structuredClone(src.other_config), virtual_size: src.virtual_size, SR: src.SR },
              pool.disk(vbd.VDI as string).clone(),
            );
            pool.createVbd({ VM: target, VDI: vdi, userdevice: vbd.userdevice, bootable: vbd.bootable, mode: vbd.mode, type: "Disk", empty: false, unpluggable: vbd.unpluggable });
          }
          // The VM's fields go back to the snapshot's (xapi_vm_snapshot.ml revert_vm_fields), its
          // parent becomes the snapshot, and its power state is the snapshot's (Halted).
          pool.updateVm(target, { ...revertedFields(snap), parent: snapshot, power_state: snap.power_state ?? "Halted" });
        }),
      asyncOpts,
    ),
    message(
      "VM",
      "pool_migrate",
      [...vmParam, ["host", "host ref"], ["options", "(string -> string) map"]],
      "void",
      (ctx, [vm, host]) => {
        const pool = ctx.pool;
        pool.db.get("host", host as string);
        return pool.vmOperation(ctx, vm as string, "pool_migrate", migMs(ctx), (rec) => {
          for (const vbd of rec.VBDs as string[]) {
            const vdi = pool.db.find("VDI", pool.db.get("VBD", vbd).VDI as string);
            if (vdi && pool.db.get("SR", vdi.SR as string).shared !== true && rec.resident_on !== host) {
              throw new XapiError("VM_REQUIRES_SR", [vm as string, vdi.SR as string]);
            }
          }
          const need = pool.vmMemory(rec);
          if (rec.resident_on !== host && pool.hostFreeMemory(host as string) < need) {
            throw new XapiError("HOST_NOT_ENOUGH_FREE_MEMORY", [String(need), String(pool.hostFreeMemory(host as string))]);
          }
          const paused = rec.power_state === "Paused";
          takeDown(pool, vm as string, "Halted");
          bootOn(pool, vm as string, host as string, paused, false);
        });
      },
      asyncOpts,
    ),
    message(
      "VM",
      "assert_can_migrate",
      [
        ...vmParam,
        ["dest", "(string -> string) map"],
        ["live", "bool"],
        ["vdi_map", "(VDI ref -> SR ref) map"],
        ["vif_map", "(VIF ref -> network ref) map"],
        ["options", "(string -> string) map"],
        ["vgpu_map", "(VGPU ref -> GPU_group ref) map"],
      ],
      "void",
      (ctx, [vm, dest, , vdiMap, vifMap]) => {
        const rec = ctx.pool.db.get("VM", vm as string);
        const allowed = ["Halted", "Suspended", "Running"];
        if (!allowed.includes(rec.power_state as string)) throw new XapiError("VM_BAD_POWER_STATE", [vm as string, "halted, suspended, running", lower(rec.power_state as PowerState)]);
        planMigration(ctx, vm as string, dest as Record<string, string>, vdiMap as Record<string, string>, vifMap as Record<string, string>);
      },
      { async: true, defaults: [{}] },
    ),
    message(
      "VM",
      "migrate_send",
      [
        ...vmParam,
        ["dest", "(string -> string) map"],
        ["live", "bool"],
        ["vdi_map", "(VDI ref -> SR ref) map"],
        ["vif_map", "(VIF ref -> network ref) map"],
        ["options", "(string -> string) map"],
        ["vgpu_map", "(VGPU ref -> GPU_group ref) map"],
      ],
      "VM ref",
      (ctx, [vm, dest, , vdiMap, vifMap]) => {
        const pool = ctx.pool;
        const d = dest as Record<string, string>;
        return pool.vmOperation(ctx, vm as string, "migrate_send", migMs(ctx), (rec) => {
          const plan = planMigration(ctx, vm as string, d, vdiMap as Record<string, string>, vifMap as Record<string, string>);
          const { target } = plan;
          const newRef = transplant(pool, vm as string, plan, NULL_REF);
          for (const snap of rec.snapshots as string[]) {
            if (!pool.db.has("VM", snap)) continue;
            const snapRef = transplant(pool, snap, plan, newRef);
            target.updateVm(newRef, { snapshots: [...(target.db.get("VM", newRef).snapshots as string[]), snapRef] });
          }
          const state = rec.power_state as PowerState;
          if (state === "Running" || state === "Paused") {
            takeDown(pool, vm as string, "Halted");
            bootOn(target, newRef, plan.host, state === "Paused", false);
          } else if (state === "Suspended") {
            const sr = target.db.get("pool", target.poolRef).suspend_image_SR as string;
            const vdi = target.createVdi({ name_label: "Suspend image", SR: sr, virtual_size: Number(rec.memory_static_max), type: "suspend" });
            target.updateVm(newRef, { power_state: "Suspended", suspend_VDI: vdi });
          }
          for (const snap of rec.snapshots as string[]) if (pool.db.has("VM", snap)) destroyVmRecord(pool, snap, true);
          destroyVmRecord(pool, vm as string, true);
          target.logout(d.session_id ?? "");
          return newRef;
        });
      },
      { async: true, defaults: [{}] },
    ),
    message(
      "VM",
      "set_memory_limits",
      [
        ["self", "VM ref"],
        ["static_min", "int"],
        ["static_max", "int"],
        ["dynamic_min", "int"],
        ["dynamic_max", "int"],
      ],
      "void",
      (ctx, [vm, smin, smax, dmin, dmax]) => {
        const rec = ctx.pool.db.get("VM", vm as string);
        requireHalted(vm as string, rec);
        const [a, b, c, d] = [smin, dmin, dmax, smax] as number[];
        if (!(a! <= b! && b! <= c! && c! <= d!)) {
          throw new XapiError("MEMORY_CONSTRAINT_VIOLATION", ["Memory limits must satisfy: static_min <= dynamic_min <= dynamic_max <= static_max"]);
        }
        ctx.pool.updateVm(vm as string, { memory_static_min: smin, memory_static_max: smax, memory_dynamic_min: dmin, memory_dynamic_max: dmax });
      },
      asyncOpts,
    ),
    message(
      "VM",
      "set_VCPUs_max",
      [
        ["self", "VM ref"],
        ["value", "int"],
      ],
      "void",
      (ctx, [vm, value]) => {
        const rec = ctx.pool.db.get("VM", vm as string);
        requireHalted(vm as string, rec);
        if ((value as number) < 1) throw new XapiError("VALUE_NOT_SUPPORTED", ["VCPU values", String(value), "value must be positive"]);
        const patch: XapiRecord = { VCPUs_max: value };
        if (Number(rec.VCPUs_at_startup) > (value as number)) patch.VCPUs_at_startup = value;
        ctx.pool.updateVm(vm as string, patch);
      },
      asyncOpts,
    ),
    message(
      "VM",
      "set_VCPUs_at_startup",
      [
        ["self", "VM ref"],
        ["value", "int"],
      ],
      "void",
      (ctx, [vm, value]) => {
        const rec = ctx.pool.db.get("VM", vm as string);
        requireHalted(vm as string, rec);
        if ((value as number) < 1 || (value as number) > Number(rec.VCPUs_max)) {
          throw new XapiError("VALUE_NOT_SUPPORTED", ["VCPU values", String(value), "value must be between 1 and VCPUs_max"]);
        }
        ctx.pool.updateVm(vm as string, { VCPUs_at_startup: value });
      },
      asyncOpts,
    ),
    message(
      "VM",
      "set_is_a_template",
      [
        ["self", "VM ref"],
        ["value", "bool"],
      ],
      "void",
      (ctx, [vm, value]) => {
        const rec = ctx.pool.db.get("VM", vm as string);
        if (value === true) requireHalted(vm as string, rec);
        ctx.pool.updateVm(vm as string, { is_a_template: value });
      },
    ),
    // XAPI offers 0-15 for disks and 0-6 for network devices of an HVM guest.
    message("VM", "get_allowed_VBD_devices", vmParam, "string set", (ctx, [vm]) => freeDevices(ctx.pool, vm as string, "VBD", "userdevice", 16)),
    message("VM", "get_allowed_VIF_devices", vmParam, "string set", (ctx, [vm]) => freeDevices(ctx.pool, vm as string, "VIF", "device", 7)),
    message(
      "VM",
      "set_actions_after_crash",
      [
        ["self", "VM ref"],
        ["value", "enum on_crash_behaviour"],
      ],
      "void",
      (ctx, [vm, value]) => {
        const allowed = ["destroy", "coredump_and_destroy", "restart", "coredump_and_restart", "preserve", "rename_restart"];
        if (!allowed.includes(value as string)) throw new XapiError("FIELD_TYPE_ERROR", ["value"]);
        ctx.pool.updateVm(vm as string, { actions_after_crash: value });
      },
    ),
    message(
      "VM",
      "set_affinity",
      [
        ["self", "VM ref"],
        ["value", "host ref"],
      ],
      "void",
      (ctx, [vm, host]) => {
        if (host !== NULL_REF) ctx.pool.db.get("host", host as string);
        ctx.pool.updateVm(vm as string, { affinity: host });
      },
    ),
  ];
}
