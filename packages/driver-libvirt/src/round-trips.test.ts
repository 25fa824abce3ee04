// The wire budget of the driver's hot path, counted on an in-memory libvirt: every call the driver
// makes is one RPC on a real connection. A change that adds a round trip to spawn, getInfo or
// destroy fails here, with the calls listed.
import { randomUUID } from "node:crypto";
import {
  HypervisorUnavailableError,
  InstanceExistsError,
  InstanceNotFoundError,
  InvalidInputError,
  StorageUnavailableError,
  type Instance,
} from "@virtkit/core";
import { LibvirtConnectionClosedError, VirErrorNumber as E } from "@virtkit/libvirt-rpc";
import { describe, expect, it } from "vitest";
import type { LibvirtApi } from "./libvirt-connection.js";
import { LibvirtDriver } from "./libvirt-driver.js";
import { FakeLibvirt, daemonError } from "./testing/fake-libvirt.js";

const inst = (over: Partial<Instance> = {}): Instance => ({
  uuid: randomUUID(),
  name: "vm-1",
  projectId: "proj",
  flavor: { name: "m1", memoryMb: 64, vcpus: 1, rootGb: 1 },
  imageMeta: { properties: {} },
  ...over,
});

/** The fake behind a proxy that records every method called on it, in order. */
function counted(fake: FakeLibvirt): { api: LibvirtApi; calls: string[] } {
  const calls: string[] = [];
  const api = new Proxy(fake as LibvirtApi, {
    get(target, prop, receiver) {
      const v: unknown = Reflect.get(target, prop, receiver);
      if (typeof v !== "function" || prop === "close") return v;
      return (...args: unknown[]) => {
        calls.push(String(prop));
        return (v as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
  return { api, calls };
}

async function driverOn(fake: FakeLibvirt, uri = "test:///default") {
  const { api, calls } = counted(fake);
  const driver = new LibvirtDriver({ uri, pollIntervalMs: 1, connector: async () => api });
  await driver.initHost("host-a");
  return { driver, calls };
}

describe("round trips of spawn + getInfo + destroy", () => {
  it("spends 3 + 1 + 3 calls per instance once the pool is known, and none on refreshes or retries", async () => {
    const fake = new FakeLibvirt();
    const { driver, calls } = await driverOn(fake);
    // The first spawn prepares the pool (once per connection) and learns the undefine flags.
    const first = inst();
    await driver.spawn({ instance: first });
    await driver.destroy(first);
    calls.length = 0;

    const i = inst();
    await driver.spawn({ instance: i });
    // The uuid is known free (the listing at initHost and the events since): no look-up.
    expect(calls.splice(0)).toEqual(["storageVolCreateXml", "domainDefineXml", "domainCreateWithFlags"]);
    // The handle from the start (kept fresh by events) carries the id: no look-up.
    expect((await driver.getInfo(i)).internalId).toMatch(/^\d+$/);
    expect(calls.splice(0)).toEqual(["domainGetInfo"]);
    // The definition is the one spawn wrote (no rescue disk), unchanged: not read back.
    await driver.destroy(i);
    expect(calls.splice(0).sort()).toEqual(["domainDestroy", "domainUndefine", "storageVolDelete"]);
    expect(fake.domains.size).toBe(0);
    expect(fake.volumes.size).toBe(0);
  });

  it("learns once per connection that the daemon refuses the NVRAM undefine flag", async () => {
    const fake = new FakeLibvirt();
    const { driver, calls } = await driverOn(fake);
    for (let n = 0; n < 3; n++) {
      const i = inst();
      await driver.spawn({ instance: i });
      // Like libvirt's test driver: the NVRAM bit (0x4) is named as unsupported.
      if (n === 0)
        fake.failNext(
          "domainUndefine",
          daemonError(E.VIR_ERR_INVALID_ARG, "unsupported flags (0x4) in function testDomainUndefineFlags"),
        );
      await driver.destroy(i);
    }
    expect(calls.filter((c) => c === "domainUndefine")).toHaveLength(4); // 2 for the first, then 1 each
    expect(fake.domains.size).toBe(0);
  });

  it("prepares the pool once for many concurrent spawns, and starts one found inactive", async () => {
    const fake = new FakeLibvirt();
    fake.poolActive = false;
    const { driver, calls } = await driverOn(fake, "qemu:///system");
    const instances = Array.from({ length: 8 }, () => inst());
    await Promise.all(instances.map((i) => driver.spawn({ instance: i })));
    expect(calls.filter((c) => c === "storagePoolLookupByName")).toHaveLength(1);
    expect(calls.filter((c) => c === "storagePoolCreate")).toHaveLength(1);
    expect(calls.filter((c) => c === "storagePoolRefresh")).toHaveLength(0);
    await Promise.all(instances.map((i) => driver.destroy(i)));
  });

  it("reports a pool stopped under it as StorageUnavailableError, then prepares it again", async () => {
    const fake = new FakeLibvirt();
    const { driver } = await driverOn(fake, "qemu:///system");
    const a = inst();
    await driver.spawn({ instance: a });
    fake.poolActive = false;
    await expect(driver.spawn({ instance: inst() })).rejects.toBeInstanceOf(StorageUnavailableError);
    const b = inst();
    await driver.spawn({ instance: b });
    expect(fake.poolActive).toBe(true);
    await driver.destroy(a);
    await driver.destroy(b);
    expect(fake.volumes.size).toBe(0);
  });

  it("refuses a taken uuid without touching the existing instance's disk, and boots a disk a destroy kept", async () => {
    const fake = new FakeLibvirt();
    const { driver } = await driverOn(fake);
    const i = inst();
    await driver.spawn({ instance: i });
    await expect(driver.spawn({ instance: i })).rejects.toBeInstanceOf(InstanceExistsError);
    expect(fake.volumes.has(`${i.uuid}_disk`)).toBe(true);
    expect(await driver.instanceExists(i)).toBe(true);
    // destroyDisks: false keeps the disk; the next spawn of that uuid boots that very volume.
    await driver.destroy(i, { destroyDisks: false });
    const kept = fake.volumes.get(`${i.uuid}_disk`);
    expect(kept).toBeDefined();
    await driver.spawn({ instance: i });
    expect(fake.volumes.get(`${i.uuid}_disk`)).toBe(kept);
    expect(fake.domains.get(i.uuid)!.xml).toContain(`/pool/${i.uuid}_disk`);
    // test:///default says "exists" in its own words (OPERATION_FAILED): the same kept disk.
    await driver.destroy(i, { destroyDisks: false });
    fake.failNext("storageVolCreateXml", daemonError(E.VIR_ERR_OPERATION_FAILED, "operation failed: storage vol already exists"));
    await driver.spawn({ instance: i });
    expect(fake.volumes.get(`${i.uuid}_disk`)).toBe(kept);
    await driver.destroy(i);
    expect(fake.volumes.size).toBe(0);
  });

  it("a failed spawn that booted a kept disk leaves the disk kept", async () => {
    const fake = new FakeLibvirt();
    const { driver } = await driverOn(fake);
    const i = inst();
    await driver.spawn({ instance: i });
    await driver.destroy(i, { destroyDisks: false });
    const kept = fake.volumes.get(`${i.uuid}_disk`);
    fake.failNext("domainCreateWithFlags", daemonError(E.VIR_ERR_INTERNAL_ERROR, "qemu died"));
    await expect(driver.spawn({ instance: i })).rejects.toThrow();
    expect(await driver.instanceExists(i)).toBe(false);
    expect(fake.volumes.get(`${i.uuid}_disk`)).toBe(kept);
    // A disk the failed spawn made itself is removed.
    const j = inst();
    fake.failNext("domainCreateWithFlags", daemonError(E.VIR_ERR_INTERNAL_ERROR, "qemu died"));
    await expect(driver.spawn({ instance: j })).rejects.toThrow();
    expect(fake.volumes.has(`${j.uuid}_disk`)).toBe(false);
  });
});

describe("the uuid rule", () => {
  it("holds for every operation, not only spawn: an upper-case or braced uuid touches nothing", async () => {
    const fake = new FakeLibvirt();
    const { driver, calls } = await driverOn(fake);
    const i = inst();
    await driver.spawn({ instance: i });
    calls.length = 0;
    for (const uuid of [i.uuid.toUpperCase(), `{${i.uuid}}`]) {
      const other = { ...i, uuid };
      await expect(driver.getInfo(other)).rejects.toBeInstanceOf(InvalidInputError);
      await expect(driver.powerOff(other)).rejects.toBeInstanceOf(InvalidInputError);
      await expect(driver.destroy(other)).rejects.toBeInstanceOf(InvalidInputError);
    }
    expect(calls).toEqual([]);
    expect(fake.domains.size).toBe(1);
    await driver.destroy(i);
  });
});

describe("what the driver remembers stays true", () => {
  it("follows a domain stopped, restarted or undefined behind its back (events), never a stale id", async () => {
    const fake = new FakeLibvirt();
    const { driver } = await driverOn(fake);
    const i = inst();
    await driver.spawn({ instance: i });
    const before = (await driver.getInfo(i)).internalId;
    const d = fake.domains.get(i.uuid)!;
    // Another client hard-restarts it: the id changes, and getInfo says so.
    await fake.domainDestroy(d.dom);
    await fake.domainCreateWithFlags(d.dom, 0);
    const after = await driver.getInfo(i);
    expect(after.internalId).toMatch(/^\d+$/);
    expect(after.internalId).not.toBe(before);
    // Another client removes it: InstanceNotFoundError, not the remembered handle's answer.
    await fake.domainDestroy(fake.domains.get(i.uuid)!.dom);
    await fake.domainUndefine(fake.domains.get(i.uuid)!.dom, 0);
    await expect(driver.getInfo(i)).rejects.toBeInstanceOf(InstanceNotFoundError);
    await driver.destroy(i);
    expect(fake.volumes.size).toBe(0);
  });

  it("removes the rescue disk of a rescued instance at destroy, and after a failed rescue", async () => {
    const fake = new FakeLibvirt();
    const { driver } = await driverOn(fake, "qemu:///system");
    const i = inst();
    await driver.spawn({ instance: i });
    await driver.rescue(i, { properties: {} });
    expect(fake.volumes.has(`${i.uuid}_disk.rescue`)).toBe(true);
    await driver.destroy(i);
    expect(fake.volumes.size).toBe(0);

    const j = inst();
    await driver.spawn({ instance: j });
    fake.failNext("domainDefineXml", daemonError(E.VIR_ERR_XML_ERROR, "bad rescue definition"));
    await expect(driver.rescue(j, { properties: {} })).rejects.toThrow();
    expect(fake.volumes.has(`${j.uuid}_disk.rescue`)).toBe(false);
    await driver.destroy(j);
    expect(fake.volumes.size).toBe(0);
  });
});

describe("what the listing and the events say is only trusted while it holds", () => {
  const domainXml = (uuid: string, name: string) =>
    `<domain type='test'><name>${name}</name><uuid>${uuid}</uuid><memory>65536</memory><vcpu>1</vcpu></domain>`;
  const volumeXml = (name: string) => `<volume><name>${name}</name><capacity>1073741824</capacity></volume>`;

  it("looks a uuid up when another client defined it (its event arrived), and refuses it untouched", async () => {
    const fake = new FakeLibvirt();
    const { driver, calls } = await driverOn(fake);
    for (const name of ["someone-else", "vm-1"]) {
      const i = inst();
      await fake.domainDefineXml(domainXml(i.uuid, name));
      calls.length = 0;
      await expect(driver.spawn({ instance: i })).rejects.toBeInstanceOf(InstanceExistsError);
      expect(calls).toContain("domainLookupByUuid");
      expect(calls).not.toContain("domainDefineXml");
      expect(fake.domains.get(i.uuid)!.xml).toBe(domainXml(i.uuid, name));
    }
  });

  it("asks after all when the uuid's disk exists: someone may be spawning it and its event is not here yet", async () => {
    const fake = new FakeLibvirt();
    const { driver, calls } = await driverOn(fake);
    const pool = fake.pool;
    // A domain the events have not told about yet (defined without an event), with its disk.
    const i = inst();
    fake.domains.set(i.uuid, {
      dom: { name: i.name, uuid: i.uuid, id: -1 },
      xml: domainXml(i.uuid, i.name),
      state: 5,
      managedSave: false,
      snapshots: new Map(),
    });
    await fake.storageVolCreateXml(pool, volumeXml(`${i.uuid}_disk`));
    calls.length = 0;
    await expect(driver.spawn({ instance: i })).rejects.toBeInstanceOf(InstanceExistsError);
    // (The first spawn also prepares the pool.)
    expect(calls.filter((c) => !c.startsWith("storagePool"))).toEqual(["storageVolCreateXml", "domainLookupByUuid"]);
    expect(fake.volumes.has(`${i.uuid}_disk`)).toBe(true);
    expect(fake.domains.get(i.uuid)!.xml).toBe(domainXml(i.uuid, i.name));
    // A disk with no domain (a destroy kept it) is booted, after asking.
    const j = inst();
    await fake.storageVolCreateXml(pool, volumeXml(`${j.uuid}_disk`));
    calls.length = 0;
    await driver.spawn({ instance: j });
    expect(calls.slice(0, 4)).toEqual([
      "storageVolCreateXml",
      "domainLookupByUuid",
      "storageVolLookupByName",
      "storageVolGetXmlDesc",
    ]);
    await driver.destroy(j);
    expect(fake.volumes.has(`${j.uuid}_disk`)).toBe(false);
  });

  it("reads the definition back at destroy once it was redefined (an event, or any other operation)", async () => {
    const fake = new FakeLibvirt();
    const { driver, calls } = await driverOn(fake, "qemu:///system");
    const i = inst();
    await driver.spawn({ instance: i });
    // Another client redefines it: the DEFINED (updated) event says the definition is not spawn's.
    await fake.domainDefineXml(fake.domains.get(i.uuid)!.xml);
    calls.length = 0;
    await driver.destroy(i);
    expect(calls).toContain("domainGetXmlDesc");

    const j = inst();
    await driver.spawn({ instance: j });
    await driver.pause(j);
    calls.length = 0;
    await driver.destroy(j);
    expect(calls).toContain("domainGetXmlDesc");
    expect(fake.volumes.size).toBe(0);
  });

  it("asks every time when events are unavailable", async () => {
    const fake = new FakeLibvirt();
    const { api, calls } = counted(fake);
    const noEvents = new Proxy(api, {
      get: (t, p, r) =>
        p === "domainEventLifecycleRegister" ? () => Promise.reject(new Error("no events here")) : Reflect.get(t, p, r),
    });
    const driver = new LibvirtDriver({ uri: "test:///default", connector: async () => noEvents });
    await driver.initHost("host-a");
    const i = inst();
    await driver.spawn({ instance: i });
    await driver.destroy(i);
    expect(calls).not.toContain("connectListAllDomains");
    expect(calls).toContain("domainLookupByUuid");
    expect(calls).toContain("domainGetXmlDesc");
  });

  it("asks until the domains are listed again on a re-opened link (the events of the gap are lost)", async () => {
    const fake = new FakeLibvirt();
    const link = { reconnectCount: 0 };
    Object.defineProperty(fake, "reconnectCount", { get: () => link.reconnectCount });
    const { driver, calls } = await driverOn(fake);
    const a = inst();
    await driver.spawn({ instance: a });
    // The link drops and is re-opened; meanwhile another client defined a domain (no event here).
    link.reconnectCount = 1;
    const b = inst();
    fake.domains.set(b.uuid, {
      dom: { name: "other", uuid: b.uuid, id: -1 },
      xml: domainXml(b.uuid, "other"),
      state: 5,
      managedSave: false,
      snapshots: new Map(),
    });
    calls.length = 0;
    await expect(driver.spawn({ instance: b })).rejects.toBeInstanceOf(InstanceExistsError);
    expect(calls).toContain("domainLookupByUuid");
    // The destroy of a spawned before the drop reads its definition back.
    calls.length = 0;
    await driver.destroy(a);
    expect(calls).toContain("domainGetXmlDesc");
    // Listed again (in the background): the new domain is known, a fresh uuid is not asked.
    await new Promise((r) => setTimeout(r, 0));
    expect(fake.calls.filter((c) => c.method === "connectListAllDomains")).toHaveLength(2);
    calls.length = 0;
    await expect(driver.spawn({ instance: b })).rejects.toBeInstanceOf(InstanceExistsError);
    expect(calls).toContain("domainLookupByUuid");
    const c = inst();
    calls.length = 0;
    await driver.spawn({ instance: c });
    expect(calls).not.toContain("domainLookupByUuid");
    await driver.destroy(c);
  });
});

describe("a failed spawn removes only what is its own", () => {
  const closed = () => new LibvirtConnectionClosedError("libvirt connection lost: test");

  it("never touches an existing instance when its uuid is spawned again and that fails early", async () => {
    const fake = new FakeLibvirt();
    const { driver } = await driverOn(fake, "qemu:///system");
    const i = inst();
    await driver.spawn({ instance: i });
    // The existence check is lost (link broke): whether the uuid is taken is not known.
    fake.failNext("domainLookupByUuid", closed());
    await expect(driver.spawn({ instance: i })).rejects.toBeInstanceOf(HypervisorUnavailableError);
    // The pool stopped under the driver: the disk cannot be made, but the uuid is known taken.
    fake.poolActive = false;
    await expect(driver.spawn({ instance: i })).rejects.toBeInstanceOf(InstanceExistsError);
    fake.poolActive = true;
    expect(fake.domains.has(i.uuid)).toBe(true);
    expect(fake.volumes.has(`${i.uuid}_disk`)).toBe(true);
    expect(driver.pendingCleanups).toEqual([]);
    await driver.destroy(i);
  });

  it("refuses a second concurrent spawn of one uuid through one driver, and keeps the first", async () => {
    const fake = new FakeLibvirt();
    const { driver } = await driverOn(fake, "qemu:///system");
    const i = inst();
    const results = await Promise.allSettled([driver.spawn({ instance: i }), driver.spawn({ instance: i })]);
    expect(results.map((r) => r.status).sort()).toEqual(["fulfilled", "rejected"]);
    const lost = results.find((r) => r.status === "rejected") as PromiseRejectedResult;
    expect(lost.reason).toBeInstanceOf(InstanceExistsError);
    expect((await driver.getInfo(i)).state).toBe(1);
    expect(fake.volumes.has(`${i.uuid}_disk`)).toBe(true);
    await driver.destroy(i);
  });

  it("leaves a domain another spawn defined since, when it finally gets to its pending cleanup", async () => {
    const fake = new FakeLibvirt();
    const { driver: a } = await driverOn(fake, "qemu:///system");
    const { driver: b } = await driverOn(fake, "qemu:///system");
    const i = inst();
    // A's spawn fails after the define, and its cleanup cannot reach the daemon: pending.
    fake.failNext("domainCreateWithFlags", daemonError(E.VIR_ERR_INTERNAL_ERROR, "qemu died"));
    fake.failNext("domainGetXmlDesc", closed());
    await expect(a.spawn({ instance: i })).rejects.toThrow(/qemu died/);
    expect(a.pendingCleanups).toEqual([i.uuid]);
    // Meanwhile B clears the uuid and spawns it for real.
    await b.destroy(i);
    await b.spawn({ instance: i });
    // A's next call finishes its cleanup: B's instance is not A's to remove.
    await a.listInstances();
    expect(a.pendingCleanups).toEqual([]);
    expect((await b.getInfo(i)).state).toBe(1);
    expect(fake.volumes.has(`${i.uuid}_disk`)).toBe(true);
    await b.destroy(i);
  });
});

describe("the connection outlives its first caller", () => {
  it("opens without the first caller's signal (reconnects reuse the options), and a caller that gives up gets its own error", async () => {
    const fake = new FakeLibvirt();
    const seen: Record<string, unknown>[] = [];
    let release: () => void = () => undefined;
    const gate = new Promise<void>((r) => (release = r));
    const driver = new LibvirtDriver({
      uri: "test:///default",
      connector: async (_uri, options) => {
        seen.push({ ...options });
        await gate;
        return fake;
      },
    });
    const first = driver.getHostInfo({ timeoutMs: 50 });
    await expect(first).rejects.toMatchObject({ code: "VIRTKIT_OPERATION_TIMEOUT" });
    release();
    // The open went on; the next call uses it.
    expect((await driver.getHostInfo()).hostname).toBe("fakehost");
    expect(seen).toHaveLength(1);
    expect(seen[0]).not.toHaveProperty("signal");
  });
});
