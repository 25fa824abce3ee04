import {
  ImageNotFoundError,
  PowerState,
  SnapshotNotFoundError,
  TaskState,
  UnexpectedTaskStateError,
  snapshotImageMetadata,
} from "@virtkit/core";
import { describe, expect, it } from "vitest";
import { diskImage, parseDisk, serializeDisk } from "./fake-disk.js";
import { makeCloud, makeInstance, recordEvents } from "./testing/fixtures.js";

function one() {
  const env = makeCloud();
  return { ...env, driver: env.drivers[0]! };
}

describe("instance snapshots", () => {
  it("capture disk and power state; revert restores both", async () => {
    const { driver, cloud } = one();
    const instance = makeInstance();
    await driver.spawn({ instance });
    driver.writeGuestFile(instance.uuid, "/data/marker", "before");
    const snap = await driver.createInstanceSnapshot(instance, "s1", { description: "first" });
    expect(snap).toMatchObject({ name: "s1", instanceUuid: instance.uuid, powerState: PowerState.RUNNING, description: "first" });

    driver.writeGuestFile(instance.uuid, "/data/marker", "after");
    driver.writeGuestFile(instance.uuid, "/data/new", "x");
    await driver.powerOff(instance);
    const rec = recordEvents(driver);

    await driver.revertToInstanceSnapshot(instance, snap.id);
    expect(driver.readGuestFile(instance.uuid, "/data/marker")).toBe("before");
    expect(cloud.guest(instance.uuid).readFile("/data/new")).toBeUndefined();
    expect((await driver.getInfo(instance)).state).toBe(PowerState.RUNNING);
    expect(rec.transitions()).toEqual(["STARTED"]);
  });

  it("revert to a stopped snapshot stops a running instance", async () => {
    const { driver } = one();
    const instance = makeInstance();
    await driver.spawn({ instance });
    await driver.powerOff(instance);
    const snap = await driver.createInstanceSnapshot(instance, "off");
    expect(snap.powerState).toBe(PowerState.SHUTDOWN);
    await driver.powerOn(instance);
    await driver.revertToInstanceSnapshot(instance, snap.id);
    expect((await driver.getInfo(instance)).state).toBe(PowerState.SHUTDOWN);
  });

  it("a snapshot is not changed by later writes (copy on write), and can be reverted twice", async () => {
    const { driver } = one();
    const instance = makeInstance();
    await driver.spawn({ instance });
    driver.writeGuestFile(instance.uuid, "/f", "1");
    const snap = await driver.createInstanceSnapshot(instance, "s");
    driver.writeGuestFile(instance.uuid, "/f", "2");
    await driver.revertToInstanceSnapshot(instance, snap.id);
    driver.writeGuestFile(instance.uuid, "/f", "3");
    await driver.revertToInstanceSnapshot(instance, snap.id);
    expect(driver.readGuestFile(instance.uuid, "/f")).toBe("1");
  });

  it("lists oldest first and deletes", async () => {
    const { driver, clock } = one();
    const instance = makeInstance();
    await driver.spawn({ instance });
    const a = await driver.createInstanceSnapshot(instance, "a");
    clock.advance(1000);
    const b = await driver.createInstanceSnapshot(instance, "b");
    clock.advance(1000);
    const c = await driver.createInstanceSnapshot(instance, "c");
    expect((await driver.listInstanceSnapshots(instance)).map((s) => s.name)).toEqual(["a", "b", "c"]);
    expect(Date.parse(a.createdAt)).toBeLessThan(Date.parse(c.createdAt));
    await driver.deleteInstanceSnapshot(instance, b.id);
    expect((await driver.listInstanceSnapshots(instance)).map((s) => s.id)).toEqual([a.id, c.id]);
  });

  it("unknown snapshot ids reject with SnapshotNotFoundError and change nothing", async () => {
    const { driver } = one();
    const instance = makeInstance();
    await driver.spawn({ instance });
    await expect(driver.revertToInstanceSnapshot(instance, "nope")).rejects.toBeInstanceOf(SnapshotNotFoundError);
    await expect(driver.deleteInstanceSnapshot(instance, "nope")).rejects.toMatchObject({
      code: "VIRTKIT_SNAPSHOT_NOT_FOUND",
      snapshotId: "nope",
      instanceId: instance.uuid,
    });
    expect((await driver.getInfo(instance)).state).toBe(PowerState.RUNNING);
  });

  it("refuses a bad snapshot name", async () => {
    const { driver } = one();
    const instance = makeInstance();
    await driver.spawn({ instance });
    await expect(driver.createInstanceSnapshot(instance, "")).rejects.toMatchObject({ code: "VIRTKIT_INVALID_INPUT" });
    expect(await driver.listInstanceSnapshots(instance)).toEqual([]);
  });
});

