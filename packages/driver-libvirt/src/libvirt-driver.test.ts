import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  DEFAULT_MIGRATION_POLICY,
  GuestAgentNotEnabledError,
  GuestAgentUnresponsiveError,
  HypervisorUnavailableError,
  InMemoryImageService,
  InstanceNotRunningError,
  InvalidInputError,
  InvalidStateError,
  MigrationPreCheckError,
  PasswordSetFailedError,
  PowerOffFailureError,
  PowerState,
  Secret,
  TaskState,
  UnsupportedOperationError,
  type Instance,
  type LifecycleEvent,
} from "@virtkit/core";
import { VirErrorNumber as E } from "@virtkit/libvirt-rpc";
import { describe, expect, it } from "vitest";
import { LibvirtDriver, virtTypeFromUri, type LibvirtDriverOptions } from "./libvirt-driver.js";
import { FakeLibvirt, daemonError } from "./testing/fake-libvirt.js";

const inst = (over: Partial<Instance> = {}): Instance => ({
  uuid: "3f1c2b9e-5a4d-4c3b-8a2f-1e0d9c8b7a6f",
  name: "vm-1",
  projectId: "proj",
  flavor: { name: "m1", memoryMb: 64, vcpus: 1, rootGb: 1 },
  imageMeta: { properties: { hw_qemu_guest_agent: true } },
  ...over,
});

async function setup(over: Partial<LibvirtDriverOptions> = {}, fake = new FakeLibvirt()) {
  const driver = new LibvirtDriver({ uri: "qemu:///system", pollIntervalMs: 1, connector: async () => fake, ...over });
  await driver.initHost("host-a");
  return { driver, fake };
}

const count = (fake: FakeLibvirt, method: string): number => fake.calls.filter((c) => c.method === method).length;

describe("virtTypeFromUri", () => {
  it.each([
    ["qemu:///system", "qemu"],
    ["qemu+tcp://h/system", "qemu"],
    ["test+unix:///default?socket=/x", "test"],
    ["xen:///", "xen"],
    ["lxc:///", "lxc"],
  ])("%s -> %s", (uri, type) => expect(virtTypeFromUri(uri)).toBe(type));
});

