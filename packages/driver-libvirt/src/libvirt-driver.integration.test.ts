// The driver against a REAL private libvirtd (scripts/libvirtd.sh), mostly with the `test`
// hypervisor through the daemon. Skipped unless VIRTKIT_LIBVIRT_SOCKET is set. The test
// hypervisor's state is per connection, so every test builds its own driver (own connection).

import { randomUUID } from "node:crypto";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  AdminPasswordNotSupportedError,
  DEFAULT_MIGRATION_POLICY,
  GuestAgentNotEnabledError,
  InMemoryImageService,
  InstanceExistsError,
  InstanceNotFoundError,
  InstanceNotRunningError,
  InvalidStateError,
  LiveMigrationFailedError,
  PowerState,
  Secret,
  SnapshotNotFoundError,
  TaskState,
  UnsupportedOperationError,
  type Instance,
  type LifecycleEvent,
} from "@virtkit/core";
import { LibvirtConnection } from "@virtkit/libvirt-rpc";
import { removeScratchPool } from "./testing/scratch-pool.js";
import { afterAll, describe, expect, it } from "vitest";
import { LibvirtDriver, type LibvirtDriverOptions } from "./libvirt-driver.js";
import { planMigration } from "./migration-flags.js";

const SOCKET = process.env.VIRTKIT_LIBVIRT_SOCKET;
const TCP = process.env.VIRTKIT_LIBVIRT_TCP;
const REASON = "VIRTKIT_LIBVIRT_SOCKET is not set (run `scripts/libvirtd.sh start && eval $(scripts/libvirtd.sh env)`)";
if (!SOCKET) console.warn(`[driver-libvirt] skipping real-libvirtd integration tests: ${REASON}`);

const TEST_URI = `test+unix:///default?socket=${SOCKET ?? ""}`;

function instance(over: Partial<Instance> = {}): Instance {
  const uuid = randomUUID();
  return {
    uuid,
    name: `vk-${uuid.slice(0, 8)}`,
    projectId: "proj-1",
    userId: "user-1",
    flavor: { name: "m1.tiny", memoryMb: 64, vcpus: 1, rootGb: 1 },
    imageMeta: { id: "img-base", diskFormat: "qcow2", containerFormat: "bare", properties: {} },
    ...over,
  };
}

async function withDriver<T>(
  fn: (driver: LibvirtDriver) => Promise<T>,
  options: Partial<LibvirtDriverOptions> = {},
): Promise<T> {
  const driver = new LibvirtDriver({ uri: TEST_URI, pollIntervalMs: 20, ...options });
  await driver.initHost("host-a");
  try {
    return await fn(driver);
  } finally {
    await driver.cleanupHost("host-a");
  }
}

const state = async (d: LibvirtDriver, i: Instance): Promise<number> => (await d.getInfo(i)).state;

