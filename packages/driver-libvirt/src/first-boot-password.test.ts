import {
  UnsupportedOperationError,
  GuestAgentNotEnabledError,
  PasswordSetFailedError,
  Secret,
  type Instance,
} from "@virtkit/core";
import { VirErrorNumber as E } from "@virtkit/libvirt-rpc";
import { describe, expect, it } from "vitest";
import { LibvirtDriver, type LibvirtDriverOptions } from "./libvirt-driver.js";
import { FakeLibvirt, daemonError } from "./testing/fake-libvirt.js";

const PASSWORD = "first-boot-S3cret!";

const inst = (agent: boolean, over: Partial<Instance> = {}): Instance => ({
  uuid: "6a1c2b9e-5a4d-4c3b-8a2f-1e0d9c8b7a61",
  name: "vm-1",
  projectId: "proj",
  flavor: { name: "m1", memoryMb: 64, vcpus: 1, rootGb: 1 },
  imageMeta: { properties: agent ? { hw_qemu_guest_agent: true, os_admin_user: "cloud" } : {} },
  ...over,
});

async function setup(over: Partial<LibvirtDriverOptions> = {}) {
  const fake = new FakeLibvirt();
  const driver = new LibvirtDriver({ uri: "qemu:///system", pollIntervalMs: 1, connector: async () => fake, ...over });
  await driver.initHost("host-a");
  return { driver, fake };
}

describe("admin password at spawn (set through the guest agent after the first boot)", () => {
  it("waits for the agent to answer, then sets the password for os_admin_user", async () => {
    const { driver, fake } = await setup();
    const unresponsive = () => daemonError(E.VIR_ERR_AGENT_UNRESPONSIVE, "QEMU guest agent is not connected");
    fake.failNext("domainSetUserPassword", unresponsive());
    fake.failNext("domainSetUserPassword", unresponsive());
    const i = inst(true);
    const start = Date.now();
    await driver.spawn({ instance: i, adminPassword: new Secret(PASSWORD) });
    const sets = fake.calls.filter((c) => c.method === "domainSetUserPassword");
    expect(sets).toHaveLength(3);
    expect(sets[2]?.args.slice(1)).toEqual(["cloud", PASSWORD]);
    expect(Date.now() - start).toBeGreaterThanOrEqual(1_900); // two 1 s waits
    expect((await driver.getInfo(i)).state).toBe(1);
  }, 10_000);

  it("refuses typed, creating nothing, when the image enables no guest agent", async () => {
    const { driver, fake } = await setup();
    await expect(driver.spawn({ instance: inst(false), adminPassword: new Secret(PASSWORD) })).rejects.toBeInstanceOf(
      GuestAgentNotEnabledError,
    );
    expect(fake.calls.map((c) => c.method)).not.toContain("domainDefineXml");
    expect(fake.volumes.size).toBe(0);
  });

  it("refuses typed over plain TCP unless the operator allows it", async () => {
    const { driver, fake } = await setup({ uri: "qemu+tcp://192.0.2.1/system" });
    await expect(driver.spawn({ instance: inst(true), adminPassword: new Secret(PASSWORD) })).rejects.toBeInstanceOf(
      UnsupportedOperationError,
    );
    expect(fake.calls.map((c) => c.method)).not.toContain("domainDefineXml");
  });

  it("fails the spawn (and removes what it made) when the agent refuses, without the password in the error", async () => {
    const { driver, fake } = await setup();
    fake.failNext("domainSetUserPassword", daemonError(E.VIR_ERR_INTERNAL_ERROR, `chpasswd failed for ${PASSWORD}`));
    const i = inst(true);
    const err = await driver.spawn({ instance: i, adminPassword: new Secret(PASSWORD) }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PasswordSetFailedError);
    expect(String((err as Error).message) + JSON.stringify(err)).not.toContain(PASSWORD);
    expect(fake.domains.has(i.uuid)).toBe(false);
    expect(fake.volumes.size).toBe(0);
  });

  it("refuses a password that is not a Secret", async () => {
    const { driver } = await setup();
    await expect(
      driver.spawn({ instance: inst(true), adminPassword: PASSWORD as unknown as Secret }),
    ).rejects.toMatchObject({ field: "request.adminPassword" });
  });
});
