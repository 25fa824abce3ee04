// One simulated pool: its database, sessions, hosts, storage and the helpers the message handlers
// share (VM operation bookkeeping, disks, devices). A simulator holds two pools (see world.ts).
import { randomUUID } from "node:crypto";
import { XapiError } from "./errors.js";
import type { XapiRecord } from "./database.js";
import { Database, NULL_REF, xapiDate } from "./database.js";
import { DiskContent } from "./disk.js";
import { DomainCpu } from "./domain-cpu.js";
import type { PowerState } from "./schema.js";
import type { CallContext } from "./registry.js";
import type { VmOperation } from "./vm-lifecycle.js";
import { allowedOperations, operationError } from "./vm-lifecycle.js";
import type { World } from "./world.js";
import { crashVm } from "./handlers/vm.js";

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;

/** How a pool is laid out. */
export interface PoolLayout {
  readonly name: string;
  readonly hosts: number;
  /** The hosts' addresses, master first (HOST_IS_SLAVE names the master's). */
  readonly addresses: readonly string[];
  /** Pool 1 has shared storage (pool_migrate without moving disks); pool 2 local storage. */
  readonly sharedStorage: boolean;
  readonly srSize: number;
  readonly hostMemory: number;
  readonly hostCpus: number;
}

/** One pool of the simulator. */
export class XapiPool {
  readonly db = new Database();
  readonly disks = new Map<string, DiskContent>();
  readonly hosts: string[] = [];
  readonly poolRef: string;
  readonly srRef: string;
  readonly networkRef: string;
  private readonly sessionUsers = new Map<string, string>();
  private readonly domids = new Map<string, number>();
  /** CPU time of each VM's domain (GET /vm_rrd, VM.query_data_source). */
  readonly cpu = new DomainCpu();

  constructor(
    readonly world: World,
    readonly layout: PoolLayout,
  ) {
    const db = this.db;
    this.networkRef = db.create("network", {
      name_label: "Pool-wide network associated with eth0",
      name_description: "",
      bridge: "xenbr0",
      MTU: 1500,
      managed: true,
      default_locking_mode: "unlocked",
      other_config: {},
    });
    this.srRef = db.create("SR", {
      name_label: layout.sharedStorage ? "Shared storage (simulated NFS)" : "Local storage",
      name_description: layout.sharedStorage ? "NFS SR seen by every host of the pool" : "",
      type: layout.sharedStorage ? "nfs" : "lvm",
      content_type: "user",
      shared: layout.sharedStorage,
      physical_size: layout.srSize,
      physical_utilisation: 0,
      virtual_allocation: 0,
      allowed_operations: ["vdi_create", "vdi_destroy", "vdi_clone", "vdi_snapshot", "scan"],
      other_config: {},
      sm_config: {},
    });
    for (let i = 0; i < layout.hosts; i++) {
      const metrics = db.create("host_metrics", {
        memory_total: layout.hostMemory,
        memory_free: layout.hostMemory - 2 * GiB,
        live: true,
        last_updated: xapiDate(),
      });
      const hostname = `${layout.name}-host${i + 1}`;
      const host = db.create("host", {
        name_label: hostname,
        name_description: "simulated XAPI host",
        hostname,
        address: layout.addresses[i] ?? layout.addresses[0] ?? "127.0.0.1",
        API_version_major: 2,
        API_version_minor: 21,
        API_version_vendor: "XenSource",
        software_version: {
          product_version: "8.4.0",
          product_brand: "XCP-ng",
          platform_name: "XCP",
          xen: "4.17.5",
          xapi: "25.6",
          hostname,
        },
        capabilities: ["xen-3.0-x86_64", "hvm-3.0-x86_32", "hvm-3.0-x86_64"],
        cpu_info: { cpu_count: String(layout.hostCpus), socket_count: "1", vendor: "GenuineIntel", speed: "2400.000", modelname: "Simulated CPU" },
        sched_policy: "credit",
        supported_bootloaders: ["pygrub", "eliloader"],
        metrics,
        enabled: true,
        memory_overhead: 0,
        edition: "xcp-ng",
        allowed_operations: ["provision", "evacuate", "reboot", "shutdown", "vm_start", "vm_resume", "vm_migrate"],
      });
      this.hosts.push(host);
      this.domids.set(host, 1);
      this.createControlDomain(host, hostname);
      const pbd = db.create("PBD", {
        host,
        SR: this.srRef,
        device_config: layout.sharedStorage ? { server: "nfs.sim", serverpath: "/sr" } : { device: "/dev/sda3" },
        currently_attached: true,
      });
      db.update("host", host, { PBDs: [pbd] });
      db.update("SR", this.srRef, { PBDs: [...(db.get("SR", this.srRef).PBDs as string[]), pbd] });
    }
    this.poolRef = db.create("pool", {
      name_label: layout.name,
      name_description: "simulated pool",
      master: this.hosts[0],
      default_SR: this.srRef,
      suspend_image_SR: this.srRef,
      crash_dump_SR: this.srRef,
      other_config: {},
    });
    this.seedTemplates();
  }

