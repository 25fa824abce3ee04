import {
  DEFAULT_MIGRATION_POLICY,
  InstanceNotFoundError,
  InvalidInputError,
  InvalidStateError,
  LiveMigrationFailedError,
  MigrationPreCheckError,
  OperationTimeoutError,
  PowerState,
  findError,
  type Instance,
  type MigrateData,
  type MigrationPolicy,
  type MigrationProgress,
} from "@virtkit/core";
import { describe, expect, it } from "vitest";
import { FakeCloud } from "./fake-cloud.js";
import { FakeDriver } from "./fake-driver.js";
import { makeCloud, makeInstance, recordEvents } from "./testing/fixtures.js";

const BLOCK: MigrationPolicy = { ...DEFAULT_MIGRATION_POLICY, block: true };

function pair(options: Parameters<typeof makeCloud>[1] = {}) {
  const env = makeCloud(["src", "dst"], options);
  return { ...env, src: env.drivers[0]!, dst: env.drivers[1]! };
}

/** Runs the checks and the preparation, as the compute manager does. */
async function prepare(src: FakeDriver, dst: FakeDriver, instance: Instance, policy = BLOCK): Promise<MigrateData> {
  let data = await dst.checkCanLiveMigrateDestination(instance, await src.getHostInfo(), policy);
  data = await src.checkCanLiveMigrateSource(instance, data);
  return dst.preLiveMigration(instance, data, { networkInfo: [] });
}

