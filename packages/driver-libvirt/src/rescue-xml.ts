/**
 * Rescue: the instance's domain XML with a rescue disk booting first, the original definition
 * kept in virtkit's metadata so unrescue can put it back (Nova's rescue.xml, in the definition).
 */
import { VirtkitError } from "@virtkit/core";
import { VIRTKIT_XMLNS, type DiskSpec } from "./domain-xml.js";
import { parseXml, serializeXml, type XmlElement } from "./xml.js";

/** The original domain XML with `disk` booting first and the original kept in virtkit's metadata. */
export function withRescueDisk(originalXml: string, disk: DiskSpec): string {
  const root = parseXml(originalXml) as MutableXml;
  const devices = root.children.find((c) => c.name === "devices");
  if (!devices) throw new VirtkitError("domain XML has no <devices>");
  const disks = devices.children.filter((c) => c.name === "disk");
  const used = new Set(disks.map((d) => d.children.find((c) => c.name === "target")?.attributes.dev));
  const bus = disks[0]?.children.find((c) => c.name === "target")?.attributes.bus ?? "virtio";
  const prefix = disks[0]?.children.find((c) => c.name === "target")?.attributes.dev?.replace(/[a-z]$/, "") ?? "vd";
  let target = "";
  for (let i = 0; i < 26; i++) {
    target = prefix + String.fromCharCode(97 + i);
    if (!used.has(target)) break;
  }
  // Shift the existing boot orders so the rescue disk boots first.
  for (const d of disks) {
    const boot = d.children.find((c) => c.name === "boot");
    if (boot) boot.attributes.order = String(Number(boot.attributes.order ?? "1") + 1);
  }
  const el = (
    name: string,
    attributes: Record<string, string> = {},
    kids: MutableXml[] = [],
    text = "",
  ): MutableXml => ({
    name,
    attributes,
    children: kids,
    text,
  });
  const rescueDisk = el("disk", { type: "file", device: "disk" }, [
    el("driver", { name: "qemu", type: disk.format }),
    el("source", { file: disk.path }),
    el("target", { dev: target, bus }),
    el("boot", { order: "1" }),
  ]);
  const firstDisk = devices.children.findIndex((c) => c.name === "disk");
  devices.children.splice(firstDisk < 0 ? 0 : firstDisk, 0, rescueDisk);
  let metadata = root.children.find((c) => c.name === "metadata");
  if (!metadata) {
    metadata = el("metadata");
    root.children.splice(Math.min(3, root.children.length), 0, metadata);
  }
  let inst = metadata.children.find((c) => c.name.endsWith(":instance") || c.name === "instance");
  if (!inst) {
    inst = el("virtkit:instance", { "xmlns:virtkit": VIRTKIT_XMLNS });
    metadata.children.push(inst);
  }
  const prefixOf = inst.name.includes(":") ? inst.name.slice(0, inst.name.indexOf(":") + 1) : "";
  inst.children.push(el(`${prefixOf}rescue`, {}, [], originalXml));
  return serializeXml(root) + "\n";
}

interface MutableXml extends XmlElement {
  attributes: Record<string, string>;
  children: MutableXml[];
  text: string;
}
