import type { Instance } from "@virtkit/core";
import { describe, expect, it } from "vitest";
import { isInvalidInput, type ImageProperties } from "@virtkit/core";
import {
  DIRECT_BOOT_PROPERTIES,
  GUEST_AGENT_CHANNEL,
  VIRTKIT_XMLNS,
  buildDomainXml,
  directKernelBoot,
  buildSnapshotXml,
  buildVolumeXml,
  diskFiles,
  domainName,
  readDomainXml,
  readSnapshotXml,
  retargetDomainXml,
  guestCpuConfig,
  parseDiskCacheModes,
} from "./domain-xml.js";
import { withRescueDisk } from "./libvirt-driver.js";
import { child, children, parseXml, path } from "./xml.js";

const instance = (over: Partial<Instance> = {}): Instance => ({
  uuid: "0b6c7a52-7f3e-4d47-9b3c-2f4c8f1b9a10",
  name: "web-1",
  projectId: "proj-a",
  userId: "user-b",
  flavor: { name: "m1.tiny", memoryMb: 512, vcpus: 2, rootGb: 1 },
  imageMeta: { id: "img-1", properties: {} },
  ...over,
});

describe("buildDomainXml", () => {
  it("writes type, name, uuid, memory, vcpus, disk, interfaces, console and metadata", () => {
    const xml = buildDomainXml({
      virtType: "kvm",
      instance: instance(),
      disks: [{ path: "/var/lib/libvirt/images/x_disk", format: "qcow2" }],
      networkInfo: [
        { id: "p1", address: "52:54:00:12:34:56", bridge: "br0" },
        { id: "p2", address: "52:54:00:12:34:57", model: "e1000" },
      ],
      consoleLogPath: "/var/log/vk/x.log",
    });
    const dom = parseXml(xml);
    expect(dom.attributes.type).toBe("kvm");
    // Nova-style: the domain is named from the stable id, the display name kept in title and metadata.
    expect(child(dom, "name")?.text).toBe(domainName(instance()));
    expect(readDomainXml(xml).displayName).toBe("web-1");
    expect(child(dom, "uuid")?.text).toBe("0b6c7a52-7f3e-4d47-9b3c-2f4c8f1b9a10");
    expect(child(dom, "memory")?.attributes.unit).toBe("MiB");
    expect(child(dom, "memory")?.text).toBe("512");
    expect(child(dom, "vcpu")?.text).toBe("2");
    expect(path(dom, "features", "acpi")).toBeDefined();
    const disk = path(dom, "devices", "disk");
    expect(child(disk, "source")?.attributes.file).toBe("/var/lib/libvirt/images/x_disk");
    expect(child(disk, "driver")?.attributes.type).toBe("qcow2");
    expect(child(disk, "target")?.attributes).toEqual({ dev: "vda", bus: "virtio" });
    const nics = children(child(dom, "devices"), "interface");
    expect(nics.map((n) => n.attributes.type)).toEqual(["bridge", "user"]);
    expect(child(nics[0], "source")?.attributes.bridge).toBe("br0");
    expect(child(nics[1], "model")?.attributes.type).toBe("e1000");
    expect(path(dom, "devices", "serial", "log")?.attributes.file).toBe("/var/log/vk/x.log");
    expect(children(child(dom, "devices"), "channel")).toHaveLength(0);
    const facts = readDomainXml(xml);
    expect(facts).toMatchObject({
      name: "instance-0b6c7a52-7f3e-4d47-9b3c-2f4c8f1b9a10",
      displayName: "web-1",
      type: "kvm",
      projectId: "proj-a",
      consoleLogPath: "/var/log/vk/x.log",
      hasGuestAgentChannel: false,
    });
    expect(facts.disks).toEqual([{ path: "/var/lib/libvirt/images/x_disk", format: "qcow2", target: "vda" }]);
  });

  it("adds the guest agent channel without a socket path when hw_qemu_guest_agent is set", () => {
    const xml = buildDomainXml({
      virtType: "qemu",
      instance: instance({ imageMeta: { properties: { hw_qemu_guest_agent: true, hw_disk_bus: "scsi" } } }),
      disks: [{ path: "/p/a", format: "raw" }],
    });
    const channel = path(parseXml(xml), "devices", "channel");
    expect(channel?.attributes.type).toBe("unix");
    expect(child(channel, "source")).toBeUndefined();
    expect(child(channel, "target")?.attributes.name).toBe(GUEST_AGENT_CHANNEL);
    expect(readDomainXml(xml).hasGuestAgentChannel).toBe(true);
    expect(readDomainXml(xml).disks[0]?.target).toBe("sda");
  });

  it("adds a virtio RNG fed by the host's /dev/urandom when hw_rng_model is virtio (Nova's _add_rng_device), refuses other models", () => {
    const build = (hw_rng_model?: string | number) =>
      buildDomainXml({
        virtType: "qemu",
        instance: instance({ imageMeta: { properties: hw_rng_model === undefined ? {} : { hw_rng_model } } }),
        disks: [{ path: "/p/a", format: "raw" }],
      });
    const rng = path(parseXml(build("virtio")), "devices", "rng");
    expect(rng?.attributes.model).toBe("virtio");
    expect(child(rng, "backend")?.attributes.model).toBe("random");
    expect(child(rng, "backend")?.text).toBe("/dev/urandom");
    expect(path(parseXml(build()), "devices", "rng")).toBeUndefined();
    for (const bad of ["egd", "virtio'/><evil/>", 1]) {
      expect(() => build(bad), String(bad)).toThrow(/hw_rng_model: must be "virtio"/);
      // Never the value itself (it can be anything, of any size).
      expect(() => build(`${"x".repeat(600_000)}secret`)).toThrow(/got a 600006-character string$/);
      try {
        build(bad);
      } catch (err) {
        expect(isInvalidInput(err)).toBe(true);
      }
    }
  });

  it("disables the default USB controller unless a USB disk needs it or hw_usb_model names one (Nova's _guest_add_usb_root_controller)", () => {
    const build = (properties: ImageProperties, extraSpecs?: Record<string, string>) => {
      const base = instance({ imageMeta: { properties } });
      return buildDomainXml({
        virtType: "qemu",
        instance: extraSpecs ? { ...base, flavor: { ...base.flavor, extraSpecs } } : base,
        disks: [{ path: "/p/a", format: "raw" }],
      });
    };
    const usb = (xml: string) =>
      children(child(parseXml(xml), "devices"), "controller").filter((c) => c.attributes.type === "usb");
    expect(usb(build({})).map((c) => c.attributes.model)).toEqual(["none"]);
    expect(usb(build({ hw_usb_model: "qemu-xhci" })).map((c) => c.attributes.model)).toEqual(["qemu-xhci"]);
    expect(usb(build({}, { "hw:usb_model": "nec-xhci" })).map((c) => c.attributes.model)).toEqual(["nec-xhci"]);
    // A USB disk needs the controller: libvirt picks its model (Nova leaves it unset, whatever hw_usb_model says).
    expect(usb(build({ hw_disk_bus: "usb" })).map((c) => c.attributes.model)).toEqual([undefined]);
    expect(usb(build({ hw_disk_bus: "usb", hw_usb_model: "qemu-xhci" })).map((c) => c.attributes.model)).toEqual([
      undefined,
    ]);
    // PPC guests get their keyboard and mouse over USB: left to libvirt too.
    expect(usb(build({ architecture: "ppc64le" })).map((c) => c.attributes.model)).toEqual([undefined]);
    for (const [props, specs, message] of [
      [{ hw_usb_model: "piix3-uhci" }, undefined, /hw_usb_model: must be one of none, nec-xhci, qemu-xhci/],
      [{ hw_usb_model: "x'/><evil/>" }, undefined, /hw_usb_model: must be one of/],
      [{ hw_usb_model: 10n as unknown as string }, undefined, /hw_usb_model: must be one of .*got a bigint/],
      [{}, { "hw:usb_model": "ehci" }, /hw:usb_model: must be one of/],
      [
        { hw_usb_model: "qemu-xhci" },
        { "hw:usb_model": "none" },
        /hw_usb_model: is qemu-xhci where the flavor's hw:usb_model is none/,
      ],
    ] as const) {
      let thrown: unknown;
      try {
        build(props, specs);
      } catch (err) {
        thrown = err;
      }
      expect(isInvalidInput(thrown), String(message)).toBe(true);
      expect(String((thrown as Error).message)).toMatch(message);
    }
  });

  it("escapes every value: a hostile name, project or path cannot change the document", () => {
    const evil = `a'><evil/>&"`;
    const xml = buildDomainXml({
      virtType: "test",
      instance: instance({
        name: evil,
        projectId: evil,
        hostname: evil,
        flavor: { name: evil, memoryMb: 64, vcpus: 1, rootGb: 0 },
      }),
      disks: [{ path: `/p/${evil}`, format: "qcow2" }],
      networkInfo: [{ id: "x", address: evil, bridge: evil }],
      consoleLogPath: `/l/${evil}`,
    });
    expect(xml).not.toContain("<evil/>");
    const dom = parseXml(xml);
    expect(child(dom, "name")?.text).toMatch(/^instance-[0-9a-f-]{36}$/);
    expect(readDomainXml(xml).displayName).toBe(evil);
    expect(child(dom, "title")?.text).toBe(evil);
    expect(path(dom, "devices", "disk", "source")?.attributes.file).toBe(`/p/${evil}`);
    expect(path(dom, "devices", "interface", "mac")?.attributes.address).toBe(evil);
    const names: string[] = [];
    const walk = (e: ReturnType<typeof parseXml>): void => {
      names.push(e.name);
      e.children.forEach(walk);
    };
    walk(dom);
    expect(names).not.toContain("evil");
    expect(readDomainXml(xml).projectId).toBe(evil);
  });

  it("boots a kernel, initrd and command line directly when the image properties give their paths", () => {
    const evil = `a'><evil/>&"`;
    const xml = buildDomainXml({
      virtType: "qemu",
      instance: instance({
        imageMeta: {
          properties: {
            virtkit_kernel_path: `/opt/guest/vmlinux${evil}`,
            virtkit_ramdisk_path: "/opt/guest/initrd.img",
            os_command_line: `console=ttyS0 quiet x="${evil}"`,
          },
        },
      }),
      disks: [{ path: "/p/a", format: "qcow2" }],
    });
    expect(xml).not.toContain("<evil/>");
    const os = child(parseXml(xml), "os");
    expect(child(os, "type")?.text).toBe("hvm");
    expect(child(os, "kernel")?.text).toBe(`/opt/guest/vmlinux${evil}`);
    expect(child(os, "initrd")?.text).toBe("/opt/guest/initrd.img");
    expect(child(os, "cmdline")?.text).toBe(`console=ttyS0 quiet x="${evil}"`);
    // The disk stays attached (the guest's data disk).
    expect(readDomainXml(xml).disks.map((d) => d.path)).toEqual(["/p/a"]);
  });

  it("boots from the first disk without a kernel path; an explicit directBoot wins over the properties", () => {
    const plain = child(
      parseXml(buildDomainXml({ virtType: "qemu", instance: instance(), disks: [{ path: "/p/a", format: "qcow2" }] })),
      "os",
    );
    expect(child(plain, "kernel")).toBeUndefined();
    expect(child(plain, "initrd")).toBeUndefined();
    expect(child(plain, "cmdline")).toBeUndefined();
    const os = child(
      parseXml(
        buildDomainXml({
          virtType: "qemu",
          instance: instance({ imageMeta: { properties: { virtkit_kernel_path: "/from/props" } } }),
          disks: [],
          directBoot: { kernelPath: "/pool/image-k", initrdPath: "/pool/image-r" },
        }),
      ),
      "os",
    );
    expect(child(os, "kernel")?.text).toBe("/pool/image-k");
    expect(child(os, "initrd")?.text).toBe("/pool/image-r");
    expect(child(os, "cmdline")).toBeUndefined();
  });

  it("reads the direct boot properties: absolute paths only, no initrd without a kernel", () => {
    expect(DIRECT_BOOT_PROPERTIES).toEqual({
      kernelPath: "virtkit_kernel_path",
      initrdPath: "virtkit_ramdisk_path",
      cmdline: "os_command_line",
    });
    expect(directKernelBoot({})).toBeUndefined();
    // A command line alone is ignored, as Nova does.
    expect(directKernelBoot({ os_command_line: "quiet" })).toBeUndefined();
    expect(directKernelBoot({ virtkit_kernel_path: "/k", os_command_line: "" })).toEqual({ kernelPath: "/k" });
    const refused = (props: ImageProperties): unknown => {
      try {
        directKernelBoot(props);
      } catch (err) {
        return err;
      }
      return undefined;
    };
    for (const props of [
      { virtkit_kernel_path: "vmlinux" },
      { virtkit_kernel_path: "/boot/../etc/shadow" },
      { virtkit_kernel_path: "/boot/./vmlinux" },
      { virtkit_kernel_path: "/boot/vm\0linux" },
      { virtkit_kernel_path: 42 },
      { virtkit_ramdisk_path: "/initrd" },
      { virtkit_kernel_path: "/k", os_command_line: 1 },
    ]) {
      expect(isInvalidInput(refused(props)), JSON.stringify(props)).toBe(true);
    }
    expect(() =>
      buildDomainXml({
        virtType: "qemu",
        instance: instance({ imageMeta: { properties: { virtkit_kernel_path: "relative" } } }),
        disks: [],
      }),
    ).toThrow(/virtkit_kernel_path/);
  });

  it("keeps metadata in virtkit's namespace, whatever prefix libvirt writes back", () => {
    const xml =
      `<domain type='test'><name>n</name><uuid>u</uuid><metadata>` +
      `<vk:instance xmlns:vk="${VIRTKIT_XMLNS}"><vk:project>p</vk:project><vk:rescue>&lt;domain/&gt;</vk:rescue></vk:instance>` +
      `<other:instance xmlns:other="urn:x"><other:project>q</other:project></other:instance>` +
      `</metadata></domain>`;
    expect(readDomainXml(xml)).toMatchObject({ projectId: "p", rescueOriginalXml: "<domain/>" });
  });
});