describe("live migration between two hosts", () => {
  it("really moves the instance: state, disk, snapshots, cpu time, password", async () => {
    const { src, dst, cloud, clock } = pair();
    const instance = makeInstance();
    await src.spawn({ instance });
    src.writeGuestFile(instance.uuid, "/data/db", "rows");
    const snap = await src.createInstanceSnapshot(instance, "before-move");
    clock.advance(2000);
    const cpuBefore = (await src.getInfo(instance)).cpuTimeNs;
    const srcEvents = recordEvents(src);
    const dstEvents = recordEvents(dst);
    const progress: MigrationProgress[] = [];

    const data = await prepare(src, dst, instance);
    expect(data).toMatchObject({ sourceHost: "src", destHost: "dst", plan: { scheme: "libvirt", bitmask: 155 } });
    expect(data.extra).toMatchObject({ uri: "qemu+tcp://dst/system", sharedStorage: false, prepared: true, sourceState: "RUNNING" });
    await src.liveMigration(instance, data, { onProgress: (p) => progress.push(p) });
    await dst.postLiveMigrationAtDestination(instance, data);

    expect(await src.instanceExists(instance)).toBe(false);
    expect(await src.listInstanceUuids()).toEqual([]);
    expect(await dst.listInstanceUuids()).toEqual([instance.uuid]);
    const info = await dst.getInfo(instance);
    expect(info.state).toBe(PowerState.RUNNING);
    expect(info.cpuTimeNs).toBeGreaterThanOrEqual(cpuBefore);
    expect(dst.readGuestFile(instance.uuid, "/data/db")).toBe("rows");
    expect((await dst.listInstanceSnapshots(instance)).map((s) => s.id)).toEqual([snap.id]);
    await expect(src.getInfo(instance)).rejects.toBeInstanceOf(InstanceNotFoundError);
    expect(cloud.locate(instance.uuid)?.name).toBe("dst");

    expect(progress).toHaveLength(10);
    expect(progress.at(-1)).toMatchObject({ dataRemainingBytes: 0 });
    expect(progress[0]!.dataTotalBytes).toBeGreaterThan(512 * 1024 * 1024);
    expect(srcEvents.transitions()).toEqual(["MIGRATION_COMPLETED"]);
    expect(dstEvents.transitions()).toEqual(["STARTED"]);
    expect(dst.fakeHost.reservations.size).toBe(0);

    // And back again, with the reverse roles.
    const back = await prepare(dst, src, instance);
    await dst.liveMigration(instance, back);
    await src.postLiveMigrationAtDestination(instance, back);
    expect(await src.listInstanceUuids()).toEqual([instance.uuid]);
  });

  it("moves a PAUSED instance, which stays paused", async () => {
    const { src, dst } = pair();
    const instance = makeInstance();
    await src.spawn({ instance });
    await src.pause(instance);
    const data = await prepare(src, dst, instance);
    await src.liveMigration(instance, data);
    expect((await dst.getInfo(instance)).state).toBe(PowerState.PAUSED);
  });

  it("shared storage: a plain live migration works, a block migration is refused", async () => {
    const { src, dst } = pair({ storagePool: "nfs" });
    const instance = makeInstance();
    await src.spawn({ instance });
    await expect(prepare(src, dst, instance, BLOCK)).rejects.toBeInstanceOf(MigrationPreCheckError);
    const data = await prepare(src, dst, instance, DEFAULT_MIGRATION_POLICY);
    expect(data.plan.bitmask).toBe(27);
    await src.liveMigration(instance, data);
    expect(await dst.instanceExists(instance)).toBe(true);
  });

  it("abort: rejects with LiveMigrationFailedError, instance still RUNNING on the source, nothing on the destination", async () => {
    const { src, dst } = pair();
    const instance = makeInstance();
    await src.spawn({ instance });
    const data = await prepare(src, dst, instance);
    const migration = src.liveMigration(instance, data);
    await src.liveMigrationAbort(instance);
    const err = await migration.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LiveMigrationFailedError);
    expect(err).toMatchObject({ instanceId: instance.uuid, reason: "aborted" });
    expect((await src.getInfo(instance)).state).toBe(PowerState.RUNNING);
    expect(await dst.listInstanceUuids()).toEqual([]);
    expect(await dst.instanceExists(instance)).toBe(false);
    await dst.rollbackLiveMigrationAtDestination(instance, data);
    expect(dst.fakeHost.reservations.size).toBe(0);
    expect(dst.fakeHost.freeMemoryMb()).toBe(dst.fakeHost.memoryMb);
    await expect(src.liveMigrationAbort(instance)).rejects.toBeInstanceOf(InvalidStateError);
  });

  it("abort mid-way (after some progress) with real time", async () => {
    const { src, dst } = pair({ migrationDurationMs: 10_000 });
    const instance = makeInstance();
    await src.spawn({ instance });
    const data = await prepare(src, dst, instance);
    let steps = 0;
    const migration = src.liveMigration(instance, data, {
      onProgress: () => {
        steps++;
        if (steps === 3) void src.liveMigrationAbort(instance);
      },
    });
    await expect(migration).rejects.toBeInstanceOf(LiveMigrationFailedError);
    expect(steps).toBe(3);
    expect(await src.instanceExists(instance)).toBe(true);
  });

  it("rollback at the destination before the move cleans the reservation; the move then fails", async () => {
    const { src, dst } = pair();
    const instance = makeInstance();
    await src.spawn({ instance });
    const data = await prepare(src, dst, instance);
    expect(dst.fakeHost.reservations.has(instance.uuid)).toBe(true);
    await dst.rollbackLiveMigrationAtDestination(instance, data);
    expect(dst.fakeHost.reservations.size).toBe(0);
    await expect(src.liveMigration(instance, data)).rejects.toBeInstanceOf(LiveMigrationFailedError);
    expect((await src.getInfo(instance)).state).toBe(PowerState.RUNNING);
  });

  it("force complete without post-copy pauses, then lands RUNNING", async () => {
    const { src, dst } = pair({ migrationDurationMs: 10_000 });
    const instance = makeInstance();
    await src.spawn({ instance });
    const events = recordEvents(src);
    const data = await prepare(src, dst, instance);
    const migration = src.liveMigration(instance, data);
    await src.liveMigrationForceComplete(instance);
    expect((await src.getInfo(instance)).state).toBe(PowerState.PAUSED);
    await migration;
    expect((await dst.getInfo(instance)).state).toBe(PowerState.RUNNING);
    expect(events.transitions()).toEqual(["PAUSED", "MIGRATION_COMPLETED"]);
  });

  it("force complete with post-copy switches to post-copy, which cannot be aborted", async () => {
    const { src, dst } = pair({ migrationDurationMs: 10_000 });
    const instance = makeInstance();
    await src.spawn({ instance });
    const events = recordEvents(src);
    const data = await prepare(src, dst, instance, { ...BLOCK, permitPostCopy: true });
    expect(data.plan.flags).toContain("POSTCOPY");
    const migration = src.liveMigration(instance, data);
    await src.liveMigrationForceComplete(instance);
    await expect(src.liveMigrationAbort(instance)).rejects.toBeInstanceOf(InvalidStateError);
    await migration;
    expect(events.transitions()).toEqual(["POSTCOPY_STARTED", "MIGRATION_COMPLETED"]);
    expect((await dst.getInfo(instance)).state).toBe(PowerState.RUNNING);
  });

  it("a migration deadline rejects with OperationTimeoutError and leaves the instance on the source", async () => {
    const { images } = makeCloud([]);
    // The system clock: the deadline is real time.
    const real = new FakeCloud();
    const src = new FakeDriver({ host: "src", cloud: real, imageService: images, migrationDurationMs: 5_000 });
    const dst = new FakeDriver({ host: "dst", cloud: real, imageService: images });
    const instance = makeInstance();
    await src.spawn({ instance });
    const data = await prepare(src, dst, instance);
    await expect(src.liveMigration(instance, data, { timeoutMs: 30 })).rejects.toBeInstanceOf(OperationTimeoutError);
    expect((await src.getInfo(instance)).state).toBe(PowerState.RUNNING);
    expect(await dst.instanceExists(instance)).toBe(false);
    // The instance is free to migrate again.
    src.setMigrationDuration(0);
    await src.liveMigration(instance, data);
    expect(await dst.instanceExists(instance)).toBe(true);
  });

  it("blocks lifecycle calls while migrating; destroy aborts the migration", async () => {
    const { src, dst } = pair({ migrationDurationMs: 10_000 });
    const instance = makeInstance();
    await src.spawn({ instance });
    const data = await prepare(src, dst, instance);
    const migration = src.liveMigration(instance, data);
    await expect(src.pause(instance)).rejects.toMatchObject({ code: "VIRTKIT_INVALID_STATE", state: "MIGRATING" });
    await src.destroy(instance);
    await expect(migration).rejects.toBeInstanceOf(LiveMigrationFailedError);
    expect(await dst.instanceExists(instance)).toBe(false);
    expect(await src.instanceExists(instance)).toBe(false);
  });
});

