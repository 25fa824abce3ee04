/**
 * Domain XML: written from the instance, flavor, image meta and network info; read back for the
 * few facts the driver needs (disk paths, virtkit metadata, the XML kept for unrescue).
 * Every value is escaped, whatever validation ran before.
 */
import {
  InvalidInputError,
  type ImageMeta,
  type ImageProperties,
  type Instance,
  type NetworkInfo,
} from "@virtkit/core";
import { imagePropertyTrue } from "./validate.js";
import { child, children, escapeXml, parseXml, path, serializeXml, type XmlElement } from "./xml.js";

/** The XML namespace of virtkit's `<metadata>` element. */
export const VIRTKIT_XMLNS = "https://virtkit.dev/xmlns/libvirt/instance/1.0";
const PREFIX = "virtkit";

/** One disk of the domain. */
export interface DiskSpec {
  /** Host path of the volume (from the storage pool). */
  readonly path: string;
  /** On-disk format (`qcow2`, `raw`). */
  readonly format: string;
  /** Target device (`vda`, `sdb`, ...); derived from the bus and index when absent. */
  readonly target?: string;
  readonly readOnly?: boolean;
  /** libvirt's disk source type (`file`, `block`, `network`): picks the cache mode. Default `file`. */
  readonly sourceType?: string;
}

/** Nova's `[libvirt]cpu_mode`. `maximum` is not Nova's; libvirt's TCG-friendly mode is not offered. */
export type CpuMode = "host-model" | "host-passthrough" | "custom" | "none";

/** The guest CPU as Nova's `_get_guest_cpu_model_config` chooses it (resolved by {@link guestCpuConfig}). */
export interface GuestCpu {
  readonly mode: CpuMode;
  /** `custom` only: the model (Nova's first `cpu_models` entry). */
  readonly model?: string;
}

/** QEMU's disk cache modes (Nova's `disk_cachemodes` values). */
export const DISK_CACHE_MODES = ["none", "writeback", "writethrough", "directsync", "unsafe", "default"] as const;
/** One of {@link DISK_CACHE_MODES}. */
export type DiskCacheMode = (typeof DISK_CACHE_MODES)[number];

/** The SMBIOS system identity the guest sees (Nova's `_get_guest_config_sysinfo`). */
export interface GuestSysinfo {
  readonly manufacturer: string;
  readonly product: string;
  readonly version?: string;
  /** Default: the instance uuid (Nova's `sysinfo_serial = unique`). */
  readonly serial?: string;
  /** Default `Virtual Machine`. */
  readonly family?: string;
}

/**
 * Nova's vendor and product strings: cloud-init's OpenStack data source recognises the cloud by
 * the DMI product name `OpenStack Nova` (or `OpenStack Compute`), so a guest of virtkit finds its
 * metadata service as it would under Nova.
 */
export const DEFAULT_SYSINFO: GuestSysinfo = Object.freeze({
  manufacturer: "OpenStack Foundation",
  product: "OpenStack Nova",
});

/**
 * The libvirt domain name of an instance: stable, unique on the host and independent of the
 * display name (which may repeat and may change). Nova names domains from its integer id
 * (`instance-%08x`); virtkit's instances have no integer id, so the uuid stands in, as with
 * Nova's own `instance_name_template = instance-%(uuid)s`. The display name stays in `<title>`
 * and virtkit's metadata.
 */
export function domainName(instance: Pick<Instance, "uuid">): string {
  return `instance-${instance.uuid}`;
}