describe("withRescueDisk", () => {
  it("boots the rescue disk first and keeps the original XML in the metadata", () => {
    const original = buildDomainXml({
      virtType: "test",
      instance: instance(),
      disks: [{ path: "/pool/u_disk", format: "qcow2" }],
    });
    const rescued = withRescueDisk(original, { path: "/pool/u_disk.rescue", format: "qcow2" });
    const facts = readDomainXml(rescued);
    expect(facts.disks.map((d) => [d.path, d.target])).toEqual([
      ["/pool/u_disk.rescue", "vdb"],
      ["/pool/u_disk", "vda"],
    ]);
    const boots = children(child(parseXml(rescued), "devices"), "disk").map((d) => child(d, "boot")?.attributes.order);
    expect(boots).toEqual(["1", "2"]);
    expect(facts.rescueOriginalXml).toBe(original);
    expect(readDomainXml(facts.rescueOriginalXml as string).rescueOriginalXml).toBeUndefined();
  });
});

describe("diskFiles", () => {
  it("lists every disk's source, its backing chain, and the files of the definition kept for unrescue", () => {
    const original = buildDomainXml({
      virtType: "qemu",
      instance: instance(),
      disks: [{ path: "/pool/u_snapshot_overlay_1.qcow2", format: "qcow2" }],
    }).replace(
      "</disk>",
      "<backingStore type='file'><format type='qcow2'/><source file='/pool/u_disk'/></backingStore></disk>",
    );
    expect(diskFiles(original).sort()).toEqual(["/pool/u_disk", "/pool/u_snapshot_overlay_1.qcow2"]);
    const rescued = withRescueDisk(original, { path: "/pool/u_disk.rescue", format: "qcow2" });
    expect(diskFiles(rescued).sort()).toEqual([
      "/pool/u_disk",
      "/pool/u_disk.rescue",
      "/pool/u_snapshot_overlay_1.qcow2",
    ]);
  });
});