describe("migration pre-checks", () => {
  it("refuses a destination without enough free memory", async () => {
    const { cloud, images } = makeCloud([]);
    const src = new FakeDriver({ host: "src", cloud, imageService: images });
    const dst = new FakeDriver({ host: "dst", cloud, imageService: images, memoryMb: 1024 });
    const big = makeInstance({ flavor: { name: "m1.large", memoryMb: 2048, vcpus: 2, rootGb: 1 } });
    await src.spawn({ instance: big });
    const err = await dst.checkCanLiveMigrateDestination(big, await src.getHostInfo(), BLOCK).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MigrationPreCheckError);
    expect((err as Error).message).toContain("free memory");
  });

  it("counts reservations: two prepared migrations cannot overcommit the destination", async () => {
    const { cloud, images } = makeCloud([]);
    const src = new FakeDriver({ host: "src", cloud, imageService: images });
    const dst = new FakeDriver({ host: "dst", cloud, imageService: images, memoryMb: 1024 });
    const a = makeInstance({ flavor: { name: "m", memoryMb: 768, vcpus: 1, rootGb: 1 } });
    const b = makeInstance({ flavor: { name: "m", memoryMb: 768, vcpus: 1, rootGb: 1 } });
    await src.spawn({ instance: a });
    await src.spawn({ instance: b });
    await prepare(src, dst, a);
    await expect(prepare(src, dst, b)).rejects.toBeInstanceOf(MigrationPreCheckError);
  });

  it("refuses the same host, an instance already there, and a source that is not the instance's host", async () => {
    const { src, dst, cloud, images } = pair();
    const third = new FakeDriver({ host: "third", cloud, imageService: images });
    const instance = makeInstance();
    await src.spawn({ instance });
    await expect(src.checkCanLiveMigrateDestination(instance, await src.getHostInfo(), BLOCK)).rejects.toBeInstanceOf(
      MigrationPreCheckError,
    );
    await expect(dst.checkCanLiveMigrateDestination(instance, await third.getHostInfo(), BLOCK)).rejects.toBeInstanceOf(
      MigrationPreCheckError,
    );
    const data = await prepare(src, dst, instance);
    await src.liveMigration(instance, data);
    await expect(dst.checkCanLiveMigrateDestination(instance, await src.getHostInfo(), BLOCK)).rejects.toBeInstanceOf(
      MigrationPreCheckError,
    );
    await expect(
      dst.checkCanLiveMigrateDestination(makeInstance(), await src.getHostInfo(), BLOCK),
    ).rejects.toBeInstanceOf(InstanceNotFoundError);
  });

  it("refuses a non-block migration without shared storage", async () => {
    const { src, dst } = pair();
    const instance = makeInstance();
    await src.spawn({ instance });
    const err = await dst
      .checkCanLiveMigrateDestination(instance, await src.getHostInfo(), DEFAULT_MIGRATION_POLICY)
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MigrationPreCheckError);
    expect((err as Error).message).toContain("block migration is required");
  });

  it("refuses incompatible virt types", async () => {
    const { cloud, images } = makeCloud([]);
    const src = new FakeDriver({ host: "src", cloud, imageService: images, virtType: "kvm" });
    const dst = new FakeDriver({ host: "dst", cloud, imageService: images, virtType: "xen" });
    const instance = makeInstance();
    await src.spawn({ instance });
    await expect(dst.checkCanLiveMigrateDestination(instance, await src.getHostInfo(), BLOCK)).rejects.toThrow(/incompatible/);
  });

  it.each(["SHUTDOWN", "SUSPENDED", "CRASHED"] as const)("the source refuses a %s instance", async (state) => {
    const { src, dst } = pair();
    const instance = makeInstance();
    await src.spawn({ instance });
    const data = await dst.checkCanLiveMigrateDestination(instance, await src.getHostInfo(), BLOCK);
    if (state === "SHUTDOWN") await src.powerOff(instance);
    if (state === "SUSPENDED") await src.suspend(instance);
    if (state === "CRASHED") src.faults.crash(instance.uuid);
    const err = await src.checkCanLiveMigrateSource(instance, data).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MigrationPreCheckError);
    expect(findError(err, "VIRTKIT_INVALID_STATE")).toMatchObject({ state });
  });

  it("refuses an impossible policy with InvalidInputError before anything", async () => {
    const { src, dst } = pair();
    const instance = makeInstance();
    await src.spawn({ instance });
    await expect(
      dst.checkCanLiveMigrateDestination(instance, await src.getHostInfo(), { ...BLOCK, tunnelled: true, nativeTls: true }),
    ).rejects.toBeInstanceOf(InvalidInputError);
    expect(dst.fakeHost.reservations.size).toBe(0);
  });

  it("planMigration uses the host's facts: xen drops PEER2PEER, post-copy needs support", () => {
    const { drivers } = makeCloud(["x"], { virtType: "xen", postCopySupported: false });
    const plan = drivers[0]!.planMigration({ ...DEFAULT_MIGRATION_POLICY, permitPostCopy: true, permitAutoConverge: true });
    expect(plan.flags).toEqual(["LIVE", "PERSIST_DEST", "UNDEFINE_SOURCE", "AUTO_CONVERGE"]);
    const { drivers: kvm } = makeCloud(["k"]);
    expect(kvm[0]!.planMigration({ ...DEFAULT_MIGRATION_POLICY, permitPostCopy: true, permitAutoConverge: true }).bitmask).toBe(
      32795,
    );
    kvm[0]!.setCapabilities({ postCopy: false });
    expect(kvm[0]!.planMigration({ ...DEFAULT_MIGRATION_POLICY, permitPostCopy: true }).bitmask).toBe(27);
    expect(kvm[0]!.planMigration(DEFAULT_MIGRATION_POLICY, { virtType: "xen" }).bitmask).toBe(25);
  });
});

