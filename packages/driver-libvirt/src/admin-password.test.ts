// Which account, which transports: the admin-password rules of the libvirt driver.
import { Secret, UnsupportedOperationError, type Instance } from "@virtkit/core";
import { describe, expect, it } from "vitest";
import { adminUser, checkPasswordTransport } from "./admin-password.js";
import { LibvirtDriver } from "./libvirt-driver.js";
import { FakeLibvirt } from "./testing/fake-libvirt.js";

const inst = (over: Partial<Instance> = {}): Instance => ({
  uuid: "3f1c2b9e-5a4d-4c3b-8a2f-1e0d9c8b7a6f",
  name: "vm-1",
  projectId: "proj",
  flavor: { name: "m1", memoryMb: 64, vcpus: 1, rootGb: 1 },
  imageMeta: { properties: { hw_qemu_guest_agent: true } },
  ...over,
});

describe("the password's transport", () => {
  it.each([
    "qemu:///system",
    "qemu+unix:///system?socket=/run/x",
    "qemu+tls://h/system",
    "qemu+ssh://root@h/system",
    "qemu://h/system",
  ])("allows %s", (uri) => expect(() => checkPasswordTransport(uri, false)).not.toThrow());

  it("refuses plain TCP unless the operator allows it, before anything reaches the guest", async () => {
    expect(() => checkPasswordTransport("qemu+tcp://h/system", false)).toThrow(UnsupportedOperationError);
    expect(() => checkPasswordTransport("QEMU+TCP://h/system", false)).toThrow(/plain TCP/);
    expect(() => checkPasswordTransport("qemu+tcp://h/system", true)).not.toThrow();

    const fake = new FakeLibvirt();
    const driver = new LibvirtDriver({ uri: "qemu+tcp://h/system", connector: async () => fake });
    await driver.initHost("h");
    const i = inst();
    await driver.spawn({ instance: i });
    // Not declared on plain TCP (a conformance run reads it as unsupported), and refused as such.
    expect(driver.capabilities.setAdminPassword).toBe(false);
    await expect(driver.setAdminPassword(i, new Secret("s3cret-pw"))).rejects.toMatchObject({
      code: "VIRTKIT_UNSUPPORTED_OPERATION",
      message: expect.stringContaining("plain TCP"),
    });
    expect(fake.calls.some((c) => c.method === "domainSetUserPassword")).toBe(false);

    const allowed = new LibvirtDriver({
      uri: "qemu+tcp://h/system",
      connector: async () => fake,
      allowPasswordOverTcp: true,
    });
    await allowed.initHost("h");
    expect(allowed.capabilities.setAdminPassword).toBe(true);
    await allowed.setAdminPassword(i, new Secret("s3cret-pw"));
    expect(fake.calls.some((c) => c.method === "domainSetUserPassword")).toBe(true);
  });
});

describe("the account", () => {
  it("is os_admin_user, else Administrator on Windows, else root", () => {
    expect(adminUser(inst({ imageMeta: { properties: { os_admin_user: "cloud" } } }))).toBe("cloud");
    expect(adminUser(inst({ osType: "windows" }))).toBe("Administrator");
    expect(adminUser(inst({ imageMeta: { properties: { os_type: "windows" } } }))).toBe("Administrator");
    expect(adminUser(inst())).toBe("root");
  });
});