  /** Every XAPI host lists its dom0 among the VMs: is_control_domain, running, domid 0. */
  private createControlDomain(host: string, hostname: string): void {
    const GiB2 = 2 * GiB;
    const ref = this.createVm({
      name_label: `Control domain on host: ${hostname}`,
      name_description: "The domain which manages physical devices and manages other domains",
      is_control_domain: true,
      power_state: "Running",
      resident_on: host,
      domid: 0,
      domain_type: "pv",
      memory_static_max: GiB2,
      memory_dynamic_max: GiB2,
      memory_dynamic_min: GiB2,
      memory_static_min: GiB2,
      memory_target: GiB2,
      VCPUs_max: 4,
      VCPUs_at_startup: 4,
      actions_after_shutdown: "destroy",
      actions_after_reboot: "destroy",
      actions_after_crash: "destroy",
      other_config: { storage_driver_domain: "" },
    });
    this.db.update("host", host, { resident_VMs: [...(this.db.get("host", host).resident_VMs as string[]), ref] });
  }

  get master(): string {
    return this.hosts[0] ?? NULL_REF;
  }

  private seedTemplates(): void {
    const base = {
      is_a_template: true,
      is_default_template: true,
      power_state: "Halted",
      memory_static_max: 1 * GiB,
      memory_dynamic_max: 1 * GiB,
      memory_dynamic_min: 512 * MiB,
      memory_static_min: 512 * MiB,
      memory_target: 0,
      VCPUs_max: 1,
      VCPUs_at_startup: 1,
      actions_after_shutdown: "destroy",
      actions_after_reboot: "restart",
      actions_after_crash: "restart",
      HVM_boot_policy: "BIOS order",
      HVM_boot_params: { order: "cd" },
      HVM_shadow_multiplier: 1,
      platform: { acpi: "1", apic: "true", pae: "true", nx: "true", "device-model": "qemu-upstream-compat" },
      domid: -1,
      domain_type: "hvm",
      user_version: 1,
      ha_restart_priority: "",
    };
    this.createVm({
      ...base,
      name_label: "Debian Bookworm 12 (virtkit)",
      name_description: "Simulated template: Debian 12 with the virtkit guest agent",
      other_config: {
        default_template: "true",
        linux_template: "true",
        install_distro: "debianbookworm",
        "install-methods": "cdrom,nfs,http,ftp",
        disks: '<provision><disk device="0" size="1073741824" sr="" bootable="true" type="system"/></provision>',
        mac_seed: randomUUID(),
      },
      recommendations: '<restrictions><restriction field="memory-static-max" max="137438953472"/><restriction field="vcpus-max" max="32"/></restrictions>',
    });
    this.createVm({
      ...base,
      name_label: "Other install media",
      name_description: "Template for a VM installed from media; disks are added by the caller",
      other_config: { default_template: "true", "install-methods": "cdrom", disks: "", mac_seed: randomUUID() },
      recommendations: "",
    });
  }

  // ---- sessions ----

