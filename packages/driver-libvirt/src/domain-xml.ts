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
import { child, children, escapeXml, parseXml, path, type XmlElement } from "./xml.js";

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
  const lines: string[] = [];
  lines.push(`<domain${attr("type", spec.virtType)}>`);
  lines.push(`  <name>${escapeXml(instance.name)}</name>`);
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
  lines.push("  <os>");
  lines.push(`    <type${attr("arch", arch)}>hvm</type>`);
  const boot = spec.directBoot ?? directKernelBoot(props);
  if (boot !== undefined) {
    lines.push(`    <kernel>${escapeXml(boot.kernelPath)}</kernel>`);
    if (boot.initrdPath !== undefined) lines.push(`    <initrd>${escapeXml(boot.initrdPath)}</initrd>`);
    if (boot.cmdline !== undefined) lines.push(`    <cmdline>${escapeXml(boot.cmdline)}</cmdline>`);
  }
  // SeaBIOS (x86 only) writes to the serial port too, so the console shows something from boot on.
  if ((spec.virtType === "qemu" || spec.virtType === "kvm") && /^(x86_64|i[3-6]86)$/.test(arch)) {
    lines.push("    <bios useserial='yes'/>");
  }
  lines.push("  </os>");
  if (!isTest) {
    // ACPI makes a clean (soft) shutdown and reboot possible.
    lines.push("  <features><acpi/><apic/></features>");
  }
  lines.push("  <on_poweroff>destroy</on_poweroff>");
  lines.push("  <on_reboot>restart</on_reboot>");
  lines.push("  <on_crash>destroy</on_crash>");
  lines.push("  <devices>");
  const prefix = diskPrefix(bus);
  spec.disks.forEach((disk, index) => {
    const target = disk.target ?? diskTarget(prefix, index);
    lines.push("    <disk type='file' device='disk'>");
    lines.push(`      <driver name='qemu'${attr("type", disk.format)}/>`);
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

/** What the driver reads back from a domain's XML. */
export interface DomainXmlFacts {
  readonly name: string;
  readonly uuid: string;
  readonly type: string;
  /** Disks in document order: path (file, block dev or volume) and format. */
  readonly disks: readonly { readonly path: string; readonly format?: string; readonly target?: string }[];
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
      return { path: p, format: child(d, "driver")?.attributes.type, target: child(d, "target")?.attributes.dev };
    });
  const meta = virtkitMetadata(domain);
  const project = metaChild(meta, "project")?.text;
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
    ...(rescue !== undefined && rescue !== "" ? { rescueOriginalXml: rescue } : {}),
    ...(spawnId !== undefined && spawnId !== "" ? { spawnId } : {}),
    ...(log !== undefined ? { consoleLogPath: log } : {}),
    hasGuestAgentChannel: hasAgent,
  };
}

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

/** Pool XML for a directory pool. */
export function buildDirPoolXml(name: string, dir: string): string {
  return `<pool type='dir'><name>${escapeXml(name)}</name><target><path>${escapeXml(dir)}</path></target></pool>`;
}

/** A pool's type (`dir`, `logical`, ...) and target path, from its XML. */
export function readPoolFacts(xml: string): { type: string | undefined; path: string | undefined } {
  const root = parseXml(xml);
  return { type: root.attributes.type, path: path(root, "target", "path")?.text };
}