describe("LibvirtDriver (in-memory libvirt)", () => {
  it("reports an unreachable daemon as HypervisorUnavailableError", async () => {
    const driver = new LibvirtDriver({
      uri: "qemu:///system",
      connector: async () => {
        throw new Error("connect ENOENT /run/libvirt/libvirt-sock");
      },
    });
    await expect(driver.initHost("h")).rejects.toBeInstanceOf(HypervisorUnavailableError);
  });

  it("never puts a password from the connection URI into the unavailable error", async () => {
    const driver = new LibvirtDriver({
      uri: "qemu+tcp://admin:hunter2@192.0.2.1/system?password=hunter3",
      connector: async () => {
        throw new Error("connect ECONNREFUSED");
      },
    });
    const err = await driver.initHost("h").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HypervisorUnavailableError);
    expect(JSON.stringify(err) + String((err as Error).message)).not.toMatch(/hunter[23]/);
    expect((err as HypervisorUnavailableError).host).toMatch(/192\.0\.2\.1/);
  });

  it("refuses an invalid name before anything reaches libvirt", async () => {
    const { driver, fake } = await setup();
    await expect(driver.spawn({ instance: inst({ name: "a'><evil/>" }) })).rejects.toBeInstanceOf(InvalidInputError);
    expect(count(fake, "domainDefineXml")).toBe(0);
  });

  it("lists a domain whose XML it cannot read by its libvirt name, with a warning, and the others as ever", async () => {
    const warnings: string[] = [];
    const { driver, fake } = await setup({ logger: { warn: (m: string) => warnings.push(m) } });
    const good = inst({ name: "good-one" });
    const bad = inst({ name: "bad-one", uuid: "0b6c1f7e-2d3a-4e5f-9a8b-7c6d5e4f3a2b" });
    await driver.spawn({ instance: good });
    await driver.spawn({ instance: bad });
    const broken = fake.domains.get(bad.uuid)!;
    // What another tool, or a daemon this driver refuses, might hand back: XML that does not parse.
    broken.xml = "<domain><name>x</domain>";
    const names = await driver.listInstances();
    expect([...names].sort()).toEqual(["good-one", broken.dom.name].sort());
    expect(warnings).toContain("domain XML could not be read; listed by its libvirt name");
  });

  it("refuses to pause a paused domain even though libvirt would accept it", async () => {
    const { driver, fake } = await setup();
    const i = inst();
    await driver.spawn({ instance: i });
    await driver.pause(i);
    await expect(driver.pause(i)).rejects.toMatchObject({
      code: "VIRTKIT_INVALID_STATE",
      state: "PAUSED",
      operation: "pause",
    });
    expect(count(fake, "domainSuspend")).toBe(1);
  });

  it("maps VIR_ERR_OPERATION_INVALID to InvalidStateError with the current state", async () => {
    const { driver, fake } = await setup();
    const i = inst();
    await driver.spawn({ instance: i });
    fake.failNext("domainSuspend", daemonError(E.VIR_ERR_OPERATION_INVALID, "domain is not running"));
    const err = await driver.pause(i).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InvalidStateError);
    expect(err).toMatchObject({ state: "RUNNING", operation: "pause" });
    expect((err as Error).cause).toMatchObject({ virErrorCode: E.VIR_ERR_OPERATION_INVALID });
  });

  it("turns a destroy timeout into PowerOffFailureError, retries EBUSY, and tolerates a gone domain", async () => {
    const { driver, fake } = await setup();
    const i = inst();
    await driver.spawn({ instance: i });
    fake.failNext("domainDestroy", daemonError(E.VIR_ERR_OPERATION_TIMEOUT, "operation time out"));
    await expect(driver.destroy(i)).rejects.toBeInstanceOf(PowerOffFailureError);
    fake.failNext("domainDestroy", daemonError(E.VIR_ERR_SYSTEM_ERROR, "busy", 16));
    fake.failNext("domainDestroy", daemonError(E.VIR_ERR_NO_DOMAIN, "gone"));
    await driver.destroy(i);
    expect(count(fake, "domainDestroy")).toBe(3);
  });

  it("undefines like Nova: all flags, fewer flags, then by hand", async () => {
    const { driver, fake } = await setup();
    const i = inst();
    await driver.spawn({ instance: i });
    await driver.suspend(i);
    fake.failNext("domainUndefine", daemonError(E.VIR_ERR_INVALID_ARG, "unsupported flags (0x4)"));
    fake.failNext("domainUndefine", daemonError(E.VIR_ERR_INVALID_ARG, "unsupported flags (0x2)"));
    await driver.destroy(i);
    const flags = fake.calls.filter((c) => c.method === "domainUndefine").map((c) => c.args[1]);
    expect(flags).toEqual([7, 3, 0]);
    expect(fake.domains.size).toBe(0);
    expect(fake.volumes.size).toBe(0);
  });

  it("sets the password as the right user and maps agent errors without leaking the password", async () => {
    const { driver, fake } = await setup();
    const i = inst();
    await driver.spawn({ instance: i });
    await driver.setAdminPassword(i, new Secret("pw-1"));
    const win = inst({ osType: "windows" });
    await driver.setAdminPassword(win, new Secret("pw-2"));
    // Glance hands properties over as strings.
    const named = inst({
      imageMeta: { properties: { hw_qemu_guest_agent: "yes" as unknown as boolean, os_admin_user: "ubuntu" } },
    });
    await driver.setAdminPassword(named, new Secret("pw-3"));
    expect(fake.calls.filter((c) => c.method === "domainSetUserPassword").map((c) => c.args[1])).toEqual([
      "root",
      "Administrator",
      "ubuntu",
    ]);

    fake.failNext("domainSetUserPassword", daemonError(E.VIR_ERR_AGENT_UNRESPONSIVE, "agent not responding"));
    await expect(driver.setAdminPassword(i, new Secret("x"))).rejects.toBeInstanceOf(GuestAgentUnresponsiveError);

    const pw = "Tr0ub4dor&3";
    fake.failNext("domainSetUserPassword", daemonError(E.VIR_ERR_INTERNAL_ERROR, `chpasswd failed for root:${pw}`));
    const err = (await driver.setAdminPassword(i, new Secret(pw)).catch((e: unknown) => e)) as PasswordSetFailedError;
    expect(err).toBeInstanceOf(PasswordSetFailedError);
    const everything = [err.message, err.reason, JSON.stringify(err.toJSON()), String(err.stack)];
    let cause: unknown = err.cause;
    while (cause instanceof Error) {
      everything.push(cause.message, JSON.stringify(cause), String(cause.stack));
      cause = cause.cause;
    }
    for (const text of everything) expect(text).not.toContain(pw);
    expect(err.reason).toContain("***");

    await driver.powerOff(i);
    await expect(driver.setAdminPassword(i, new Secret("x"))).rejects.toBeInstanceOf(InstanceNotRunningError);
    await expect(
      driver.setAdminPassword(inst({ imageMeta: { properties: {} } }), new Secret("x")),
    ).rejects.toBeInstanceOf(GuestAgentNotEnabledError);
  });

  it("image-snapshots with Nova's metadata, task states, and the power state kept", async () => {
    const images = new InMemoryImageService();
    const { driver, fake } = await setup({ imageService: images });
    const i = inst({ kernelId: "k-1", imageMeta: { diskFormat: "qcow2", properties: { os_type: "linux" } } });
    await driver.spawn({ instance: i });
    const disk = fake.volumes.get(`${i.uuid}_disk`);
    if (disk) disk.data = new Uint8Array([1, 2, 3]);
    const image = await images.create({ name: "snap" });
    const states: [string, string | null][] = [];
    const methods: string[] = [];
    await driver.snapshot(i, image.id, {
      onTaskState: (t, e) => void states.push([t, e]),
      onSnapshotMethod: (m) => void methods.push(m),
    });
    expect(states).toEqual([
      [TaskState.IMAGE_PENDING_UPLOAD, TaskState.IMAGE_SNAPSHOT],
      [TaskState.IMAGE_UPLOADING, TaskState.IMAGE_PENDING_UPLOAD],
    ]);
    expect((await driver.getInfo(i)).state).toBe(PowerState.RUNNING);
    // Live: an external disk-only snapshot (quiesced: the image has the agent), merged back; no save.
    expect(methods).toEqual(["live"]);
    expect(count(fake, "domainManagedSave")).toBe(0);
    const create = fake.calls.find((c) => c.method === "domainSnapshotCreateXml");
    expect(String(create?.args[1])).toMatch(/<disk name='vda' snapshot='external'>/);
    expect(await driver.listInstanceSnapshots(i)).toEqual([]); // merged back: the snapshot is deleted
    // Paused: cold (Nova), saved and brought back paused.
    await driver.pause(i);
    const image2 = await images.create({ name: "snap-paused" });
    await driver.snapshot(i, image2.id, { onSnapshotMethod: (m) => void methods.push(m) });
    expect(methods).toEqual(["live", "cold"]);
    expect(count(fake, "domainManagedSave")).toBe(1);
    expect((await driver.getInfo(i)).state).toBe(PowerState.PAUSED);
    expect(await images.get(image.id)).toMatchObject({
      status: "active",
      size: 3,
      diskFormat: "qcow2",
      containerFormat: "bare",
      properties: { kernel_id: "k-1", os_type: "linux", owner_id: "proj", image_location: "snapshot" },
    });
    expect([...fake.volumes.keys()]).toEqual([`${i.uuid}_disk`]);
  });

  it("translates events and stops after the listener is removed", async () => {
    const { driver } = await setup();
    const events: LifecycleEvent[] = [];
    const off = driver.registerEventListener((e) => events.push(e));
    const i = inst();
    await driver.spawn({ instance: i });
    await driver.pause(i);
    await driver.suspend(i);
    off();
    await driver.resume(i);
    expect(events.map((e) => e.transition)).toEqual(["STARTED", "PAUSED", "SUSPENDED"]);
    expect(events.every((e) => e.instanceUuid === i.uuid && e.host === "host-a")).toBe(true);
  });

  it("reads the tail of the serial console log when a console log directory is set", async () => {
    const dir = mkdtempSync(join(tmpdir(), "vk-console-"));
    try {
      const { driver } = await setup({ consoleLogDir: dir });
      expect(driver.capabilities.consoleOutput).toBe(true);
      const i = inst();
      await driver.spawn({ instance: i });
      expect(await driver.getConsoleOutput(i)).toBe("");
      writeFileSync(join(dir, `${i.uuid}.log`), "x".repeat(200 * 1024) + "login: ");
      const out = await driver.getConsoleOutput(i);
      expect(out.length).toBe(100 * 1024);
      expect(out.endsWith("login: ")).toBe(true);
      // The test hypervisor has no console stream: without a log directory it refuses.
      const { driver: without } = await setup({ uri: "test:///default" });
      expect(without.capabilities.consoleOutput).toBe(false);
      await expect(without.getConsoleOutput(i)).rejects.toMatchObject({ code: "VIRTKIT_UNSUPPORTED_OPERATION" });
      // The log can hold secrets the guest printed: destroy removes it with the instance.
      await driver.destroy(i);
      expect(existsSync(join(dir, `${i.uuid}.log`))).toBe(false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("captures the console from a stream opened at a paused start, bounded, and closes it", async () => {
    const fake = new FakeLibvirt();
    const { driver } = await setup({}, fake);
    expect(driver.capabilities.consoleOutput).toBe(true);
    const events: LifecycleEvent[] = [];
    driver.registerEventListener((e) => events.push(e));
    const i = inst();
    fake.consoleText.set(i.uuid, "SeaBIOS\r\n");
    await driver.spawn({ instance: i });
    // Started paused, console forced open, then resumed: no output lost, no PAUSED/RESUMED reported.
    expect(fake.calls.filter((c) => c.method === "domainCreateWithFlags").map((c) => c.args[1])).toEqual([1]);
    expect(fake.consoles.map((c) => c.flags)).toEqual([1]);
    expect(events.map((e) => e.transition)).toEqual(["STARTED"]);
    expect(await driver.getConsoleOutput(i)).toBe("SeaBIOS\r\n");
    fake.consoles[0]!.stream.write("y".repeat(100 * 1024) + "login: ");
    await new Promise((r) => setImmediate(r));
    const out = await driver.getConsoleOutput(i);
    expect(out.length).toBe(64 * 1024);
    expect(out.endsWith("login: ")).toBe(true);
    // Power off closes the stream; the capture stays readable.
    await driver.powerOff(i);
    expect(fake.consoles[0]!.stream.destroyed || fake.consoles[0]!.stream.writableEnded).toBe(true);
    expect((await driver.getConsoleOutput(i)).endsWith("login: ")).toBe(true);
    // Power on opens a fresh one.
    await driver.powerOn(i);
    expect(fake.consoles).toHaveLength(2);
    await driver.cleanupHost("host-a");
    expect(fake.consoles.every((c) => c.stream.destroyed || c.stream.writableEnded)).toBe(true);
  });

  it("opens the console lazily, without FORCE, for a running domain it did not start", async () => {
    const fake = new FakeLibvirt();
    const { driver: first } = await setup({ consoleLogDir: "/nonexistent" }, fake);
    const i = inst();
    await first.spawn({ instance: i });
    expect(fake.consoles).toHaveLength(0);
    const { driver } = await setup({}, fake);
    fake.consoleText.set(i.uuid, "late\r\n");
    // A console opened late only sees what comes after: no waiting for a boot line.
    expect(await driver.getConsoleOutput(i)).toBe("");
    await new Promise((r) => setImmediate(r));
    expect(await driver.getConsoleOutput(i)).toBe("late\r\n");
    expect(fake.consoles.map((c) => c.flags)).toEqual([0]);
    // Someone else takes the console over: what was captured is still returned.
    const other = await fake.domainOpenConsole(await fake.domainLookupByUuid(i.uuid), null, 1);
    await new Promise((r) => setImmediate(r));
    expect(await driver.getConsoleOutput(i)).toBe("late\r\n");
    other.destroy();
    await driver.destroy(i);
    expect(fake.consoles.every((c) => c.stream.destroyed || c.stream.writableEnded)).toBe(true);
    await driver.cleanupHost("host-a");
  });

  describe("live migration", () => {
    it("pre-checks the destination: same host, capacity, architecture", async () => {
      const { driver } = await setup();
      const i = inst();
      const host = await driver.getHostInfo();
      await expect(driver.checkCanLiveMigrateDestination(i, host, DEFAULT_MIGRATION_POLICY)).rejects.toThrow(
        /source host/,
      );
      const other = { ...host, hostname: "src" };
      await expect(
        driver.checkCanLiveMigrateDestination(
          inst({ flavor: { name: "big", memoryMb: 1 << 20, vcpus: 1, rootGb: 1 } }),
          other,
          DEFAULT_MIGRATION_POLICY,
        ),
      ).rejects.toBeInstanceOf(MigrationPreCheckError);
      await expect(
        driver.checkCanLiveMigrateDestination(i, { ...other, cpuArch: "aarch64" }, DEFAULT_MIGRATION_POLICY),
      ).rejects.toBeInstanceOf(MigrationPreCheckError);
      await expect(
        driver.checkCanLiveMigrateDestination(i, other, {
          ...DEFAULT_MIGRATION_POLICY,
          tunnelled: true,
          nativeTls: true,
        }),
      ).rejects.toBeInstanceOf(InvalidInputError);
    });

    it("detects shared storage through the pool and runs PERFORM3_PARAMS with Nova's flags", async () => {
      // Source and destination see the same pool: shared storage.
      const fake = new FakeLibvirt();
      const { driver: dest } = await setup({}, fake);
      const { driver: src } = await setup({}, fake);
      const i = inst();
      await src.spawn({ instance: i });
      const srcHost = { ...(await src.getHostInfo()), hostname: "src" };
      const data = await dest.checkCanLiveMigrateDestination(i, srcHost, DEFAULT_MIGRATION_POLICY);
      expect(data.extra).toMatchObject({ destUri: "qemu+tcp://host-a/system" });
      // No inbound address configured: libvirt chooses, no migrate_uri is sent (Nova).
      expect(data.extra.targetConnectAddr).toBeUndefined();
      expect(data.plan.bitmask).toBe(27);
      const blockData = await dest.checkCanLiveMigrateDestination(i, srcHost, {
        ...DEFAULT_MIGRATION_POLICY,
        block: true,
      });
      await expect(src.checkCanLiveMigrateSource(i, blockData)).rejects.toThrow(/share storage/);
      const checked = await src.checkCanLiveMigrateSource(i, data);
      expect(checked.extra.sharedStorage).toBe(true);
      await dest.preLiveMigration(i, checked);
      expect([...fake.volumes.keys()].some((k) => k.startsWith(".virtkit-shared-"))).toBe(true); // blockData's marker
      await dest.rollbackLiveMigrationAtDestination(inst({ uuid: "00000000-0000-4000-8000-000000000000" }), blockData);
      expect([...fake.volumes.keys()].some((k) => k.startsWith(".virtkit-shared-"))).toBe(false);
      await src.liveMigration(i, { ...checked, policy: { ...checked.policy, bandwidthMiBps: 50 } });
      const perform = fake.calls.find((c) => c.method === "domainMigratePerform3Params");
      expect(perform?.args[1]).toBe("qemu+tcp://host-a/system");
      expect(perform?.args[3]).toBe(27);
      const fields = (perform?.args[2] as { field: string }[]).map((p) => p.field);
      expect(fields).toEqual(["bandwidth", "persistent_xml"]);
    });

    it("block migration: the destination gets empty disks of the source's sizes first, the source drops its copy after", async () => {
      const srcFake = new FakeLibvirt();
      const dstFake = new FakeLibvirt();
      dstFake.hostname = "dest-host";
      const { driver: src } = await setup({}, srcFake);
      const { driver: dest } = await setup({}, dstFake);
      const i = inst();
      await src.spawn({ instance: i });
      const policy = { ...DEFAULT_MIGRATION_POLICY, block: true };
      const data = await dest.checkCanLiveMigrateDestination(
        i,
        { ...(await src.getHostInfo()), hostname: "src" },
        policy,
      );
      const checked = await src.checkCanLiveMigrateSource(i, data);
      expect(JSON.parse(String(checked.extra.blockDisks))).toEqual([
        {
          name: `${i.uuid}_disk`,
          capacityBytes: 2 ** 30,
          format: "qcow2",
          target: "vda",
          path: expect.stringContaining(`${i.uuid}_disk`) as unknown,
        },
      ]);
      const pre = await dest.preLiveMigration(i, checked);
      expect(dstFake.volumes.get(`${i.uuid}_disk`)?.capacity).toBe(2n ** 30n);
      expect(JSON.parse(String(pre.extra.destDiskPaths))).toEqual({ [`${i.uuid}_disk`]: expect.any(String) });
      await src.liveMigration(i, pre);
      expect(srcFake.volumes.has(`${i.uuid}_disk`)).toBe(false);
      // Nova's migrate_disks: the local disk's target, and NON_SHARED_INC kept (there is one to copy).
      const perform = srcFake.calls.find((c) => c.method === "domainMigratePerform3Params");
      const params = perform?.args[2] as { field: string; value: unknown }[];
      expect(params.filter((p) => p.field === "migrate_disks").map((p) => p.value)).toEqual(["vda"]);
      expect((perform?.args[3] as number) & 128).toBe(128);
      // A shared-storage migration never touches the disks.
      const j = inst({ uuid: "4f1c2b9e-5a4d-4c3b-8a2f-1e0d9c8b7a6f", name: "vm-2" });
      await src.spawn({ instance: j });
      const shared = await src
        .checkCanLiveMigrateSource(j, { ...data, policy: DEFAULT_MIGRATION_POLICY, extra: { sharedMarker: "" } })
        .catch((e: unknown) => e);
      expect(shared).toBeInstanceOf(MigrationPreCheckError);
      expect(srcFake.volumes.has(`${j.uuid}_disk`)).toBe(true);
    });

    it("sends migrate_uri toward a configured inbound address, and never for a tunnelled migration", async () => {
      const fake = new FakeLibvirt();
      const { driver: dest } = await setup({ liveMigrationInboundAddr: "2001:db8::7" }, fake);
      const { driver: src } = await setup({}, fake);
      const i = inst();
      await src.spawn({ instance: i });
      const srcHost = { ...(await src.getHostInfo()), hostname: "src" };
      for (const tunnelled of [false, true]) {
        const policy = { ...DEFAULT_MIGRATION_POLICY, tunnelled };
        const data = await dest.checkCanLiveMigrateDestination(i, srcHost, policy);
        expect(data.extra.targetConnectAddr).toBe("2001:db8::7");
        const checked = await src.checkCanLiveMigrateSource(i, data);
        await dest.preLiveMigration(i, checked);
        fake.calls.length = 0;
        await src.liveMigration(i, checked);
        const perform = fake.calls.find((c) => c.method === "domainMigratePerform3Params");
        const params = perform?.args[2] as { field: string; value: unknown }[];
        const uri = params.find((p) => p.field === "migrate_uri")?.value;
        expect(uri).toBe(tunnelled ? undefined : "tcp://[2001:db8::7]");
      }
    });

    it("force-completes with post-copy when the plan has POSTCOPY, else by pausing the guest", async () => {
      const run = async (permitPostCopy: boolean, refusePostCopy = false) => {
        const { driver, fake } = await setup();
        const i = inst();
        await driver.spawn({ instance: i });
        const policy = { ...DEFAULT_MIGRATION_POLICY, permitPostCopy };
        const data = { sourceHost: "a", destHost: "b", policy, plan: driver.planMigration(policy), extra: {} };
        let release!: () => void;
        fake.migrationGate = new Promise<void>((r) => (release = r));
        fake.jobType = 2; // VIR_DOMAIN_JOB_UNBOUNDED: a migration is running
        const moving = driver.liveMigration(i, data);
        while (count(fake, "domainMigratePerform3Params") === 0) await new Promise((r) => setTimeout(r, 1));
        if (refusePostCopy) {
          fake.failNext(
            "domainMigrateStartPostCopy",
            daemonError(E.VIR_ERR_OPERATION_INVALID, "post-copy migration is not enabled"),
          );
        }
        await driver.liveMigrationForceComplete(i);
        release();
        await moving;
        fake.jobType = 0;
        // After the migration the plan is forgotten: nothing left to force.
        await expect(driver.liveMigrationForceComplete(i)).rejects.toBeInstanceOf(InvalidStateError);
        return fake;
      };
      const post = await run(true);
      expect(post.calls.find((c) => c.method === "domainMigratePerform3Params")?.args[3]).toBe(27 | 32768);
      expect(count(post, "domainMigrateStartPostCopy")).toBe(1);
      expect(count(post, "domainSuspend")).toBe(0);
      const pre = await run(false);
      expect(count(pre, "domainMigrateStartPostCopy")).toBe(0);
      expect(count(pre, "domainSuspend")).toBe(1);
      const refused = await run(true, true);
      expect(count(refused, "domainMigrateStartPostCopy")).toBe(1);
      expect(count(refused, "domainSuspend")).toBe(1);
    });

    it("refuses migration as unsupported where it is not declared (the test hypervisor)", async () => {
      const { driver } = await setup({ uri: "test:///default" });
      expect(driver.capabilities.liveMigration).toBe(false);
      expect(() => driver.planMigration(DEFAULT_MIGRATION_POLICY)).toThrow(UnsupportedOperationError);
      const host = await driver.getHostInfo();
      await expect(
        driver.checkCanLiveMigrateDestination(inst(), { ...host, hostname: "src" }, DEFAULT_MIGRATION_POLICY),
      ).rejects.toMatchObject({ code: "VIRTKIT_UNSUPPORTED_OPERATION", capability: "liveMigration" });
      await expect(driver.liveMigrationAbort(inst())).rejects.toBeInstanceOf(UnsupportedOperationError);
    });

    it("refuses a policy part the driver does not declare (xen: no migration declared at all)", async () => {
      const { driver } = await setup({ virtType: "xen" });
      expect(() => driver.planMigration({ ...DEFAULT_MIGRATION_POLICY, block: true })).toThrow(
        UnsupportedOperationError,
      );
    });

    it("refuses a stopped source and an abort without a running job", async () => {
      const { driver } = await setup();
      const i = inst();
      await driver.spawn({ instance: i });
      await driver.powerOff(i);
      const plan = driver.planMigration(DEFAULT_MIGRATION_POLICY);
      const data = { sourceHost: "a", destHost: "b", policy: DEFAULT_MIGRATION_POLICY, plan, extra: {} };
      await expect(driver.checkCanLiveMigrateSource(i, data)).rejects.toThrow(/SHUTDOWN/);
      await expect(driver.liveMigrationAbort(i)).rejects.toBeInstanceOf(InvalidStateError);
    });
  });
});