  /** Open a session (credentials are checked by the world; none are kept here). */
  login(user: string, originator: string): string {
    const ref = this.db.create("session", {
      this_host: this.master,
      this_user: NULL_REF,
      last_active: xapiDate(),
      pool: false,
      is_local_superuser: true,
      subject: NULL_REF,
      validation_time: xapiDate(),
      auth_user_name: user,
      originator,
      parent: NULL_REF,
      rbac_permissions: [],
    });
    this.sessionUsers.set(ref, user);
    return ref;
  }

  /** SESSION_INVALID [ref] unless the session is open. */
  checkSession(ref: string): void {
    if (!this.sessionUsers.has(ref)) throw new XapiError("SESSION_INVALID", [ref]);
  }

  logout(ref: string): void {
    this.sessionUsers.delete(ref);
    this.db.destroy("session", ref);
  }

  dropSessions(): void {
    for (const ref of [...this.sessionUsers.keys()]) this.logout(ref);
  }

  /** Open client sessions (pool-internal ones excluded). */
  openSessions(): number {
    let n = 0;
    for (const ref of this.sessionUsers.keys()) if (!this.world.isInternalSession(ref)) n++;
    return n;
  }

  // ---- VMs ----

  /** Insert a VM record with its metrics; allowed_operations computed. */
  createVm(fields: XapiRecord): string {
    const metrics = this.db.create("VM_metrics", {
      memory_actual: 0,
      VCPUs_number: 0,
      install_time: xapiDate(),
      last_updated: xapiDate(),
    });
    const ref = this.db.create("VM", {
      resident_on: NULL_REF,
      affinity: NULL_REF,
      suspend_VDI: NULL_REF,
      snapshot_of: NULL_REF,
      parent: NULL_REF,
      guest_metrics: NULL_REF,
      scheduled_to_be_resident_on: NULL_REF,
      domid: -1,
      domain_type: "hvm",
      power_state: "Halted",
      ...fields,
      metrics,
    });
    const vm = this.db.get("VM", ref);
    this.cpu.transition(ref, { power: "Halted", domid: -1 }, { power: vm.power_state, domid: vm.domid, vcpus: Number(vm.VCPUs_at_startup) });
    this.refreshAllowed(ref);
    return ref;
  }

  /** Change VM fields and recompute allowed_operations in the same event. */
  updateVm(ref: string, patch: XapiRecord): XapiRecord {
    const vm = this.db.get("VM", ref);
    if ("power_state" in patch || "domid" in patch) {
      const before = { power: vm.power_state, domid: vm.domid };
      Object.assign(vm, patch);
      this.cpu.transition(ref, before, { power: vm.power_state, domid: vm.domid, vcpus: Number(vm.VCPUs_at_startup) });
    }
    Object.assign(vm, patch);
    vm.allowed_operations = allowedOperations(ref, vm);
    return this.db.update("VM", ref, {});
  }

  refreshAllowed(ref: string): void {
    const vm = this.db.find("VM", ref);
    if (vm) this.updateVm(ref, {});
  }

  /**
   * Run a VM operation as XAPI does: check it is allowed now, show it in current_operations for
   * its duration (so a concurrent call gets OTHER_OPERATION_IN_PROGRESS), then apply it. State
   * changes happen after the wait, so a cancelled task leaves the VM as it was.
   */
  async vmOperation<T>(ctx: CallContext, ref: string, op: VmOperation, durationMs: number, apply: (vm: XapiRecord) => T | Promise<T>): Promise<T> {
    const vm = this.db.get("VM", ref);
    const error = operationError(ref, vm, op);
    if (error) throw error;
    const opRef = ctx.task?.ref ?? `OpaqueRef:${randomUUID()}`;
    this.updateVm(ref, { current_operations: { ...(vm.current_operations as Record<string, string>), [opRef]: op } });
    try {
      // A long operation's task moves on in tenths, as XAPI's progress does (migrations report it).
      if (ctx.task && durationMs >= 100) {
        for (let i = 1; i <= 10; i++) {
          await ctx.sleep(durationMs / 10);
          if (i < 10 && this.db.find("task", ctx.task.ref)) this.db.update("task", ctx.task.ref, { progress: i / 10 });
        }
      } else await ctx.sleep(durationMs);
      return await apply(this.db.get("VM", ref));
    } finally {
      const now = this.db.find("VM", ref);
      if (now) {
        const ops = { ...(now.current_operations as Record<string, string>) };
        delete ops[opRef];
        this.updateVm(ref, { current_operations: ops });
      }
    }
  }

