import {
  AdminPasswordNotSupportedError,
  GuestAgentNotEnabledError,
  GuestAgentUnresponsiveError,
  InstanceNotRunningError,
  InvalidInputError,
  OperationAbortedError,
  PasswordSetFailedError,
  Secret,
  type Instance,
} from "@virtkit/core";
import { inspect } from "node:util";
import { describe, expect, it } from "vitest";
import { makeCloud, makeInstance } from "./testing/fixtures.js";

const PLAIN = "s3cr3t-Passw0rd!";

function one() {
  const env = makeCloud();
  return { ...env, driver: env.drivers[0]! };
}

// Glance hands properties over as strings too, so the props are looser than ImageProperties.
function withProps(props: Record<string, string | boolean>, extra: Partial<Instance> = {}): Instance {
  return makeInstance({ imageMeta: { diskFormat: "qcow2", properties: props as Instance["imageMeta"]["properties"] }, ...extra });
}

describe("setAdminPassword", () => {
  it.each([
    ["root by default", { hw_qemu_guest_agent: true }, {}, "root"],
    ["Administrator on windows", { hw_qemu_guest_agent: true, os_type: "windows" }, {}, "Administrator"],
    ["Administrator when the instance says windows", { hw_qemu_guest_agent: true }, { osType: "windows" }, "Administrator"],
    ["os_admin_user wins", { hw_qemu_guest_agent: true, os_type: "windows", os_admin_user: "ubuntu" }, {}, "ubuntu"],
    ["agent flag as a Glance string", { hw_qemu_guest_agent: "true" }, {}, "root"],
  ] as const)("sets the password of %s, verified through the guest", async (_n, props, extra, user) => {
    const { driver, cloud } = one();
    const instance = withProps(props, extra);
    await driver.spawn({ instance });
    await driver.setAdminPassword(instance, new Secret(PLAIN));
    const guest = cloud.guest(instance.uuid);
    expect(await guest.checkPassword(user, PLAIN)).toBe(true);
    expect(await guest.checkPassword(user, "wrong")).toBe(false);
    expect(guest.usersWithPassword()).toEqual([user]);
  });

  it("never stores, logs, dumps or prints the plain password", async () => {
    const lines: string[] = [];
    const log = (level: string) => (msg: string, fields?: Readonly<Record<string, unknown>>) =>
      void lines.push(`${level} ${msg} ${JSON.stringify(fields)}`);
    const { drivers, cloud } = makeCloud(["h"], {
      logger: { debug: log("debug"), info: log("info"), warn: log("warn"), error: log("error") },
    });
    const driver = drivers[0]!;
    const instance = makeInstance();
    await driver.spawn({ instance, adminPassword: new Secret(PLAIN) });
    await driver.setAdminPassword(instance, new Secret(PLAIN));
    await driver.rescue(instance, { properties: {} }, { rescuePassword: new Secret(PLAIN) });
    const dumps = [
      JSON.stringify(cloud),
      JSON.stringify(driver),
      inspect(cloud, { depth: 10 }),
      inspect(driver, { depth: 10 }),
      inspect(cloud.guest(instance.uuid), { depth: 10 }),
      await driver.getConsoleOutput(instance),
      lines.join("\n"),
    ];
    for (const d of dumps) {
      expect(d).not.toContain(PLAIN);
      expect(d).not.toContain("$scrypt$");
    }
    expect(lines.join("\n")).toContain("admin password set");
    expect(await cloud.guest(instance.uuid).checkPassword("root", PLAIN, { rescue: true })).toBe(true);
  });

  it("spawn injects the admin password at first boot", async () => {
    const { driver, cloud } = one();
    const instance = withProps({ hw_qemu_guest_agent: false, os_admin_user: "cloud" });
    await driver.spawn({ instance, adminPassword: new Secret(PLAIN) });
    expect(await cloud.guest(instance.uuid).checkPassword("cloud", new Secret(PLAIN))).toBe(true);
  });

  it.each(["PAUSED", "SUSPENDED", "SHUTDOWN", "CRASHED"] as const)(
    "refuses a %s instance with InstanceNotRunningError",
    async (state) => {
      const { driver, cloud } = one();
      const instance = makeInstance();
      await driver.spawn({ instance });
      if (state === "PAUSED") await driver.pause(instance);
      if (state === "SUSPENDED") await driver.suspend(instance);
      if (state === "SHUTDOWN") await driver.powerOff(instance);
      if (state === "CRASHED") driver.faults.crash(instance.uuid);
      await expect(driver.setAdminPassword(instance, new Secret(PLAIN))).rejects.toBeInstanceOf(InstanceNotRunningError);
      expect(cloud.guest(instance.uuid).usersWithPassword()).toEqual([]);
    },
  );

  it("needs hw_qemu_guest_agent", async () => {
    const { driver, cloud } = one();
    for (const props of [{}, { hw_qemu_guest_agent: false }, { hw_qemu_guest_agent: "no" }] as Record<string, string | boolean>[]) {
      const instance = withProps(props);
      await driver.spawn({ instance });
      await expect(driver.setAdminPassword(instance, new Secret(PLAIN))).rejects.toBeInstanceOf(GuestAgentNotEnabledError);
      expect(cloud.guest(instance.uuid).usersWithPassword()).toEqual([]);
    }
  });

  it("an absent agent fails at once, a hanging one after the agent timeout", async () => {
    const { drivers, cloud } = makeCloud(["h"], { agentTimeoutMs: 30 });
    const driver = drivers[0]!;
    const instance = makeInstance();
    await driver.spawn({ instance });
    driver.faults.guestAgent(instance.uuid, "absent");
    await expect(driver.setAdminPassword(instance, new Secret(PLAIN))).rejects.toBeInstanceOf(GuestAgentUnresponsiveError);
    driver.faults.guestAgent(instance.uuid, "unresponsive");
    const t0 = Date.now();
    await expect(driver.setAdminPassword(instance, new Secret(PLAIN))).rejects.toBeInstanceOf(GuestAgentUnresponsiveError);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(25);
    driver.faults.guestAgent(instance.uuid, "ok");
    await driver.setAdminPassword(instance, new Secret(PLAIN));
    expect(await cloud.guest(instance.uuid).checkPassword("root", PLAIN)).toBe(true);
  });

  it("a hanging agent with a shorter call deadline is GuestAgentUnresponsiveError too", async () => {
    const { drivers } = makeCloud(["h"], { agentTimeoutMs: 5_000 });
    const driver = drivers[0]!;
    const instance = makeInstance();
    await driver.spawn({ instance });
    driver.faults.guestAgent(instance.uuid, "unresponsive");
    const err = await driver.setAdminPassword(instance, new Secret(PLAIN), { timeoutMs: 20 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GuestAgentUnresponsiveError);
  });

  it("an abort while the agent hangs is an OperationAbortedError", async () => {
    const { drivers } = makeCloud(["h"], { agentTimeoutMs: 5_000 });
    const driver = drivers[0]!;
    const instance = makeInstance();
    await driver.spawn({ instance });
    driver.faults.guestAgent(instance.uuid, "unresponsive");
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 10);
    await expect(driver.setAdminPassword(instance, new Secret(PLAIN), { signal: ac.signal })).rejects.toBeInstanceOf(
      OperationAbortedError,
    );
  });

  it("a missing guest user is PasswordSetFailedError, without the password", async () => {
    const { driver, cloud } = one();
    const instance = makeInstance();
    await driver.spawn({ instance });
    cloud.guest(instance.uuid).removeUser("root");
    const err = await driver.setAdminPassword(instance, new Secret(PLAIN)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PasswordSetFailedError);
    expect(String((err as Error).message)).not.toContain(PLAIN);
    expect(JSON.stringify(err)).not.toContain(PLAIN);
  });

  it("refuses a plain string without echoing it", async () => {
    const { driver } = one();
    const instance = makeInstance();
    await driver.spawn({ instance });
    const err = await driver.setAdminPassword(instance, PLAIN as unknown as Secret).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InvalidInputError);
    expect(JSON.stringify(err) + String(err)).not.toContain(PLAIN);
    await expect(driver.setAdminPassword(instance, new Secret(""))).rejects.toBeInstanceOf(InvalidInputError);
  });

  it("xen cannot set passwords (as Nova's libvirt driver)", async () => {
    const { drivers } = makeCloud(["x"], { virtType: "xen", capabilities: { setAdminPassword: true } });
    const instance = makeInstance();
    await drivers[0]!.spawn({ instance });
    await expect(drivers[0]!.setAdminPassword(instance, new Secret(PLAIN))).rejects.toBeInstanceOf(AdminPasswordNotSupportedError);
  });

  it("errors never contain the password", async () => {
    const { driver } = one();
    const errors: unknown[] = [];
    const ghost = makeInstance();
    errors.push(await driver.setAdminPassword(ghost, new Secret(PLAIN)).catch((e: unknown) => e));
    const instance = withProps({});
    await driver.spawn({ instance });
    errors.push(await driver.setAdminPassword(instance, new Secret(PLAIN)).catch((e: unknown) => e));
    for (const e of errors) {
      expect(e).toBeInstanceOf(Error);
      expect(`${String(e)} ${JSON.stringify(e)} ${inspect(e)}`).not.toContain(PLAIN);
    }
  });
});