describe("snapshot and volume XML", () => {
  it("escapes snapshot names and descriptions and reads libvirt's snapshot XML", () => {
    const xml = buildSnapshotXml("s<1>", `{"a":"b&c"}`);
    expect(child(parseXml(xml), "description")?.text).toBe(`{"a":"b&c"}`);
    expect(
      readSnapshotXml(
        "<domainsnapshot><name>s1</name><description>d</description><state>paused</state><creationTime>1700000000</creationTime></domainsnapshot>",
      ),
    ).toEqual({ name: "s1", description: "d", state: "paused", creationTime: 1700000000 });
  });
  it("writes qcow2 volumes with an optional backing store", () => {
    const v = parseXml(
      buildVolumeXml({ name: "x'", capacityBytes: 1073741824n, format: "qcow2", backingPath: "/b/i" }),
    );
    expect(child(v, "name")?.text).toBe("x'");
    expect(child(v, "capacity")?.text).toBe("1073741824");
    expect(path(v, "backingStore", "path")?.text).toBe("/b/i");
    expect(path(v, "target", "format")?.attributes.type).toBe("qcow2");
  });
});

describe("retargetDomainXml (the destination's paths for a migration)", () => {
  const xml = buildDomainXml({
    virtType: "qemu",
    instance: instance(),
    disks: [
      { path: "/src/pool/a_disk", format: "qcow2" },
      { path: "/shared/b_disk", format: "qcow2" },
    ],
    consoleLogPath: "/src/log/a.log",
  });

  it("moves the copied disks and the console log, nothing else", () => {
    const out = retargetDomainXml(xml, {
      diskPaths: new Map([["/src/pool/a_disk", "/dst/pool/a_disk"]]),
      consoleLogPath: "/dst/log/a.log",
    });
    const disks = readDomainXml(out ?? "").disks.map((d) => d.path);
    expect(disks).toEqual(["/dst/pool/a_disk", "/shared/b_disk"]);
    expect(readDomainXml(out ?? "").consoleLogPath).toBe("/dst/log/a.log");
  });

  it("returns undefined when nothing differs (no destination XML is sent)", () => {
    expect(retargetDomainXml(xml, { diskPaths: new Map([["/src/pool/a_disk", "/src/pool/a_disk"]]) })).toBeUndefined();
    expect(retargetDomainXml(xml, { diskPaths: new Map(), consoleLogPath: "/src/log/a.log" })).toBeUndefined();
  });
});

