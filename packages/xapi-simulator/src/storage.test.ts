// Disks: guest data carried by snapshot, revert, clone and copy; SR space and VDI_IN_USE; the raw
// and VHD export and raw import handlers (the VHD checked by qemu-img when it is installed).
import { execFile, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readDataFromImage } from "./image-data.js";
import type { XapiSimulator } from "./simulator.js";
import { startXapiSimulator } from "./simulator.js";
import { Session, spawnVm } from "./testing/rpc-client.js";

const GiB = 1024 ** 3;
let sim: XapiSimulator;
let s: Session;

beforeAll(async () => {
  sim = await startXapiSimulator({ operationMs: 0, srSize: 20 * GiB });
  s = await Session.login(sim.url, sim.username, sim.password);
});
afterAll(async () => {
  await sim.close();
});

async function rootVdi(vm: string): Promise<string> {
  const vbds = await s.call<string[]>("VM.get_VBDs", vm);
  for (const vbd of vbds) {
    const r = await s.call<{ userdevice: string; VDI: string }>("VBD.get_record", vbd);
    if (r.userdevice === "0") return r.VDI;
  }
  throw new Error("no root disk");
}

describe("snapshots and revert", () => {
  it("a snapshot is a template VM with is_a_snapshot, snapshot_of and its own VDIs; revert brings the data back", async () => {
    const { ref: vm, uuid } = await spawnVm(s, "snap");
    await s.call("VM.start", vm, false, false);
    const g = sim.guest(uuid);
    g.writeData("marker", "before");
    const snap = await s.call<string>("VM.snapshot", vm, "snap-1");
    const rec = await s.call<{ is_a_snapshot: boolean; is_a_template: boolean; snapshot_of: string; snapshot_time: string; VBDs: string[]; power_state: string }>("VM.get_record", snap);
    expect(rec).toMatchObject({ is_a_snapshot: true, is_a_template: true, snapshot_of: vm, power_state: "Halted" });
    expect(rec.snapshot_time).toMatch(/^\d{8}T\d{2}:\d{2}:\d{2}Z$/);
    expect(await s.call("VM.get_snapshots", vm)).toEqual([snap]);
    const snapVdi = await rootVdi(snap);
    const origVdi = await rootVdi(vm);
    expect(snapVdi).not.toBe(origVdi);
    expect(await s.call("VDI.get_snapshot_of", snapVdi)).toBe(origVdi);
    expect(await s.call("VDI.get_is_a_snapshot", snapVdi)).toBe(true);

    g.writeData("marker", "after");
    expect(g.readData("marker")).toBe("after");
    await s.call("VM.revert", snap);
    expect(await s.call("VM.get_power_state", vm)).toBe("Halted");
    expect(g.readData("marker")).toBe("before");
    // Deleting the snapshot: destroy its VDIs and the snapshot VM.
    await s.call("VDI.destroy", snapVdi);
    await s.call("VM.destroy", snap);
    expect(await s.call("VM.get_snapshots", vm)).toEqual([]);
  });

  it("revert puts the VM's fields back as they were at the snapshot (other_config, name, memory), keeps its tags and affinity, and makes the snapshot its parent", async () => {
    const { ref: vm } = await spawnVm(s, "fields");
    await s.call("VM.add_to_other_config", vm, "mark", "at-snapshot");
    const snap = await s.call<string>("VM.snapshot", vm, "fields-snap");
    expect(await s.call("VM.get_snapshot_metadata", snap)).not.toBe("");
    expect(await s.call("VM.get_snapshot_metadata", vm)).toBe("");
    await s.call("VM.add_to_other_config", snap, "only-on-the-snapshot", "1");
    await s.call("VM.remove_from_other_config", vm, "mark");
    await s.call("VM.add_to_other_config", vm, "later", "1");
    await s.call("VM.set_name_label", vm, "renamed");
    const memory = await s.call<string>("VM.get_memory_static_max", vm);
    await s.call("VM.set_memory_limits", vm, "268435456", "268435456", "268435456", "268435456");
    await s.call("VM.add_tags", vm, "kept");
    const host = (await s.call<string[]>("host.get_all"))[0]!;
    await s.call("VM.set_affinity", vm, host);
    await s.call("VM.revert", snap);
    const rec = await s.call<{ other_config: Record<string, string>; name_label: string; tags: string[]; affinity: string; parent: string; is_a_snapshot: boolean; is_a_template: boolean; snapshot_of: string }>("VM.get_record", vm);
    expect(rec.other_config.mark).toBe("at-snapshot");
    expect(rec.other_config.later).toBeUndefined();
    expect(rec.other_config["only-on-the-snapshot"]).toBeUndefined();
    expect(await s.call("VM.get_memory_static_max", vm)).toBe(memory);
    expect(rec).toMatchObject({ name_label: "fields", tags: ["kept"], affinity: host, parent: snap, is_a_snapshot: false, is_a_template: false, snapshot_of: "OpaqueRef:NULL" });
    // A clone of the snapshot is a VM of its own: no metadata.
    const clone = await s.call<string>("VM.clone", snap, "from-snap");
    expect(await s.call("VM.get_snapshot_metadata", clone)).toBe("");
  });

  it("clone and copy carry the disk data to an independent VM", async () => {
    const { ref: vm, uuid } = await spawnVm(s, "orig");
    sim.guest(uuid).writeData("k", "v1");
    const clone = await s.call<string>("VM.clone", vm, "clone");
    const copy = await s.call<string>("VM.copy", vm, "copy", "OpaqueRef:NULL");
    sim.guest(uuid).writeData("k", "v2");
    expect(sim.guest(await s.call<string>("VM.get_uuid", clone)).readData("k")).toBe("v1");
    expect(sim.guest(await s.call<string>("VM.get_uuid", copy)).readData("k")).toBe("v1");
    expect(sim.guest(uuid).readData("k")).toBe("v2");
  });
});