  /** The guest in this VM crashed. */
  crashVm(ref: string): void {
    crashVm(this, ref);
  }

  powerState(ref: string): PowerState {
    return this.db.get("VM", ref).power_state as PowerState;
  }

  nextDomid(host: string): number {
    const id = this.domids.get(host) ?? 1;
    this.domids.set(host, id + 1);
    return id;
  }

  /** Memory a running VM takes on its host (static max, as XAPI reserves it). */
  vmMemory(vm: XapiRecord): number {
    return Number(vm.memory_static_max);
  }

  hostFreeMemory(host: string): number {
    const metrics = this.db.get("host", host).metrics as string;
    return Number(this.db.get("host_metrics", metrics).memory_free);
  }

  /** Reserve (positive) or release (negative) memory on a host; HOST_NOT_ENOUGH_FREE_MEMORY when short. */
  reserveMemory(host: string, bytes: number): void {
    const metrics = this.db.get("host", host).metrics as string;
    const free = Number(this.db.get("host_metrics", metrics).memory_free);
    if (bytes > free) throw new XapiError("HOST_NOT_ENOUGH_FREE_MEMORY", [String(bytes), String(free)]);
    this.db.update("host_metrics", metrics, { memory_free: free - bytes, last_updated: xapiDate() });
  }

  setResident(vmRef: string, host: string): void {
    const vm = this.db.get("VM", vmRef);
    const old = vm.resident_on as string;
    if (old !== NULL_REF && this.db.has("host", old)) {
      const list = (this.db.get("host", old).resident_VMs as string[]).filter((r) => r !== vmRef);
      this.db.update("host", old, { resident_VMs: list });
    }
    if (host !== NULL_REF) {
      this.db.update("host", host, { resident_VMs: [...(this.db.get("host", host).resident_VMs as string[]), vmRef] });
    }
  }

  /** Attach or detach every device of a VM (on start / halt). */
  setDevicesAttached(vmRef: string, attached: boolean): void {
    const vm = this.db.get("VM", vmRef);
    for (const vbd of vm.VBDs as string[]) if (this.db.has("VBD", vbd)) this.db.update("VBD", vbd, { currently_attached: attached });
    for (const vif of vm.VIFs as string[]) if (this.db.has("VIF", vif)) this.db.update("VIF", vif, { currently_attached: attached });
  }

  // ---- storage ----

  /** Bytes allocated on an SR (thick provisioning: the sum of its VDIs' virtual sizes). */
  private srUsed(sr: string): number {
    return Number(this.db.get("SR", sr).physical_utilisation);
  }

  /** Create a VDI with its contents; SR_FULL [requested, maximum] when it does not fit. */
  createVdi(fields: XapiRecord, content?: DiskContent): string {
    const sr = String(fields.SR ?? NULL_REF);
    const srRec = this.db.get("SR", sr);
    const size = Number(fields.virtual_size ?? 0);
    if (!Number.isFinite(size) || size < 0) throw new XapiError("INVALID_VALUE", ["virtual_size", String(fields.virtual_size)]);
    const used = this.srUsed(sr);
    const max = Number(srRec.physical_size);
    if (used + size > max) throw new XapiError("SR_FULL", [String(used + size), String(max)]);
    const ref = this.db.create("VDI", {
      name_description: "",
      type: "user",
      sharable: false,
      read_only: false,
      managed: true,
      missing: false,
      parent: NULL_REF,
      snapshot_of: NULL_REF,
      allowed_operations: ["clone", "copy", "destroy", "snapshot", "resize"],
      ...fields,
      SR: sr,
      virtual_size: size,
      physical_utilisation: size,
      location: "",
    });
    this.db.update("VDI", ref, { location: this.db.get("VDI", ref).uuid });
    this.disks.set(ref, content ?? new DiskContent(size));
    this.db.update("SR", sr, {
      VDIs: [...(srRec.VDIs as string[]), ref],
      physical_utilisation: used + size,
      virtual_allocation: Number(srRec.virtual_allocation) + size,
    });
    return ref;
  }