describe("image snapshots", () => {
  it("report Nova's task states, upload the serialised disk with Nova's metadata", async () => {
    const { driver, images } = one();
    const instance = makeInstance({ kernelId: "k-1", ramdiskId: "r-1" });
    await driver.spawn({ instance });
    driver.writeGuestFile(instance.uuid, "/etc/motd", "hello");
    const image = await images.create({ name: "snap-of-vm" });
    const states: [string, string | null][] = [];
    await driver.snapshot(instance, image.id, { onTaskState: (s, e) => void states.push([s, e]) });
    expect(states).toEqual([
      [TaskState.IMAGE_PENDING_UPLOAD, TaskState.IMAGE_SNAPSHOT],
      [TaskState.IMAGE_UPLOADING, TaskState.IMAGE_PENDING_UPLOAD],
    ]);
    const record = await images.get(image.id);
    const expected = snapshotImageMetadata(instance, "qcow2", "snap-of-vm");
    expect(record).toMatchObject({
      name: "snap-of-vm",
      status: "active",
      diskFormat: "qcow2",
      containerFormat: "bare",
      owner: "project-1",
      properties: expected.properties,
    });
    expect(record.properties).toMatchObject({
      image_location: "snapshot",
      image_state: "available",
      owner_id: "project-1",
      kernel_id: "k-1",
      ramdisk_id: "r-1",
      os_type: "linux",
    });
    const files = parseDisk(await images.download(image.id));
    expect(Buffer.from(files.get("/etc/motd")!).toString()).toBe("hello");
    expect(record.size).toBeGreaterThan(0);
  });

  it("raw images snapshot as raw; ami stays ami", async () => {
    const { driver, images } = one();
    const raw = makeInstance({ imageMeta: { diskFormat: "raw", properties: {} } });
    const ami = makeInstance({ imageMeta: { diskFormat: "ami", containerFormat: "ami", properties: {} } });
    await driver.spawn({ instance: raw });
    await driver.spawn({ instance: ami });
    const i1 = await images.create({ name: "r" });
    const i2 = await images.create({ name: "a" });
    await driver.snapshot(raw, i1.id);
    await driver.snapshot(ami, i2.id);
    expect((await images.get(i1.id)).diskFormat).toBe("raw");
    expect(await images.get(i2.id)).toMatchObject({ diskFormat: "ami", containerFormat: "ami" });
    // The bytes are what the label says: raw data has no image header, qcow2 starts with QFI\xfb.
    const rawBytes = Buffer.from(await images.download(i1.id));
    expect(rawBytes.subarray(0, 4).toString("latin1")).not.toBe("QFI\xfb");
    expect(parseDisk(rawBytes).has("/etc/hostname")).toBe(true);
  });

  it("a qcow2 snapshot is a real qcow2 image whose contents are the serialised disk", async () => {
    const { driver, images } = one();
    const instance = makeInstance();
    await driver.spawn({ instance });
    driver.writeGuestFile(instance.uuid, "/big", "z".repeat(3 * 1024 * 1024));
    const image = await images.create({ name: "q" });
    await driver.snapshot(instance, image.id);
    const bytes = Buffer.from(await images.download(image.id));
    expect((await images.get(image.id)).diskFormat).toBe("qcow2");
    expect(bytes.subarray(0, 4).toString("latin1")).toBe("QFI\xfb");
    expect(bytes.readUInt32BE(4)).toBe(2);
    const files = parseDisk(bytes);
    // Over 2 MiB: more than one L2 table.
    expect(Buffer.from(files.get("/big")!).equals(Buffer.alloc(3 * 1024 * 1024, "z"))).toBe(true);
    expect(Buffer.from(diskImage(files, "raw")).equals(Buffer.from(serializeDisk(files)))).toBe(true);
    expect(() => parseDisk(Buffer.concat([bytes.subarray(0, 4), Buffer.alloc(10)]))).toThrow(RangeError);
  });

  it("serialisation is deterministic", async () => {
    const a = new Map([
      ["/b", Buffer.from("2")],
      ["/a", Buffer.from("1")],
    ]);
    const b = new Map([
      ["/a", Buffer.from("1")],
      ["/b", Buffer.from("2")],
    ]);
    expect(Buffer.from(serializeDisk(a)).equals(Buffer.from(serializeDisk(b)))).toBe(true);
    expect(() => parseDisk(new Uint8Array([1, 2, 3]))).toThrow(RangeError);
  });

  it.each(["RUNNING", "PAUSED", "SHUTDOWN", "SUSPENDED"] as const)("leaves a %s instance in that state", async (state) => {
    const { driver, images } = one();
    const instance = makeInstance();
    await driver.spawn({ instance });
    if (state === "PAUSED") await driver.pause(instance);
    if (state === "SHUTDOWN") await driver.powerOff(instance);
    if (state === "SUSPENDED") await driver.suspend(instance);
    const rec = recordEvents(driver);
    const image = await images.create({ name: "s" });
    await driver.snapshot(instance, image.id);
    expect((await driver.getInfo(instance)).state).toBe(PowerState[state]);
    expect(rec.events).toEqual([]);
  });

  it("an unknown image rejects with the image service's ImageNotFoundError, reporting no task state", async () => {
    const { driver } = one();
    const instance = makeInstance();
    await driver.spawn({ instance });
    const states: string[] = [];
    await expect(driver.snapshot(instance, "no-such-image", { onTaskState: (s) => void states.push(s) })).rejects.toBeInstanceOf(
      ImageNotFoundError,
    );
    expect(states).toEqual([]);
  });

  it("a failing task-state callback stops the upload", async () => {
    const { driver, images } = one();
    const instance = makeInstance();
    await driver.spawn({ instance });
    const image = await images.create({ name: "s" });
    await expect(
      driver.snapshot(instance, image.id, {
        onTaskState: (s) => {
          if (s === TaskState.IMAGE_UPLOADING) throw new UnexpectedTaskStateError(instance.uuid, ["image_pending_upload"], "deleting");
        },
      }),
    ).rejects.toBeInstanceOf(UnexpectedTaskStateError);
    expect(await images.get(image.id)).toMatchObject({ status: "queued", size: 0 });
  });
});

describe("image snapshot deadlines", () => {
  it("a delayed snapshot times out before reporting any task state or uploading", async () => {
    const { driver, images } = one();
    const instance = makeInstance();
    await driver.spawn({ instance });
    const image = await images.create({ name: "s" });
    driver.faults.delayNext("snapshot", 200);
    const states: string[] = [];
    await expect(
      driver.snapshot(instance, image.id, { timeoutMs: 20, onTaskState: (s) => void states.push(s) }),
    ).rejects.toMatchObject({ code: "VIRTKIT_OPERATION_TIMEOUT" });
    await new Promise((r) => setTimeout(r, 220));
    expect(states).toEqual([]);
    expect((await images.get(image.id)).status).toBe("queued");
  });
});