describe("host memory", () => {
  it("VM.start with no host that fits is NO_HOSTS_AVAILABLE; start_on that host is HOST_NOT_ENOUGH_FREE_MEMORY [needed, available]", async () => {
    const small = await startXapiSimulator({ operationMs: 0, hostMemory: 3 * GiB });
    try {
      const q = await Session.login(small.url, small.username, small.password);
      const { ref: a } = await spawnVm(q, "a");
      const { ref: b } = await spawnVm(q, "b");
      const { ref: c } = await spawnVm(q, "c");
      await q.call("VM.start", a, false, false);
      await q.call("VM.start", b, false, false);
      expect(await q.call("VM.get_resident_on", a)).not.toBe(await q.call("VM.get_resident_on", b));
      expect(await q.fails("VM.start", c, false, false)).toEqual(["NO_HOSTS_AVAILABLE"]);
      const host = await q.call<string>("VM.get_resident_on", a);
      expect(await q.fails("VM.start_on", c, host, false, false)).toEqual(["HOST_NOT_ENOUGH_FREE_MEMORY", String(GiB), "0"]);
      await q.call("VM.hard_shutdown", a);
      await q.call("VM.start_on", c, host, false, false);
      expect(await q.call("VM.get_resident_on", c)).toBe(host);
    } finally {
      await small.close();
    }
  });
});

describe("SR space and VDI lifecycle", () => {
  it("SR_FULL [requested, maximum] when a VDI does not fit; utilisation follows create and destroy", async () => {
    const [sr] = await s.call<string[]>("SR.get_all");
    const before = await s.call<number>("SR.get_physical_utilisation", sr);
    const size = await s.call<number>("SR.get_physical_size", sr);
    const vdi = await s.call<string>("VDI.create", { name_label: "d", SR: sr, virtual_size: 2 * GiB, type: "user", sharable: false, read_only: false, other_config: {} });
    expect(await s.call("SR.get_physical_utilisation", sr)).toBe(before + 2 * GiB);
    expect(await s.fails("VDI.create", { name_label: "big", SR: sr, virtual_size: size, type: "user", sharable: false, read_only: false, other_config: {} })).toEqual([
      "SR_FULL",
      String(before + 2 * GiB + size),
      String(size),
    ]);
    await s.call("VDI.destroy", vdi);
    expect(await s.call("SR.get_physical_utilisation", sr)).toBe(before);
  });

  it("VDI_IN_USE while attached to a running VM; DEVICE_ALREADY_EXISTS for a taken userdevice", async () => {
    const { ref: vm } = await spawnVm(s, "inuse");
    const vdi = await rootVdi(vm);
    await s.call("VM.start", vm, false, false);
    expect(await s.fails("VDI.destroy", vdi)).toEqual(["VDI_IN_USE", vdi, "destroy"]);
    expect(await s.fails("VBD.create", { VM: vm, VDI: vdi, userdevice: "0", bootable: false, mode: "RW", type: "Disk", empty: false, unpluggable: true, other_config: {}, qos_algorithm_type: "", qos_algorithm_params: {} })).toEqual([
      "DEVICE_ALREADY_EXISTS",
      "0",
    ]);
    expect(await s.call<string[]>("VM.get_allowed_VBD_devices", vm)).not.toContain("0");
    expect(await s.call<string[]>("VM.get_allowed_VBD_devices", vm)).toContain("1");
    expect(await s.call<string[]>("VM.get_allowed_VIF_devices", vm)).toEqual(["1", "2", "3", "4", "5", "6"]);
    await s.call("VM.hard_shutdown", vm);
    await s.call("VDI.destroy", vdi);
  });
});