  destroyVdi(ref: string): void {
    const vdi = this.db.get("VDI", ref);
    for (const vbd of vdi.VBDs as string[]) {
      const rec = this.db.find("VBD", vbd);
      if (rec?.currently_attached === true) throw new XapiError("VDI_IN_USE", [ref, "destroy"]);
    }
    for (const vbd of vdi.VBDs as string[]) this.destroyVbd(vbd);
    const sr = vdi.SR as string;
    const srRec = this.db.find("SR", sr);
    if (srRec) {
      this.db.update("SR", sr, {
        VDIs: (srRec.VDIs as string[]).filter((r) => r !== ref),
        physical_utilisation: Number(srRec.physical_utilisation) - Number(vdi.virtual_size),
        virtual_allocation: Number(srRec.virtual_allocation) - Number(vdi.virtual_size),
      });
    }
    const of = vdi.snapshot_of as string;
    const parent = this.db.find("VDI", of);
    if (parent) this.db.update("VDI", of, { snapshots: (parent.snapshots as string[]).filter((r) => r !== ref) });
    for (const snap of vdi.snapshots as string[]) if (this.db.has("VDI", snap)) this.db.update("VDI", snap, { snapshot_of: NULL_REF });
    this.disks.delete(ref);
    this.db.destroy("VDI", ref);
  }

  disk(vdi: string): DiskContent {
    const d = this.disks.get(vdi);
    if (!d) throw new XapiError("HANDLE_INVALID", ["VDI", vdi]);
    return d;
  }

  /** Create a VBD joining a VM and a VDI (or an empty drive). */
  createVbd(fields: XapiRecord): string {
    const vmRef = String(fields.VM);
    const vm = this.db.get("VM", vmRef);
    const vdi = String(fields.VDI ?? NULL_REF);
    const empty = fields.empty === true;
    if (!empty) this.db.get("VDI", vdi);
    let userdevice = String(fields.userdevice ?? "autodetect");
    const taken = new Set((vm.VBDs as string[]).map((r) => String(this.db.find("VBD", r)?.userdevice)));
    if (userdevice === "autodetect") {
      let n = 0;
      while (taken.has(String(n))) n++;
      userdevice = String(n);
    } else if (!/^\d+$/.test(userdevice)) {
      throw new XapiError("INVALID_DEVICE", [userdevice]);
    } else if (taken.has(userdevice)) {
      throw new XapiError("DEVICE_ALREADY_EXISTS", [userdevice]);
    }
    const ref = this.db.create("VBD", {
      bootable: false,
      mode: "RW",
      type: "Disk",
      unpluggable: true,
      empty,
      other_config: {},
      qos_algorithm_type: "",
      qos_algorithm_params: {},
      ...fields,
      VM: vmRef,
      VDI: empty ? NULL_REF : vdi,
      userdevice,
      device: "",
      currently_attached: false,
      metrics: NULL_REF,
      allowed_operations: ["attach", "plug", "unplug"],
    });
    this.updateVm(vmRef, { VBDs: [...(vm.VBDs as string[]), ref] });
    if (!empty) this.db.update("VDI", vdi, { VBDs: [...(this.db.get("VDI", vdi).VBDs as string[]), ref] });
    return ref;
  }

  destroyVbd(ref: string): void {
    const vbd = this.db.find("VBD", ref);
    if (!vbd) return;
    const vm = this.db.find("VM", vbd.VM as string);
    if (vm) this.updateVm(vbd.VM as string, { VBDs: (vm.VBDs as string[]).filter((r) => r !== ref) });
    const vdi = this.db.find("VDI", vbd.VDI as string);
    if (vdi) this.db.update("VDI", vbd.VDI as string, { VBDs: (vdi.VBDs as string[]).filter((r) => r !== ref) });
    this.db.destroy("VBD", ref);
  }