describe.skipIf(!SOCKET)(`LibvirtDriver against a real libvirtd${SOCKET ? "" : ` (skipped: ${REASON})`}`, () => {
  it("declares the test hypervisor's capabilities honestly", () => {
    const d = new LibvirtDriver({ uri: TEST_URI });
    expect(d.virtType).toBe("test");
    expect(d.capabilities).toMatchObject({
      pause: true,
      suspend: true,
      instanceSnapshots: true,
      setAdminPassword: true,
      lifecycleEvents: true,
      rescue: true,
      liveMigration: false,
      imageSnapshot: false,
      consoleOutput: false,
    });
  });

  it("reads host info with a version decoded from libvirt's packed number", async () => {
    await withDriver(async (d) => {
      const host = await d.getHostInfo();
      expect(host.hypervisorType).toBe("TEST");
      expect(host.hypervisorVersion).toMatch(/^\d+\.\d+\.\d+$/);
      expect(host.vcpus).toBeGreaterThan(0);
      expect(host.memoryMb).toBeGreaterThan(0);
      expect(host.hostname).not.toBe("");
    });
  });

  it("spawns (define + create, RUNNING), reports info, lists, and refuses a second spawn", async () => {
    await withDriver(async (d) => {
      const i = instance();
      await d.spawn({ instance: i });
      const info = await d.getInfo(i);
      expect(info.state).toBe(PowerState.RUNNING);
      expect(info.maxMemoryKb).toBe(64 * 1024);
      expect(info.vcpus).toBe(1);
      expect(typeof info.cpuTimeNs).toBe("bigint");
      expect(info.internalId).toMatch(/^\d+$/);
      expect(await d.instanceExists(i)).toBe(true);
      expect(await d.listInstances()).toContain(i.name);
      expect(await d.listInstanceUuids()).toContain(i.uuid);
      await expect(d.spawn({ instance: i })).rejects.toBeInstanceOf(InstanceExistsError);
      await d.destroy(i);
      expect(await d.instanceExists(i)).toBe(false);
      await expect(d.getInfo(i)).rejects.toBeInstanceOf(InstanceNotFoundError);
    });
  });

  it("pauses and unpauses, refusing illegal transitions without changing anything", async () => {
    await withDriver(async (d) => {
      const i = instance();
      await d.spawn({ instance: i });
      await expect(d.unpause(i)).rejects.toMatchObject({ code: "VIRTKIT_INVALID_STATE", state: "RUNNING" });
      await d.pause(i);
      expect(await state(d, i)).toBe(PowerState.PAUSED);
      // libvirt's own answer to a second suspend is not a clean state error: the driver checks first.
      const again = await d.pause(i).catch((e: unknown) => e);
      expect(again).toBeInstanceOf(InvalidStateError);
      expect(again).toMatchObject({ operation: "pause", state: "PAUSED", instanceId: i.uuid });
      expect(await state(d, i)).toBe(PowerState.PAUSED);
      await d.unpause(i);
      expect(await state(d, i)).toBe(PowerState.RUNNING);
      await d.powerOff(i);
      await expect(d.pause(i)).rejects.toMatchObject({ code: "VIRTKIT_INVALID_STATE", state: "SHUTDOWN" });
      await expect(d.resume(i)).rejects.toBeInstanceOf(InvalidStateError);
      expect(await state(d, i)).toBe(PowerState.SHUTDOWN);
      await d.destroy(i);
    });
  });

  it("suspends as managed save (SUSPENDED) and resumes from it", async () => {
    await withDriver(async (d) => {
      const i = instance();
      await d.spawn({ instance: i });
      await expect(d.resume(i)).rejects.toMatchObject({ code: "VIRTKIT_INVALID_STATE", state: "RUNNING" });
      await d.suspend(i);
      expect(await state(d, i)).toBe(PowerState.SUSPENDED);
      await expect(d.suspend(i)).rejects.toMatchObject({ state: "SUSPENDED" });
      await expect(d.pause(i)).rejects.toBeInstanceOf(InvalidStateError);
      await d.resume(i);
      expect(await state(d, i)).toBe(PowerState.RUNNING);
      // A paused guest suspends too, and resume brings it back running.
      await d.pause(i);
      await d.suspend(i);
      expect(await state(d, i)).toBe(PowerState.SUSPENDED);
      await d.resume(i);
      expect(await state(d, i)).toBe(PowerState.RUNNING);
      await d.destroy(i);
    });
  });

  it("powers off (clean, then hard) and on, and reboots soft and hard", async () => {
    await withDriver(async (d) => {
      const i = instance();
      await d.spawn({ instance: i });
      await d.powerOff(i, { cleanShutdownTimeoutSec: 5, retryIntervalSec: 1 });
      expect(await state(d, i)).toBe(PowerState.SHUTDOWN);
      await d.powerOff(i); // already off: fine, as Nova's _destroy
      await d.powerOn(i);
      expect(await state(d, i)).toBe(PowerState.RUNNING);
      await d.powerOn(i); // already on: nothing to do
      const before = (await d.getInfo(i)).internalId;
      await d.reboot(i, "SOFT");
      expect(await state(d, i)).toBe(PowerState.RUNNING);
      await d.reboot(i, "HARD");
      const after = await d.getInfo(i);
      expect(after.state).toBe(PowerState.RUNNING);
      expect(after.internalId).not.toBe(before);
      await d.powerOff(i);
      await d.reboot(i, "SOFT"); // not running: Nova goes hard, which starts it
      expect(await state(d, i)).toBe(PowerState.RUNNING);
      await d.destroy(i);
    });
  });

  it("destroys idempotently: twice, stopped, unknown", async () => {
    await withDriver(async (d) => {
      const i = instance();
      await d.spawn({ instance: i });
      await d.destroy(i);
      await d.destroy(i);
      await d.destroy(instance());
      const j = instance();
      await d.spawn({ instance: j });
      await d.powerOff(j);
      await d.destroy(j, { destroyDisks: false });
      expect(await d.instanceExists(j)).toBe(false);
      await d.destroy(j); // deletes the kept disk
    });
  });

  it("creates, lists, reverts and deletes instance snapshots", async () => {
    await withDriver(async (d) => {
      const i = instance();
      await d.spawn({ instance: i });
      const s1 = await d.createInstanceSnapshot(i, "before", { description: "first <one>" });
      expect(s1).toMatchObject({
        name: "before",
        instanceUuid: i.uuid,
        powerState: PowerState.RUNNING,
        description: "first <one>",
      });
      await d.pause(i);
      const s2 = await d.createInstanceSnapshot(i, "paused");
      expect(s2.powerState).toBe(PowerState.PAUSED);
      const list = await d.listInstanceSnapshots(i);
      expect(list.map((s) => s.id)).toEqual([s1.id, s2.id]);
      await d.revertToInstanceSnapshot(i, s1.id);
      expect(await state(d, i)).toBe(PowerState.RUNNING);
      await d.revertToInstanceSnapshot(i, s2.id);
      expect(await state(d, i)).toBe(PowerState.PAUSED);
      await d.deleteInstanceSnapshot(i, s1.id);
      expect((await d.listInstanceSnapshots(i)).map((s) => s.id)).toEqual([s2.id]);
      await expect(d.revertToInstanceSnapshot(i, s1.id)).rejects.toBeInstanceOf(SnapshotNotFoundError);
      await expect(d.deleteInstanceSnapshot(i, "nope")).rejects.toMatchObject({ snapshotId: "nope" });
      await d.destroy(i); // undefine removes the snapshot metadata too
    });
  });

  it("sets the admin password through the test driver and never leaks it", async () => {
    await withDriver(async (d) => {
      const i = instance({ imageMeta: { properties: { os_admin_user: "admin", hw_qemu_guest_agent: true } } });
      await d.spawn({ instance: i });
      await d.setAdminPassword(i, new Secret("s3cret-pw"));
      // Like qemu, the test hypervisor needs the agent enabled in the image.
      const noAgent = instance();
      await d.spawn({ instance: noAgent });
      await expect(d.setAdminPassword(noAgent, new Secret("s3cret-pw"))).rejects.toBeInstanceOf(
        GuestAgentNotEnabledError,
      );
      await d.destroy(noAgent);
      await d.powerOff(i);
      const err = await d.setAdminPassword(i, new Secret("s3cret-pw")).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(InstanceNotRunningError);
      expect(JSON.stringify(err) + String(err)).not.toContain("s3cret-pw");
      const ghost = instance({ imageMeta: { properties: { hw_qemu_guest_agent: true } } });
      await expect(d.setAdminPassword(ghost, new Secret("x"))).rejects.toBeInstanceOf(InstanceNotFoundError);
      await d.destroy(i);
    });
  });

  it("refuses the admin password without a guest agent for qemu/kvm, and for other types", async () => {
    const qemu = new LibvirtDriver({ uri: TEST_URI, virtType: "qemu" });
    await expect(qemu.setAdminPassword(instance(), new Secret("x"))).rejects.toBeInstanceOf(GuestAgentNotEnabledError);
    const xen = new LibvirtDriver({ uri: TEST_URI, virtType: "xen" });
    await expect(xen.setAdminPassword(instance(), new Secret("x"))).rejects.toBeInstanceOf(
      AdminPasswordNotSupportedError,
    );
  });

  it("rescues with a rescue disk first and unrescues to the original definition", async () => {
    await withDriver(async (d) => {
      const i = instance();
      await d.spawn({ instance: i });
      await d.rescue(i, { id: "rescue-img", properties: {} });
      expect(await state(d, i)).toBe(PowerState.RUNNING);
      await expect(d.rescue(i, { properties: {} })).rejects.toMatchObject({ state: "RESCUED" });
      await d.unrescue(i);
      expect(await state(d, i)).toBe(PowerState.RUNNING);
      await expect(d.unrescue(i)).rejects.toBeInstanceOf(InvalidStateError);
      await d.destroy(i);
    });
  });

  it("reports image snapshots and migration as unsupported by the test hypervisor, cleanly", async () => {
    const images = new InMemoryImageService();
    await withDriver(
      async (d) => {
        const i = instance();
        await d.spawn({ instance: i });
        const image = await images.create({ name: "snap" });
        await expect(d.snapshot(i, image.id)).rejects.toBeInstanceOf(UnsupportedOperationError);
        expect(await state(d, i)).toBe(PowerState.RUNNING);
        const host = await d.getHostInfo();
        // Undeclared, so refused as unsupported like every other undeclared operation.
        await expect(
          d.checkCanLiveMigrateDestination(i, { ...host, hostname: "elsewhere" }, DEFAULT_MIGRATION_POLICY),
        ).rejects.toMatchObject({ code: "VIRTKIT_UNSUPPORTED_OPERATION", capability: "liveMigration" });
        expect(() => d.planMigration(DEFAULT_MIGRATION_POLICY)).toThrow(UnsupportedOperationError);
        const plan = planMigration(DEFAULT_MIGRATION_POLICY, { virtType: "test" });
        const data = { sourceHost: "a", destHost: "b", policy: DEFAULT_MIGRATION_POLICY, plan, extra: {} };
        await expect(d.liveMigration(i, data)).rejects.toBeInstanceOf(UnsupportedOperationError);
        await expect(d.liveMigrationForceComplete(i)).rejects.toBeInstanceOf(UnsupportedOperationError);
        expect(await state(d, i)).toBe(PowerState.RUNNING);
        await d.destroy(i);
      },
      { imageService: images },
    );
  });

  it("maps the daemon's own migration refusal to LiveMigrationFailedError", async () => {
    // The test hypervisor's pristine `test` domain exists on every connection; a driver that
    // believes it is qemu really calls PERFORM3_PARAMS, which the test hypervisor refuses.
    let uuid: string;
    {
      await using conn = await LibvirtConnection.open(TEST_URI);
      uuid = (await conn.domainLookupByName("test")).uuid;
    }
    await withDriver(
      async (d) => {
        const i = instance({ uuid, name: "test" });
        const plan = d.planMigration(DEFAULT_MIGRATION_POLICY);
        expect(plan.bitmask).toBe(27);
        const data = {
          sourceHost: "a",
          destHost: "b",
          policy: { ...DEFAULT_MIGRATION_POLICY, bandwidthMiBps: 10 },
          plan,
          extra: { destUri: "qemu+tcp://127.0.0.1:1/system", migrateUri: "tcp://127.0.0.1:1" },
        };
        const err = await d.liveMigration(i, data).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(LiveMigrationFailedError);
        expect(err).toMatchObject({ instanceId: uuid });
        expect(await state(d, i)).toBe(PowerState.RUNNING);
        // The test hypervisor has no job API at all.
        await expect(d.liveMigrationAbort(i)).rejects.toBeInstanceOf(UnsupportedOperationError);
      },
      { virtType: "qemu" },
    );
  });

  it("translates lifecycle events with the instance uuid", async () => {
    await withDriver(async (d) => {
      const events: LifecycleEvent[] = [];
      const off = d.registerEventListener((e) => events.push(e));
      const i = instance();
      await d.spawn({ instance: i });
      await d.pause(i);
      await d.unpause(i);
      await d.suspend(i);
      await d.resume(i);
      await d.powerOff(i);
      await expect
        .poll(() => events.filter((e) => e.instanceUuid === i.uuid).map((e) => e.transition), { timeout: 5000 })
        .toEqual(["STARTED", "PAUSED", "RESUMED", "SUSPENDED", "STARTED", "STOPPED"]);
      expect(events[0]).toMatchObject({ host: "host-a", instanceUuid: i.uuid });
      off();
      await d.destroy(i);
    });
  });

  it("honours an aborted signal and a deadline", async () => {
    await withDriver(async (d) => {
      const ac = new AbortController();
      ac.abort();
      await expect(d.listInstances({ signal: ac.signal })).rejects.toMatchObject({ code: "VIRTKIT_OPERATION_ABORTED" });
      const i = instance();
      await expect(d.spawn({ instance: i }, { timeoutMs: 1 })).rejects.toMatchObject({
        code: "VIRTKIT_OPERATION_TIMEOUT",
      });
    });
  });

  it.skipIf(!TCP)("works over test+tcp:// too", async () => {
    await withDriver(
      async (d) => {
        const i = instance();
        await d.spawn({ instance: i });
        expect(await state(d, i)).toBe(PowerState.RUNNING);
        await d.pause(i);
        expect(await state(d, i)).toBe(PowerState.PAUSED);
        await d.destroy(i);
        await d.destroy(i);
      },
      { uri: `test+tcp://${TCP}/default` },
    );
  });

  describe("QEMU (TCG) domain on qemu:///system", () => {
    const dir = mkdtempSync(join(tmpdir(), "vk-drv-pool-"));
    const pool = `vk-drv-${process.pid}`;
    afterAll(() => removeScratchPool(SOCKET, pool, dir));

    it("image-snapshots a running guest through a volume stream, keeping its power state", async () => {
      const images = new InMemoryImageService();
      await withDriver(
        async (d) => {
          const i = instance({
            flavor: { name: "m1.nano", memoryMb: 64, vcpus: 1, rootGb: 1 },
            imageMeta: {
              id: "img-base",
              diskFormat: "qcow2",
              containerFormat: "bare",
              properties: { os_type: "linux" },
            },
          });
          await d.spawn({ instance: i });
          try {
            expect(await state(d, i)).toBe(PowerState.RUNNING);
            const image = await images.create({ name: "snap-1" });
            const seen: [string, string | null][] = [];
            await d.snapshot(i, image.id, { onTaskState: (t, e) => void seen.push([t, e]) });
            expect(seen).toEqual([
              [TaskState.IMAGE_PENDING_UPLOAD, TaskState.IMAGE_SNAPSHOT],
              [TaskState.IMAGE_UPLOADING, TaskState.IMAGE_PENDING_UPLOAD],
            ]);
            expect(await state(d, i)).toBe(PowerState.RUNNING);
            const rec = await images.get(image.id);
            expect(rec).toMatchObject({
              status: "active",
              name: "snap-1",
              diskFormat: "qcow2",
              containerFormat: "bare",
              owner: "proj-1",
              properties: {
                image_location: "snapshot",
                image_state: "available",
                owner_id: "proj-1",
                os_type: "linux",
              },
            });
            const data = await images.download(image.id);
            expect(rec.size).toBeGreaterThan(0);
            expect(Buffer.from(data.subarray(0, 4)).toString("latin1")).toBe("QFI\xfb");
            // Paused stays paused.
            await d.pause(i);
            const image2 = await images.create({ name: "snap-2" });
            await d.snapshot(i, image2.id);
            expect(await state(d, i)).toBe(PowerState.PAUSED);
            // Stopped stays stopped.
            await d.powerOff(i);
            const image3 = await images.create({ name: "snap-3" });
            await d.snapshot(i, image3.id);
            expect(await state(d, i)).toBe(PowerState.SHUTDOWN);
          } finally {
            await d.destroy(i);
          }
          expect(await d.instanceExists(i)).toBe(false);
        },
        {
          uri: "qemu:///system",
          virtType: "qemu",
          pool,
          poolPath: dir,
          imageService: images,
          connectOptions: { socketPath: SOCKET },
        },
      );
    }, 120_000);

    it("captures SeaBIOS on the serial console through a console stream, and releases it", async () => {
      const i = instance({ flavor: { name: "m1.nano", memoryMb: 64, vcpus: 1, rootGb: 1 } });
      const opts = {
        uri: "qemu:///system",
        virtType: "qemu",
        pool,
        poolPath: dir,
        connectOptions: { socketPath: SOCKET },
      };
      const d = new LibvirtDriver({ pollIntervalMs: 20, ...opts });
      await d.initHost("host-a");
      let cleaned = false;
      try {
        expect(d.capabilities.consoleOutput).toBe(true);
        await d.spawn({ instance: i });
        expect(await d.getConsoleOutput(i)).toContain("SeaBIOS");
        await d.cleanupHost("host-a");
        cleaned = true;
        // The daemon released our console session: another client opens it without FORCE.
        await using conn = await LibvirtConnection.open("qemu:///system", { socketPath: SOCKET });
        const dom = await conn.domainLookupByUuid(i.uuid);
        const stream = await conn.domainOpenConsole(dom, null, 0);
        stream.destroy();
      } finally {
        if (!cleaned) await d.cleanupHost("host-a");
      }
      // A new driver finds the guest running and opens its console lazily: a read that succeeds.
      await withDriver(async (d2) => {
        expect(typeof (await d2.getConsoleOutput(i))).toBe("string");
        await d2.powerOff(i);
        await d2.destroy(i);
      }, opts);
    }, 120_000);
  });
});