describe("guest CPU, disk cache, clock and SMBIOS (Nova's guest config)", () => {
  it("chooses the CPU as Nova's _get_guest_cpu_model_config", () => {
    expect(guestCpuConfig("kvm", "x86_64")).toEqual({ mode: "host-model" });
    expect(guestCpuConfig("qemu", "x86_64")).toEqual({ mode: "host-model" });
    expect(guestCpuConfig("kvm", "aarch64")).toEqual({ mode: "host-passthrough" });
    expect(guestCpuConfig("kvm", "x86_64", { cpuMode: "custom", cpuModels: ["Haswell", "Broadwell"] })).toEqual({
      mode: "custom",
      model: "Haswell",
    });
    expect(guestCpuConfig("kvm", "aarch64", { cpuMode: "custom" })).toEqual({ mode: "custom", model: "max" });
    expect(guestCpuConfig("kvm", "x86_64", { cpuMode: "none" })).toEqual({ mode: "none" });
    expect(guestCpuConfig("test", "x86_64")).toBeUndefined();
    expect(guestCpuConfig("xen", "x86_64", { cpuMode: "host-model" })).toBeUndefined();
  });

  it("refuses impossible CPU configurations typed", () => {
    for (const bad of [
      () => guestCpuConfig("kvm", "x86_64", { cpuMode: "custom" }),
      () => guestCpuConfig("kvm", "x86_64", { cpuMode: "host-model", cpuModels: ["Haswell"] }),
      () => guestCpuConfig("qemu", "x86_64", { cpuMode: "host-passthrough" }),
      () => guestCpuConfig("kvm", "x86_64", { cpuMode: "custom", cpuModels: ["Has'well"] }),
      () => guestCpuConfig("kvm", "x86_64", { cpuMode: "bogus" as "none" }),
    ]) {
      let err: unknown;
      try {
        bad();
      } catch (e) {
        err = e;
      }
      expect(isInvalidInput(err)).toBe(true);
    }
  });

  it("parses disk_cachemodes and refuses nonsense", () => {
    expect([...parseDiskCacheModes(["file=writeback", "block=none"])]).toEqual([
      ["file", "writeback"],
      ["block", "none"],
    ]);
    expect(() => parseDiskCacheModes(["file=fast"])).toThrow(/cache mode/);
    expect(() => parseDiskCacheModes(["nfs=none"])).toThrow(/diskCachemodes|not/);
  });

  it("writes cache, cpu, clock and SMBIOS only where Nova does", () => {
    const spec = {
      instance: instance({ osType: "windows" }),
      disks: [{ path: "/p/d", format: "qcow2" }],
      cpu: { mode: "host-model" as const },
      diskCache: "none" as const,
    };
    const kvm = parseXml(buildDomainXml({ ...spec, virtType: "kvm" }));
    expect(path(kvm, "devices", "disk", "driver")?.attributes.cache).toBe("none");
    expect(child(kvm, "cpu")?.attributes.mode).toBe("host-model");
    expect(child(kvm, "clock")?.attributes.offset).toBe("localtime");
    expect(children(child(kvm, "clock"), "timer").map((t) => t.attributes.name)).toEqual([
      "pit",
      "rtc",
      "hpet",
      "hypervclock",
    ]);
    expect(path(kvm, "os", "smbios")?.attributes.mode).toBe("sysinfo");
    const entries = Object.fromEntries(
      children(path(kvm, "sysinfo", "system"), "entry").map((e) => [e.attributes.name, e.text]),
    );
    expect(entries).toEqual({
      manufacturer: "OpenStack Foundation",
      product: "OpenStack Nova",
      serial: "0b6c7a52-7f3e-4d47-9b3c-2f4c8f1b9a10",
      uuid: "0b6c7a52-7f3e-4d47-9b3c-2f4c8f1b9a10",
      family: "Virtual Machine",
    });
    expect(path(kvm, "features", "hyperv")).toBeDefined();
    // Under TCG Nova adds no timers (_set_kvm_timers is kvm only); the clock offset stays. No
    // Hyper-V enlightenments either: QEMU under TCG refuses to start with them.
    const tcg = parseXml(buildDomainXml({ ...spec, virtType: "qemu" }));
    expect(children(child(tcg, "clock"), "timer")).toEqual([]);
    expect(path(tcg, "features", "hyperv")).toBeUndefined();
    expect(child(tcg, "clock")?.attributes.offset).toBe("localtime");
    // Linux: utc. An aarch64 guest: no SMBIOS (an x86 firmware table).
    const linux = parseXml(buildDomainXml({ ...spec, virtType: "qemu", instance: instance({ osType: "linux" }) }));
    expect(child(linux, "clock")?.attributes.offset).toBe("utc");
    const arm = parseXml(buildDomainXml({ ...spec, virtType: "qemu", arch: "aarch64" }));
    expect(child(arm, "sysinfo")).toBeUndefined();
    // The test hypervisor gets none of it.
    const test = parseXml(buildDomainXml({ instance: instance(), disks: spec.disks, virtType: "test" }));
    expect(child(test, "cpu")).toBeUndefined();
    expect(child(test, "clock")).toBeUndefined();
    expect(child(test, "sysinfo")).toBeUndefined();
  });
});