describe("non-live migration", () => {
  it("pauses the guest for the copy and resumes it on the destination", async () => {
    const { src, dst } = pair();
    const instance = makeInstance();
    await src.spawn({ instance });
    const srcEvents = recordEvents(src);
    const dstEvents = recordEvents(dst);
    const data = await prepare(src, dst, instance, { ...BLOCK, live: false });
    expect(data.plan.flags).not.toContain("LIVE");
    const states: number[] = [];
    await src.liveMigration(instance, data, {
      onProgress: () => void src.getInfo(instance).then((i) => states.push(i.state)),
    });
    expect(states[0]).toBe(PowerState.PAUSED);
    expect((await dst.getInfo(instance)).state).toBe(PowerState.RUNNING);
    expect(srcEvents.transitions()).toEqual(["PAUSED", "MIGRATION_COMPLETED"]);
    expect(dstEvents.transitions()).toEqual(["RESUMED", "STARTED"]);
  });

  it("an aborted non-live migration leaves the guest running on the source", async () => {
    const { src, dst } = pair();
    const instance = makeInstance();
    await src.spawn({ instance });
    const data = await prepare(src, dst, instance, { ...BLOCK, live: false });
    const migration = src.liveMigration(instance, data);
    await src.liveMigrationAbort(instance);
    await expect(migration).rejects.toBeInstanceOf(LiveMigrationFailedError);
    expect((await src.getInfo(instance)).state).toBe(PowerState.RUNNING);
  });
});