  createVif(fields: XapiRecord): string {
    const vmRef = String(fields.VM);
    const vm = this.db.get("VM", vmRef);
    const network = String(fields.network);
    const net = this.db.get("network", network);
    const device = String(fields.device ?? "");
    if (!/^\d+$/.test(device)) throw new XapiError("INVALID_DEVICE", [device]);
    for (const r of vm.VIFs as string[]) if (this.db.find("VIF", r)?.device === device) throw new XapiError("DEVICE_ALREADY_EXISTS", [device]);
    const mac = String(fields.MAC ?? "") || randomMac();
    const ref = this.db.create("VIF", {
      MTU: 1500,
      other_config: {},
      qos_algorithm_type: "",
      qos_algorithm_params: {},
      locking_mode: "network_default",
      ...fields,
      VM: vmRef,
      network,
      device,
      MAC: mac,
      MAC_autogenerated: !fields.MAC,
      currently_attached: false,
      metrics: NULL_REF,
      allowed_operations: ["attach", "plug", "unplug"],
    });
    this.updateVm(vmRef, { VIFs: [...(vm.VIFs as string[]), ref] });
    this.db.update("network", network, { VIFs: [...(net.VIFs as string[]), ref] });
    return ref;
  }

  destroyVif(ref: string): void {
    const vif = this.db.find("VIF", ref);
    if (!vif) return;
    const vm = this.db.find("VM", vif.VM as string);
    if (vm) this.updateVm(vif.VM as string, { VIFs: (vm.VIFs as string[]).filter((r) => r !== ref) });
    const net = this.db.find("network", vif.network as string);
    if (net) this.db.update("network", vif.network as string, { VIFs: (net.VIFs as string[]).filter((r) => r !== ref) });
    this.db.destroy("VIF", ref);
  }

  /** The VM's root disk: the VDI behind the VBD with the lowest userdevice. */
  rootVdi(vmRef: string): string | undefined {
    const vm = this.db.get("VM", vmRef);
    let best: { dev: number; vdi: string } | undefined;
    for (const vbdRef of vm.VBDs as string[]) {
      const vbd = this.db.find("VBD", vbdRef);
      if (!vbd || vbd.empty === true || vbd.type !== "Disk" || !this.db.has("VDI", vbd.VDI as string)) continue;
      const dev = Number(vbd.userdevice);
      if (!best || dev < best.dev) best = { dev, vdi: vbd.VDI as string };
    }
    return best?.vdi;
  }

  /** Open sessions, pending tasks and every non-template VM with its devices and disks. */
  leftovers(): string[] {
    const out: string[] = [];
    const name = this.layout.name;
    for (const [ref, vm] of this.db.all("VM")) {
      if (vm.is_control_domain === true) continue;
      if (vm.is_a_snapshot === true) out.push(`${name}: snapshot ${String(vm.name_label)} (${ref})`);
      else if (vm.is_a_template !== true) out.push(`${name}: VM ${String(vm.name_label)} (${ref})`);
    }
    for (const [ref, vdi] of this.db.all("VDI")) out.push(`${name}: VDI ${String(vdi.name_label)} (${ref})`);
    for (const ref of this.db.all("VBD").keys()) out.push(`${name}: VBD ${ref}`);
    for (const ref of this.db.all("VIF").keys()) out.push(`${name}: VIF ${ref}`);
    for (const [ref, task] of this.db.all("task")) if (task.status === "pending") out.push(`${name}: pending task ${String(task.name_label)} (${ref})`);
    if (this.openSessions() > 0) out.push(`${name}: ${this.openSessions()} session(s) still open`);
    return out;
  }
}

function randomMac(): string {
  const b = [0x02, ...Array.from({ length: 5 }, () => Math.floor(Math.random() * 256))];
  return b.map((x) => x.toString(16).padStart(2, "0")).join(":");
}
