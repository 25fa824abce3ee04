// rescue's `rescuePassword`: given to the rescue system's root through the guest agent when the
// instance and the rescue image both enable it, never silently: logged when it cannot be delivered.
import { randomUUID } from "node:crypto";
import {
  PowerState,
  Secret,
  type ImageProperties,
  type Instance,
} from "@virtkit/core";
import { VirErrorNumber as E } from "@virtkit/libvirt-rpc";
import { describe, expect, it, vi } from "vitest";
import type { LibvirtApi } from "./libvirt-connection.js";
import { LibvirtDriver } from "./libvirt-driver.js";
import { FakeLibvirt, daemonError } from "./testing/fake-libvirt.js";

const AGENT = { hw_qemu_guest_agent: true } as const;

const inst = (properties: ImageProperties = AGENT): Instance => ({
  uuid: randomUUID(),
  name: "vm-1",
  projectId: "proj",
  flavor: { name: "m1", memoryMb: 64, vcpus: 1, rootGb: 1 },
  imageMeta: { properties },
});

interface Logged {
  readonly level: string;
  readonly message: string;
  readonly fields: Record<string, unknown> | undefined;
}

async function driverOn(fake: FakeLibvirt, uri = "qemu:///system") {
  const passwords: [string, string][] = [];
  const api = new Proxy(fake as LibvirtApi, {
    get(target, prop, receiver) {
      const v: unknown = Reflect.get(target, prop, receiver);
      if (typeof v !== "function") return v;
      if (prop !== "domainSetUserPassword") return (v as (...a: unknown[]) => unknown).bind(target);
      return (dom: unknown, user: string, pw: string, ...rest: unknown[]) => {
        passwords.push([user, pw]);
        return (v as (...a: unknown[]) => unknown).apply(target, [dom, user, pw, ...rest]);
      };
    },
  });
  const logged: Logged[] = [];
  const log = (level: string) => (message: string, fields?: Record<string, unknown>) =>
    logged.push({ level, message, fields });
  const driver = new LibvirtDriver({
    uri,
    pollIntervalMs: 1,
    connector: async () => api,
    logger: { debug: log("debug"), info: log("info"), warn: log("warn"), error: log("error") },
  });
  await driver.initHost("host-a");
  return { driver, passwords, logged };
}

describe("rescue with a rescuePassword", () => {
  it("returns once the rescue system runs; its root gets the password through the agent", async () => {
    const fake = new FakeLibvirt();
    const { driver, passwords, logged } = await driverOn(fake);
    const i = inst({ ...AGENT, os_admin_user: "cloud" });
    await driver.spawn({ instance: i });
    await driver.rescue(i, { properties: AGENT }, { rescuePassword: new Secret("r3scue-pw") });
    expect((await driver.getInfo(i)).state).toBe(PowerState.RUNNING);
    // root of the rescue system: the instance's os_admin_user names an account of its own system.
    await vi.waitFor(() => expect(passwords).toEqual([["root", "r3scue-pw"]]));
    await vi.waitFor(() => expect(logged.some((l) => l.message.includes("rescue password set"))).toBe(true));
    expect(JSON.stringify(logged)).not.toContain("r3scue-pw");
    await driver.destroy(i);
    await driver.cleanupHost("host-a");
  });

  it("asks again while the booting rescue system's agent is not up yet", async () => {
    const fake = new FakeLibvirt();
    const { driver, passwords } = await driverOn(fake);
    const i = inst();
    await driver.spawn({ instance: i });
    fake.failNext("domainSetUserPassword", daemonError(E.VIR_ERR_AGENT_UNRESPONSIVE, "Guest agent is not responding"));
    await driver.rescue(i, { properties: AGENT }, { rescuePassword: new Secret("pw-2") });
    await vi.waitFor(() => expect(passwords.map(([u]) => u)).toEqual(["root", "root"]), { timeout: 5_000 });
    await driver.destroy(i);
    await driver.cleanupHost("host-a");
  });

  it("an agent that never answers: the rescue stands, unrescue stops the asking, nothing logged as a failure", async () => {
    const fake = new FakeLibvirt();
    const { driver, passwords, logged } = await driverOn(fake);
    const i = inst();
    await driver.spawn({ instance: i });
    const unresponsive = daemonError(E.VIR_ERR_AGENT_UNRESPONSIVE, "Guest agent is not responding");
    for (let n = 0; n < 50; n++) fake.failNext("domainSetUserPassword", unresponsive);
    await driver.rescue(i, { properties: AGENT }, { rescuePassword: new Secret("pw-3") });
    await vi.waitFor(() => expect(passwords.length).toBeGreaterThan(0));
    await expect(driver.rescue(i, { properties: {} })).rejects.toMatchObject({ state: "RESCUED" });
    await driver.unrescue(i);
    const asked = passwords.length;
    await new Promise((r) => setTimeout(r, 1_500));
    expect(passwords.length).toBe(asked);
    expect(logged.filter((l) => l.level === "warn" && l.message.includes("rescue password"))).toEqual([]);
    expect(JSON.stringify(logged)).not.toContain("pw-3");
    await driver.destroy(i);
    await driver.cleanupHost("host-a");
  });

  it("an agent that fails for good: the rescue stands, the log says why", async () => {
    const fake = new FakeLibvirt();
    const { driver, logged } = await driverOn(fake);
    const i = inst();
    await driver.spawn({ instance: i });
    fake.failNext("domainSetUserPassword", daemonError(E.VIR_ERR_NO_SUPPORT, "not supported by this agent"));
    await driver.rescue(i, { properties: AGENT }, { rescuePassword: new Secret("pw-5") });
    await vi.waitFor(() =>
      expect(logged.find((l) => l.level === "warn" && l.message === "the rescue password could not be set")?.fields).toMatchObject({ instance: i.uuid }),
    );
    expect((await driver.getInfo(i)).state).toBe(PowerState.RUNNING);
    expect(JSON.stringify(logged)).not.toContain("pw-5");
    await driver.unrescue(i);
    await driver.destroy(i);
    await driver.cleanupHost("host-a");
  });

  it.each([
    ["the rescue image enables no agent", AGENT, {}, "qemu:///system", /the rescue image does not enable the QEMU guest agent/],
    ["the instance's definition has no agent channel", {}, AGENT, "qemu:///system", /the instance's image enables no QEMU guest agent/],
    ["the link is plain TCP", AGENT, AGENT, "qemu+tcp://127.0.0.1/system", /plain TCP/],
  ])("not deliverable (%s): the rescue goes on, the log says the password was not delivered and why", async (_what, own, rescue, uri, why) => {
    const fake = new FakeLibvirt();
    const { driver, passwords, logged } = await driverOn(fake, uri);
    const i = inst(own);
    await driver.spawn({ instance: i });
    await driver.rescue(i, { properties: rescue }, { rescuePassword: new Secret("pw-4") });
    expect(passwords).toEqual([]);
    const warning = logged.find((l) => l.level === "warn" && l.message.includes("rescue password"));
    expect(warning?.fields).toMatchObject({ instance: i.uuid });
    expect(String(warning?.fields?.reason)).toMatch(why);
    expect(JSON.stringify(logged)).not.toContain("pw-4");
    await driver.destroy(i);
  });
});
