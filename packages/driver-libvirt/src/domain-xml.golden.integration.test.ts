// Every golden domain XML (golden/*.xml) is accepted by the REAL private libvirtd with schema
// validation (VIR_DOMAIN_DEFINE_VALIDATE), then undefined. kvm documents are defined as qemu: this
// machine has no usable KVM, and the type changes nothing else in the document.
// Skipped unless VIRTKIT_LIBVIRT_SOCKET is set.

import { randomUUID } from "node:crypto";
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { LibvirtConnection } from "@virtkit/libvirt-rpc";
import { describe, expect, it } from "vitest";

const SOCKET = process.env.VIRTKIT_LIBVIRT_SOCKET;
const DIR = join(import.meta.dirname, "golden");
const DEFINE_VALIDATE = 1;

describe.skipIf(!SOCKET)("golden domain XML against libvirt's schema (qemu:///system)", () => {
  const files = readdirSync(DIR).filter((f) => f.endsWith(".xml") && !f.startsWith("test-"));

  it.each(files)("%s", async (file) => {
    const uuid = randomUUID();
    const xml = readFileSync(join(DIR, file), "utf8")
      .replace(/5e0f3c1a-8b2d-4e6f-9a1b-2c3d4e5f6a7b/g, uuid)
      .replace("<domain type='kvm'>", "<domain type='qemu'>");
    await using conn = await LibvirtConnection.open("qemu:///system", { socketPath: SOCKET });
    const dom = await conn.domainDefineXml(xml, DEFINE_VALIDATE);
    try {
      expect(dom.name).toBe(`instance-${uuid}`);
    } finally {
      await conn.domainUndefine(dom, 0).catch(() => undefined);
    }
  });

  it("the test hypervisor's document too", async () => {
    const uuid = randomUUID();
    const xml = readFileSync(join(DIR, "test-hypervisor.xml"), "utf8").replace(
      /5e0f3c1a-8b2d-4e6f-9a1b-2c3d4e5f6a7b/g,
      uuid,
    );
    await using conn = await LibvirtConnection.open(`test+unix:///default?socket=${SOCKET}`);
    const dom = await conn.domainDefineXml(xml, DEFINE_VALIDATE);
    expect(dom.uuid).toBe(uuid);
  });
});