describe("HTTP disk handlers", { timeout: 30_000 }, () => {
  async function fetchDisk(vdi: string, format: string): Promise<Buffer> {
    const res = await fetch(`${sim.url}/export_raw_vdi?session_id=${s.ref}&vdi=${vdi}&format=${format}`);
    expect(res.status).toBe(200);
    const body = Buffer.from(await res.arrayBuffer());
    expect(body.length).toBe(Number(res.headers.get("content-length")));
    return body;
  }

  it("imports raw bytes at offset 0 and exports them raw and as a dynamic VHD holding only written blocks", async () => {
    const [sr] = await s.call<string[]>("SR.get_all");
    const size = 16 * 1024 * 1024;
    const vdi = await s.call<string>("VDI.create", { name_label: "img", SR: sr, virtual_size: size, type: "user", sharable: false, read_only: false, other_config: {} });
    const image = Buffer.alloc(3 * 1024 * 1024 + 5, 0x5a);
    const put = await fetch(`${sim.url}/import_raw_vdi?session_id=${s.ref}&vdi=${vdi}&format=raw`, { method: "PUT", body: image });
    expect(put.status).toBe(200);
    const raw = await fetchDisk(vdi, "raw");
    expect(raw.length).toBe(size);
    expect(raw.subarray(0, image.length).equals(image)).toBe(true);
    expect(raw.subarray(image.length).every((b) => b === 0)).toBe(true);
    const vhd = await fetchDisk(vdi, "vhd");
    expect(vhd.length).toBeLessThan(5 * 1024 * 1024);
    expect(vhd.length).toBeLessThan(size / 2);
    expect(vhd.toString("latin1", 0, 8)).toBe("conectix");
    expect(vhd.toString("latin1", vhd.length - 512, vhd.length - 504)).toBe("conectix");
    if (spawnSync("qemu-img", ["--version"]).status === 0) {
      const dir = mkdtempSync(join(tmpdir(), "xapi-sim-vhd-"));
      try {
        writeFileSync(join(dir, "d.vhd"), vhd);
        const { stdout } = await promisify(execFile)("qemu-img", ["convert", "-f", "vpc", "-O", "raw", join(dir, "d.vhd"), join(dir, "d.raw")]);
        expect(stdout).toBe("");
        const { stdout: info } = await promisify(execFile)("qemu-img", ["info", "--output=json", "-f", "vpc", join(dir, "d.vhd")]);
        expect((JSON.parse(info) as { "virtual-size": number })["virtual-size"]).toBeGreaterThanOrEqual(size - 1024 * 1024);
        const back = readFileSync(join(dir, "d.raw"));
        expect(back.subarray(0, size).equals(raw)).toBe(true);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    }
    // And back: the VHD imported into another VDI gives the same bytes.
    const copy = await s.call<string>("VDI.create", { name_label: "img2", SR: sr, virtual_size: size, type: "user", sharable: false, read_only: false, other_config: {} });
    const putVhd = await fetch(`${sim.url}/import_raw_vdi?session_id=${s.ref}&vdi=${copy}&format=vhd`, { method: "PUT", body: vhd });
    expect(putVhd.status).toBe(200);
    expect((await fetchDisk(copy, "raw")).equals(raw)).toBe(true);
    const garbage = await fetch(`${sim.url}/import_raw_vdi?session_id=${s.ref}&vdi=${copy}&format=vhd`, { method: "PUT", body: Buffer.alloc(4096, 1) });
    expect(garbage.status).toBe(400);
    await s.call("VDI.destroy", copy);
    await s.call("VDI.destroy", vdi);
  });

  it("exported images carry the guest's data (readDataFromImage); bad sessions and VDIs are refused", async () => {
    // A small VM of our own (8 MiB root disk) so the raw export stays small.
    const [media] = await s.call<string[]>("VM.get_by_name_label", "Other install media");
    const vm = await s.call<string>("VM.clone", media, "export");
    await s.call("VM.set_is_a_template", vm, false);
    const [sr] = await s.call<string[]>("SR.get_all");
    const vdi = await s.call<string>("VDI.create", { name_label: "root", SR: sr, virtual_size: 8 * 1024 * 1024, type: "user", sharable: false, read_only: false, other_config: {} });
    await s.call("VBD.create", { VM: vm, VDI: vdi, userdevice: "0", bootable: true, mode: "RW", type: "Disk", empty: false, unpluggable: false, other_config: {}, qos_algorithm_type: "", qos_algorithm_params: {} });
    sim.guest(await s.call<string>("VM.get_uuid", vm)).writeData("marker", "in-the-image");
    expect(readDataFromImage(await fetchDisk(vdi, "vhd"), "vhd", "marker")).toBe("in-the-image");
    expect(readDataFromImage(await fetchDisk(vdi, "raw"), "raw", "marker")).toBe("in-the-image");
    expect((await fetch(`${sim.url}/export_raw_vdi?session_id=OpaqueRef:bad&vdi=${vdi}&format=raw`)).status).toBe(401);
    expect((await fetch(`${sim.url}/export_raw_vdi?session_id=${s.ref}&vdi=OpaqueRef:none&format=raw`)).status).toBe(404);
  });
});