describe("cancellation", () => {
  it("an AbortSignal mid-transfer rejects with OperationAbortedError; the instance stays on the source", async () => {
    const { images } = makeCloud([]);
    const real = new FakeCloud();
    const src = new FakeDriver({ host: "src", cloud: real, imageService: images, migrationDurationMs: 5_000 });
    const dst = new FakeDriver({ host: "dst", cloud: real, imageService: images });
    const instance = makeInstance();
    await src.spawn({ instance });
    const data = await prepare(src, dst, instance);
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 20);
    await expect(src.liveMigration(instance, data, { signal: ac.signal })).rejects.toMatchObject({
      code: "VIRTKIT_OPERATION_ABORTED",
    });
    expect((await src.getInfo(instance)).state).toBe(PowerState.RUNNING);
    expect(await dst.listInstanceUuids()).toEqual([]);
    await dst.rollbackLiveMigrationAtDestination(instance, data);
    expect(dst.fakeHost.reservationUuids()).toEqual([]);
  });

  it("abort and force complete act at once, not after the transfer step in progress (real time)", async () => {
    for (const act of ["abort", "force"] as const) {
      const { images } = makeCloud([]);
      const real = new FakeCloud();
      // 10 steps of 2 s each: waiting out a step would take seconds.
      const src = new FakeDriver({ host: "src", cloud: real, imageService: images, migrationDurationMs: 20_000 });
      const dst = new FakeDriver({ host: "dst", cloud: real, imageService: images });
      const instance = makeInstance();
      await src.spawn({ instance });
      const data = await prepare(src, dst, instance);
      const t0 = performance.now();
      const moving = src.liveMigration(instance, data);
      moving.catch(() => undefined);
      await new Promise((r) => setTimeout(r, 10));
      if (act === "abort") {
        await src.liveMigrationAbort(instance);
        await expect(moving).rejects.toBeInstanceOf(LiveMigrationFailedError);
        expect((await src.getInfo(instance)).state).toBe(PowerState.RUNNING);
      } else {
        await src.liveMigrationForceComplete(instance);
        await moving;
        expect((await dst.getInfo(instance)).state).toBe(PowerState.RUNNING);
      }
      expect(performance.now() - t0).toBeLessThan(1_000);
    }
  });
});