/** Domain names {@link domainName} produces, with the uuid captured. */
export const DOMAIN_NAME_PATTERN = /^instance-([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$/;

/**
 * The guest CPU for the driver's configuration, as Nova's `_get_guest_cpu_model_config` decides
 * it for kvm/qemu: `host-model` when no mode is set (`host-passthrough` on aarch64, where
 * libvirt cannot describe the host CPU), `custom` needs a model, models only with `custom`.
 * `host-passthrough` needs KVM: QEMU under TCG (virt type `qemu`) has no host CPU to pass
 * through (libvirt's domain capabilities say `supported='no'`), so it is refused up front
 * instead of failing at every start. Other virt types get no `<cpu>` (Nova returns none).
 * Throws `InvalidInputError` for an impossible configuration.
 */
export function guestCpuConfig(
  virtType: string,
  arch: string,
  options: { readonly cpuMode?: CpuMode; readonly cpuModels?: readonly string[] } = {},
): GuestCpu | undefined {
  if (virtType !== "kvm" && virtType !== "qemu") return undefined;
  const models = options.cpuModels ?? [];
  const mode = options.cpuMode ?? (arch === "aarch64" ? "host-passthrough" : "host-model");
  if (!["host-model", "host-passthrough", "custom", "none"].includes(mode)) {
    throw new InvalidInputError("cpuMode", "must be host-model, host-passthrough, custom or none");
  }
  if (models.some((m) => typeof m !== "string" || !/^[A-Za-z0-9._-]{1,64}$/.test(m))) {
    throw new InvalidInputError("cpuModels", "must be CPU model names (letters, digits, . _ -)");
  }
  if (mode !== "custom" && models.length > 0) {
    throw new InvalidInputError("cpuModels", "can only be given with cpuMode custom");
  }
  if (mode === "custom" && models.length === 0) {
    if (arch === "aarch64") return { mode, model: "max" };
    throw new InvalidInputError("cpuModels", "cpuMode custom needs at least one CPU model");
  }
  if (mode === "host-passthrough" && virtType === "qemu") {
    throw new InvalidInputError(
      "cpuMode",
      "host-passthrough needs KVM (virt type kvm); QEMU under TCG has no host CPU",
    );
  }
  return mode === "custom" ? { mode, model: models[0] as string } : { mode };
}

/**
 * Nova's `disk_cachemodes` (`file=directsync,block=none`) parsed into source type → mode;
 * throws `InvalidInputError` for an unknown source type or mode.
 */
export function parseDiskCacheModes(entries: readonly string[] | undefined): ReadonlyMap<string, DiskCacheMode> {
  const out = new Map<string, DiskCacheMode>();
  for (const entry of entries ?? []) {
    const [type, mode, extra] = String(entry).split("=");
    if (extra !== undefined || !type || !["file", "block", "network", "volume"].includes(type)) {
      throw new InvalidInputError("diskCachemodes", `"${String(entry)}" is not <file|block|network|volume>=<mode>`);
    }
    if (!(DISK_CACHE_MODES as readonly string[]).includes(mode ?? "")) {
      throw new InvalidInputError("diskCachemodes", `cache mode must be one of ${DISK_CACHE_MODES.join(", ")}`);
    }
    out.set(type, mode as DiskCacheMode);
  }
  return out;
}

/** Everything {@link buildDomainXml} needs. */
export interface DomainSpec {
  /** `<domain type>`: `qemu`, `kvm`, `test`, `xen`, ... */
  readonly virtType: string;
  readonly instance: Instance;
  /** Defaults to `instance.imageMeta`. */
  readonly imageMeta?: ImageMeta;
  /** Disks in boot order (the first one boots). */
  readonly disks: readonly DiskSpec[];
  readonly networkInfo?: NetworkInfo;
  /** File the serial console is logged to (on the hypervisor host), if any. */
  readonly consoleLogPath?: string;
  /** Guest architecture; defaults to the image's `architecture` or `x86_64`. */
  readonly arch?: string;
  /** While rescued: the domain XML to restore on unrescue, kept in the metadata. */
  readonly rescueOriginalXml?: string;
  /** Which spawn defined the domain: a failed spawn's cleanup removes only its own domain. */
  readonly spawnId?: string;
  /**
   * Boot this kernel directly (no boot loader). Wins over the image properties; a driver that
   * resolves Nova's `kernel_id` / `ramdisk_id` to volumes passes their paths here.
   */
  readonly directBoot?: DirectKernelBoot;
  /** The guest CPU ({@link guestCpuConfig}); none: no `<cpu>` element. */
  readonly cpu?: GuestCpu;
  /**
   * Cache mode of the instance's disks (Nova's `disk_cachemode`: `none` where the storage
   * supports O_DIRECT, else `writeback`); none: libvirt's default.
   */
  readonly diskCache?: DiskCacheMode;
  /** Per source type overrides (Nova's `disk_cachemodes`), winning over `diskCache`. */
  readonly diskCacheModes?: ReadonlyMap<string, DiskCacheMode>;
  /** SMBIOS identity for kvm/qemu x86 guests; default {@link DEFAULT_SYSINFO}. */
  readonly sysinfo?: GuestSysinfo;
}

/** A kernel (and initrd, command line) QEMU loads itself, like `-kernel/-initrd/-append`. */
export interface DirectKernelBoot {
  /** Absolute path of the kernel on the hypervisor host. */
  readonly kernelPath: string;
  /** Absolute path of the initrd on the hypervisor host. */
  readonly initrdPath?: string;
  /** The kernel command line. */
  readonly cmdline?: string;
}

/**
 * Image properties for direct kernel boot by path. The kernel and initrd are files on the
 * hypervisor host (not Nova's `kernel_id` / `ramdisk_id`, which name images: resolving those to
 * volumes is the driver's job and arrives as {@link DomainSpec.directBoot}). `os_command_line` is
 * Nova's own property. Only an operator may set the paths: they make the hypervisor read that file
 * into the guest's memory.
 */
export const DIRECT_BOOT_PROPERTIES = {
  kernelPath: "virtkit_kernel_path",
  initrdPath: "virtkit_ramdisk_path",
  cmdline: "os_command_line",
} as const;

function bootPath(props: ImageProperties, key: string): string | undefined {
  const value = props[key];
  if (value === undefined || value === "") return undefined;
  // Absolute and normalised: a relative or `..` path would depend on the daemon's working directory.
  const bad =
    typeof value !== "string" ||
    !value.startsWith("/") ||
    value.includes("\0") ||
    value.split("/").some((segment) => segment === "." || segment === "..");
  if (bad) {
    throw new InvalidInputError(`imageMeta.properties.${key}`, "must be an absolute path without . or .. segments");
  }
  return value;
}

/**
 * The direct kernel boot the image properties ask for, or `undefined` (boot from the first disk).
 * An initrd without a kernel is refused (libvirt would ignore it silently); a command line without
 * a kernel is ignored, as Nova does.
 */
export function directKernelBoot(props: ImageProperties): DirectKernelBoot | undefined {
  const kernelPath = bootPath(props, DIRECT_BOOT_PROPERTIES.kernelPath);
  const initrdPath = bootPath(props, DIRECT_BOOT_PROPERTIES.initrdPath);
  if (kernelPath === undefined) {
    if (initrdPath !== undefined) {
      throw new InvalidInputError(
        `imageMeta.properties.${DIRECT_BOOT_PROPERTIES.initrdPath}`,
        `needs ${DIRECT_BOOT_PROPERTIES.kernelPath} too`,
      );
    }
    return undefined;
  }
  const cmdline = props[DIRECT_BOOT_PROPERTIES.cmdline];
  if (cmdline !== undefined && typeof cmdline !== "string") {
    throw new InvalidInputError(`imageMeta.properties.${DIRECT_BOOT_PROPERTIES.cmdline}`, "must be a string");
  }
  return {
    kernelPath,
    ...(initrdPath !== undefined ? { initrdPath } : {}),
    ...(cmdline !== undefined && cmdline !== "" ? { cmdline } : {}),
  };
}

/** The guest agent's virtio-serial channel name. */
export const GUEST_AGENT_CHANNEL = "org.qemu.guest_agent.0";

function diskPrefix(bus: string): string {
  switch (bus) {
    case "virtio":
      return "vd";
    case "ide":
      return "hd";
    case "xen":
      return "xvd";
    default:
      // scsi, sata, usb
      return "sd";
  }
}

function diskTarget(prefix: string, index: number): string {
  // vda..vdz, then vdaa.. as libvirt names them.
  let s = "";
  let n = index;
  do {
    s = String.fromCharCode(97 + (n % 26)) + s;
    n = Math.floor(n / 26) - 1;
  } while (n >= 0);
  return prefix + s;
}

function attr(name: string, value: string | number): string {
  return ` ${name}='${escapeXml(value)}'`;
}

/** Domain XML for `spec`. The caller validates names; this escapes every value regardless. */
export function buildDomainXml(spec: DomainSpec): string {
  const { instance } = spec;
  const meta = spec.imageMeta ?? instance.imageMeta;
  const props = meta.properties;
  const isTest = spec.virtType === "test";
  const bus = typeof props.hw_disk_bus === "string" && props.hw_disk_bus !== "" ? props.hw_disk_bus : "virtio";
  const arch = spec.arch ?? (typeof props.architecture === "string" ? props.architecture : "x86_64");
  const qemu = spec.virtType === "qemu" || spec.virtType === "kvm";
  const x86 = /^(x86_64|i[3-6]86)$/.test(arch);
  const osType = instance.osType ?? props.os_type;
  const windows = osType === "windows";
  const lines: string[] = [];
  lines.push(`<domain${attr("type", spec.virtType)}>`);
  lines.push(`  <name>${escapeXml(domainName(instance))}</name>`);
  lines.push(`  <uuid>${escapeXml(instance.uuid)}</uuid>`);
  lines.push(`  <title>${escapeXml(instance.hostname ?? instance.name)}</title>`);
  lines.push("  <metadata>");
  lines.push(`    <${PREFIX}:instance xmlns:${PREFIX}='${escapeXml(VIRTKIT_XMLNS)}'>`);
  lines.push(`      <${PREFIX}:uuid>${escapeXml(instance.uuid)}</${PREFIX}:uuid>`);
  lines.push(`      <${PREFIX}:name>${escapeXml(instance.name)}</${PREFIX}:name>`);
  lines.push(`      <${PREFIX}:project>${escapeXml(instance.projectId)}</${PREFIX}:project>`);
  if (instance.userId !== undefined) lines.push(`      <${PREFIX}:user>${escapeXml(instance.userId)}</${PREFIX}:user>`);
  lines.push(
    `      <${PREFIX}:flavor${attr("name", instance.flavor.name)}${attr("memoryMb", instance.flavor.memoryMb)}` +
      `${attr("vcpus", instance.flavor.vcpus)}${attr("rootGb", instance.flavor.rootGb)}/>`,
  );
  if (meta.id !== undefined) lines.push(`      <${PREFIX}:image${attr("id", meta.id)}/>`);
  if (spec.rescueOriginalXml !== undefined) {
    lines.push(`      <${PREFIX}:rescue>${escapeXml(spec.rescueOriginalXml)}</${PREFIX}:rescue>`);
  }
  if (spec.spawnId !== undefined) lines.push(`      <${PREFIX}:spawn>${escapeXml(spec.spawnId)}</${PREFIX}:spawn>`);
  lines.push(`    </${PREFIX}:instance>`);
  lines.push("  </metadata>");
  lines.push(`  <memory unit='MiB'>${escapeXml(instance.flavor.memoryMb)}</memory>`);
  lines.push(`  <currentMemory unit='MiB'>${escapeXml(instance.flavor.memoryMb)}</currentMemory>`);
  lines.push(`  <vcpu>${escapeXml(instance.flavor.vcpus)}</vcpu>`);
  // _get_guest_config_sysinfo: kvm/qemu x86 guests only (SMBIOS is an x86 firmware table).
  const sysinfo = qemu && x86 ? (spec.sysinfo ?? DEFAULT_SYSINFO) : undefined;
  if (sysinfo !== undefined) {
    lines.push("  <sysinfo type='smbios'>");
    lines.push("    <system>");
    lines.push(`      <entry name='manufacturer'>${escapeXml(sysinfo.manufacturer)}</entry>`);
    lines.push(`      <entry name='product'>${escapeXml(sysinfo.product)}</entry>`);
    if (sysinfo.version !== undefined) lines.push(`      <entry name='version'>${escapeXml(sysinfo.version)}</entry>`);
    lines.push(`      <entry name='serial'>${escapeXml(sysinfo.serial ?? instance.uuid)}</entry>`);
    lines.push(`      <entry name='uuid'>${escapeXml(instance.uuid)}</entry>`);
    lines.push(`      <entry name='family'>${escapeXml(sysinfo.family ?? "Virtual Machine")}</entry>`);
    lines.push("    </system>");
    lines.push("  </sysinfo>");
  }
  lines.push("  <os>");
  lines.push(`    <type${attr("arch", arch)}>hvm</type>`);
  const boot = spec.directBoot ?? directKernelBoot(props);
  if (boot !== undefined) {
    lines.push(`    <kernel>${escapeXml(boot.kernelPath)}</kernel>`);
    if (boot.initrdPath !== undefined) lines.push(`    <initrd>${escapeXml(boot.initrdPath)}</initrd>`);
    if (boot.cmdline !== undefined) lines.push(`    <cmdline>${escapeXml(boot.cmdline)}</cmdline>`);
  }
  // SeaBIOS (x86 only) writes to the serial port too, so the console shows something from boot on.
  if (qemu && x86) lines.push("    <bios useserial='yes'/>");
  if (sysinfo !== undefined) lines.push("    <smbios mode='sysinfo'/>");
  lines.push("  </os>");
  if (qemu) {
    // _set_features: ACPI makes a clean (soft) shutdown and reboot possible; Hyper-V
    // enlightenments for Windows; vmcoreinfo for x86 and aarch64 (crash dumps). Nova adds the
    // enlightenments under qemu too, but they are KVM's: QEMU under TCG refuses to start with them
    // ("kernel doesn't allow setting HyperV VP_INDEX", seen here), so only kvm guests get them.
    lines.push("  <features>");
    lines.push("    <acpi/>");
    lines.push("    <apic/>");
    if (windows && spec.virtType === "kvm") {
      lines.push("    <hyperv>");
      lines.push("      <relaxed state='on'/>");
      lines.push("      <vapic state='on'/>");
      lines.push("      <spinlocks state='on' retries='8191'/>");
      lines.push("      <vpindex state='on'/>");
      lines.push("      <runtime state='on'/>");
      lines.push("      <synic state='on'/>");
      lines.push("      <reset state='on'/>");
      lines.push("      <frequencies state='on'/>");
      lines.push("      <tlbflush state='on'/>");
      lines.push("      <ipi state='on'/>");
      lines.push("    </hyperv>");
    }
    if (x86 || arch === "aarch64") lines.push("    <vmcoreinfo state='on'/>");
    lines.push("  </features>");
  } else if (!isTest) {
    lines.push("  <features><acpi/><apic/></features>");
  }
  if (spec.cpu !== undefined) {
    // _get_guest_cpu_config: the mode, a custom model, and the flavor's vCPUs as sockets.
    lines.push(`  <cpu${spec.cpu.mode !== "none" ? attr("mode", spec.cpu.mode) : ""} match='exact'>`);
    if (spec.cpu.model !== undefined) lines.push(`    <model>${escapeXml(spec.cpu.model)}</model>`);
    lines.push(`    <topology${attr("sockets", instance.flavor.vcpus)} cores='1' threads='1'/>`);
    lines.push("  </cpu>");
  }
  if (!isTest) {
    // _set_clock: Windows expects localtime; kvm also gets Nova's timers (_set_kvm_timers).
    const timers: string[] = [];
    if (spec.virtType === "kvm") {
      timers.push("<timer name='pit' tickpolicy='delay'/>", "<timer name='rtc' tickpolicy='catchup'/>");
      if (x86)
        timers.push(`<timer name='hpet'${attr("present", imagePropertyTrue(props.hw_time_hpet) ? "yes" : "no")}/>`);
      if (windows) timers.push("<timer name='hypervclock' present='yes'/>");
    }
    const offset = windows ? "localtime" : "utc";
    if (timers.length === 0) lines.push(`  <clock${attr("offset", offset)}/>`);
    else {
      lines.push(`  <clock${attr("offset", offset)}>`);
      for (const t of timers) lines.push(`    ${t}`);
      lines.push("  </clock>");
    }
  }
  lines.push("  <on_poweroff>destroy</on_poweroff>");
  lines.push("  <on_reboot>restart</on_reboot>");
  lines.push("  <on_crash>destroy</on_crash>");
  lines.push("  <devices>");
  const prefix = diskPrefix(bus);
  spec.disks.forEach((disk, index) => {
    const target = disk.target ?? diskTarget(prefix, index);
    // _set_cache_mode: the per-source-type override, else the driver's mode.
    const cache = spec.diskCacheModes?.get(disk.sourceType ?? "file") ?? spec.diskCache;
    lines.push("    <disk type='file' device='disk'>");
    lines.push(
      `      <driver name='qemu'${attr("type", disk.format)}${cache !== undefined ? attr("cache", cache) : ""}/>`,
    );
    lines.push(`      <source${attr("file", disk.path)}/>`);
    lines.push(`      <target${attr("dev", target)}${attr("bus", bus)}/>`);
    lines.push(`      <boot${attr("order", index + 1)}/>`);
    if (disk.readOnly) lines.push("      <readonly/>");
    lines.push("    </disk>");
  });
  for (const vif of spec.networkInfo ?? []) {
    const type = vif.bridge ? "bridge" : "user";
    lines.push(`    <interface${attr("type", type)}>`);
    lines.push(`      <mac${attr("address", vif.address)}/>`);
    if (vif.bridge) lines.push(`      <source${attr("bridge", vif.bridge)}/>`);
    lines.push(`      <model${attr("type", vif.model ?? "virtio")}/>`);
    lines.push("    </interface>");
  }
  lines.push("    <serial type='pty'>");
  if (spec.consoleLogPath !== undefined) lines.push(`      <log${attr("file", spec.consoleLogPath)} append='on'/>`);
  lines.push("      <target port='0'/>");
  lines.push("    </serial>");
  lines.push("    <console type='pty'><target type='serial' port='0'/></console>");
  const rng = rngModel(props.hw_rng_model);
  if (rng !== undefined) {
    // Nova's _add_rng_device: the host's /dev/urandom behind a virtio RNG (rng_dev_path's default).
    // A guest without one can wait a second of jitter entropy in early boot for its first random bytes.
    lines.push(`    <rng${attr("model", rng)}>`);
    lines.push("      <backend model='random'>/dev/urandom</backend>");
    lines.push("    </rng>");
  }
  // Nova's _guest_add_usb_root_controller: x86 guests get a USB controller by default, which Nova
  // disables (model none) unless a device needs USB or the flavor or image names a model. A guest
  // kernel resetting an unused UHCI controller spends about 0.5 s of a TCG boot on it.
  const usb = usbControllerModel(instance.flavor.extraSpecs?.["hw:usb_model"], props.hw_usb_model);
  // A USB disk needs the controller, and PPC guests get their USB keyboard and mouse from it: libvirt
  // picks the model (Nova leaves it unset there).
  if (bus === "usb" || arch.startsWith("ppc")) lines.push("    <controller type='usb' index='0'/>");
  else lines.push(`    <controller type='usb' index='0'${attr("model", usb ?? "none")}/>`);
  if (imagePropertyTrue(props.hw_qemu_guest_agent)) {
    // No explicit socket path: libvirt picks one per daemon, so two daemons never collide.
    lines.push("    <channel type='unix'>");
    lines.push(`      <target type='virtio'${attr("name", GUEST_AGENT_CHANNEL)}/>`);
    lines.push("    </channel>");
  }
  lines.push("  </devices>");
  lines.push("</domain>");
  return lines.join("\n") + "\n";
}

/** The image's `hw_rng_model` (Nova's RNGModel field: `virtio` is the one value), or undefined when unset. */
export function rngModel(value: unknown): "virtio" | undefined {
  if (value === undefined || value === null || value === "") return undefined;
  if (typeof value === "string" && value.toLowerCase() === "virtio") return "virtio";
  // The value itself is not echoed (it can be anything, of any size): only what kind it was.
  const got = typeof value === "string" ? `a ${value.length}-character string` : typeof value;
  throw new InvalidInputError("imageMeta.properties.hw_rng_model", `must be "virtio", got ${got}`);
}

/** Nova's USBControllerModelType. */
const USB_MODELS = ["none", "nec-xhci", "qemu-xhci"] as const;

/**
 * The USB controller model the flavor (`hw:usb_model`) or the image (`hw_usb_model`) asks for, or
 * undefined when neither does (Nova's hardware.get_usb_model: one of USB_MODELS, and the two must
 * agree when both are set).
 */
export function usbControllerModel(flavorValue: unknown, imageValue: unknown): (typeof USB_MODELS)[number] | undefined {
  const read = (value: unknown, field: string) => {
    if (value === undefined || value === null || value === "") return undefined;
    const found = USB_MODELS.find((m) => m === value);
    if (found === undefined) {
      const shown = typeof value === "string" ? JSON.stringify(value.slice(0, 64)) : `a ${typeof value}`;
      throw new InvalidInputError(field, `must be one of ${USB_MODELS.join(", ")}, got ${shown}`);
    }
    return found;
  };
  const fromFlavor = read(flavorValue, "instance.flavor.extraSpecs.hw:usb_model");
  const fromImage = read(imageValue, "imageMeta.properties.hw_usb_model");
  if (fromFlavor !== undefined && fromImage !== undefined && fromFlavor !== fromImage) {
    throw new InvalidInputError(
      "imageMeta.properties.hw_usb_model",
      `is ${fromImage} where the flavor's hw:usb_model is ${fromFlavor}`,
    );
  }
  return fromFlavor ?? fromImage;
}

/** What the driver reads back from a domain's XML. */
export interface DomainXmlFacts {
  readonly name: string;
  readonly uuid: string;
  readonly type: string;
  /** Disks in document order: path (file, block dev or volume), format, target, read-only. */
  readonly disks: readonly {
    readonly path: string;
    readonly format?: string;
    readonly target?: string;
    readonly readOnly?: boolean;
  }[];
  /** The instance's display name from virtkit's metadata, if present. */
  readonly displayName?: string;
  /** The instance's project from virtkit's metadata, if present. */
  readonly projectId?: string;
  /** The XML kept for unrescue, when the domain is rescued. */
  readonly rescueOriginalXml?: string;
  /** The spawn that defined the domain (virtkit's metadata), if recorded. */
  readonly spawnId?: string;
  /** Serial console log file, if configured. */
  readonly consoleLogPath?: string;
  /** Whether a guest agent channel is present. */
  readonly hasGuestAgentChannel: boolean;
}

/** Finds virtkit's metadata element, whatever prefix libvirt wrote back. */
function virtkitMetadata(domain: XmlElement): XmlElement | undefined {
  for (const el of child(domain, "metadata")?.children ?? []) {
    const local = el.name.includes(":") ? el.name.slice(el.name.indexOf(":") + 1) : el.name;
    const prefix = el.name.includes(":") ? el.name.slice(0, el.name.indexOf(":")) : "";
    const ns = el.attributes[prefix ? `xmlns:${prefix}` : "xmlns"];
    if (local === "instance" && ns === VIRTKIT_XMLNS) return el;
  }
  return undefined;
}

function metaChild(meta: XmlElement | undefined, local: string): XmlElement | undefined {
  return meta?.children.find((c) => c.name === local || c.name.endsWith(`:${local}`));
}

/** Reads the facts the driver needs from domain XML. */
export function readDomainXml(xml: string): DomainXmlFacts {
  const domain = parseXml(xml);
  const devices = child(domain, "devices");
  const disks = children(devices, "disk")
    .filter((d) => (d.attributes.device ?? "disk") === "disk")
    .map((d) => {
      const src = child(d, "source");
      const p = src?.attributes.file ?? src?.attributes.dev ?? src?.attributes.volume ?? src?.attributes.name ?? "";
      return {
        path: p,
        format: child(d, "driver")?.attributes.type,
        target: child(d, "target")?.attributes.dev,
        ...(child(d, "readonly") !== undefined ? { readOnly: true } : {}),
      };
    });
  const meta = virtkitMetadata(domain);
  const project = metaChild(meta, "project")?.text;
  const displayName = metaChild(meta, "name")?.text;
  const rescue = metaChild(meta, "rescue")?.text;
  const spawnId = metaChild(meta, "spawn")?.text;
  const log = path(devices, "serial", "log")?.attributes.file;
  const hasAgent = children(devices, "channel").some(
    (c) => child(c, "target")?.attributes.name === GUEST_AGENT_CHANNEL,
  );
  return {
    name: child(domain, "name")?.text ?? "",
    uuid: child(domain, "uuid")?.text ?? "",
    type: domain.attributes.type ?? "",
    disks,
    ...(project !== undefined ? { projectId: project } : {}),
    ...(displayName !== undefined && displayName !== "" ? { displayName } : {}),
    ...(rescue !== undefined && rescue !== "" ? { rescueOriginalXml: rescue } : {}),
    ...(spawnId !== undefined && spawnId !== "" ? { spawnId } : {}),
    ...(log !== undefined ? { consoleLogPath: log } : {}),
    hasGuestAgentChannel: hasAgent,
  };
}

/** What changes in a guest's definition on the destination of a migration. */
export interface DomainRetarget {
  /** Source host path → destination host path of each disk whose path differs. */
  readonly diskPaths: ReadonlyMap<string, string>;
  /** The destination's serial console log file. */
  readonly consoleLogPath?: string;
}

/**
 * Every file a domain's disks use: each disk's source and every file down its backing chain
 * (`<backingStore>`), and the same for the definition kept for unrescue. What destroy reads to
 * find volumes of the instance beyond the ones it made (a live snapshot's overlay).
 */
export function diskFiles(xml: string): string[] {
  const out = new Set<string>();
  const walk = (el: XmlElement): void => {
    if (el.name === "source" && el.attributes.file !== undefined) out.add(el.attributes.file);
    for (const c of el.children) walk(c);
  };
  const domain = parseXml(xml);
  for (const disk of children(child(domain, "devices"), "disk")) walk(disk);
  const rescue = metaChild(virtkitMetadata(domain), "rescue")?.text;
  if (rescue !== undefined && rescue !== "") for (const f of diskFiles(rescue)) out.add(f);
  return [...out];
}

/**
 * The domain XML with disk sources and the console log moved to the destination's paths (the
 * part of Nova's `get_updated_guest_xml` a file-backed guest needs), or `undefined` when nothing
 * differs: then no destination XML is sent and libvirt keeps the definition as it is.
 */
export function retargetDomainXml(xml: string, change: DomainRetarget): string | undefined {
  const root = parseXml(xml) as MutableXml;
  let changed = false;
  const devices = root.children.find((c) => c.name === "devices");
  for (const d of devices?.children ?? []) {
    if (d.name === "disk") {
      const src = d.children.find((c) => c.name === "source");
      const from = src?.attributes.file;
      const to = from !== undefined ? change.diskPaths.get(from) : undefined;
      if (src && to !== undefined && to !== from) {
        src.attributes.file = to;
        changed = true;
      }
    } else if ((d.name === "serial" || d.name === "console") && change.consoleLogPath !== undefined) {
      const log = d.children.find((c) => c.name === "log");
      if (log && log.attributes.file !== change.consoleLogPath) {
        log.attributes.file = change.consoleLogPath;
        changed = true;
      }
    }
  }
  return changed ? serializeXml(root) : undefined;
}

type MutableXml = { name: string; attributes: Record<string, string>; children: MutableXml[]; text: string };

/** Snapshot XML for `virDomainSnapshotCreateXML`. */
export function buildSnapshotXml(name: string, description?: string): string {
  return (
    `<domainsnapshot><name>${escapeXml(name)}</name>` +
    (description !== undefined ? `<description>${escapeXml(description)}</description>` : "") +
    "</domainsnapshot>"
  );
}

/** What the driver reads from snapshot XML. */
export interface SnapshotXmlFacts {
  readonly name: string;
  readonly description?: string;
  /** libvirt's snapshot state (`running`, `paused`, `shutoff`, ...). */
  readonly state: string;
  /** Seconds since the epoch. */
  readonly creationTime: number;
}

/** Reads a snapshot's name, description, state and creation time. */
export function readSnapshotXml(xml: string): SnapshotXmlFacts {
  const snap = parseXml(xml);
  const description = child(snap, "description")?.text;
  return {
    name: child(snap, "name")?.text ?? "",
    ...(description !== undefined ? { description } : {}),
    state: child(snap, "state")?.text ?? "nostate",
    creationTime: Number(child(snap, "creationTime")?.text ?? "0"),
  };
}

/** Volume XML for a new instance disk (qcow2 on a backing store where one is given). */
export function buildVolumeXml(options: {
  readonly name: string;
  readonly capacityBytes: number | bigint;
  readonly format: string;
  readonly backingPath?: string;
  readonly backingFormat?: string;
}): string {
  const lines = [
    "<volume>",
    `  <name>${escapeXml(options.name)}</name>`,
    `  <capacity unit='bytes'>${escapeXml(String(options.capacityBytes))}</capacity>`,
    `  <target><format${attr("type", options.format)}/></target>`,
  ];
  if (options.backingPath !== undefined) {
    lines.push(
      `  <backingStore><path>${escapeXml(options.backingPath)}</path>` +
        `<format${attr("type", options.backingFormat ?? "qcow2")}/></backingStore>`,
    );
  }
  lines.push("</volume>");
  return lines.join("\n") + "\n";
}

/** A volume's backing file (path and format) from its XML, if it has one. */
export function readVolumeBacking(xml: string): { path: string; format?: string } | undefined {
  const backing = child(parseXml(xml), "backingStore");
  const p = child(backing, "path")?.text;
  if (p === undefined || p === "") return undefined;
  const format = child(backing, "format")?.attributes.type;
  return { path: p, ...(format !== undefined ? { format } : {}) };
}

/** A volume's own file (path and format) from its XML; either may be absent. */
export function readVolumeTarget(xml: string): { path?: string; format?: string } {
  const target = child(parseXml(xml), "target");
  const p = child(target, "path")?.text;
  const format = child(target, "format")?.attributes.type;
  return { ...(p ? { path: p } : {}), ...(format ? { format } : {}) };
}

/** Pool XML for a directory pool. */
export function buildDirPoolXml(name: string, dir: string): string {
  return `<pool type='dir'><name>${escapeXml(name)}</name><target><path>${escapeXml(dir)}</path></target></pool>`;
}

/** A pool's type (`dir`, `logical`, ...) and target path, from its XML. */
export function readPoolFacts(xml: string): { type: string | undefined; path: string | undefined } {
  const root = parseXml(xml);
  return { type: root.attributes.type, path: path(root, "target", "path")?.text };
}
