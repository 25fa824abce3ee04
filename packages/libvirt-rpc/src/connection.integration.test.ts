// Against a real libvirtd (scripts/libvirtd.sh). Skipped unless VIRTKIT_LIBVIRT_SOCKET is set.
// The `test` driver's state is per connection, so every test opens its own connection.

import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { LibvirtConnection, type LibvirtConnectOptions } from "./connection.js";
import {
  LibvirtAbortedError,
  LibvirtConnectionClosedError,
  LibvirtError,
  LibvirtTimeoutError,
  LibvirtVersionSkewError,
  isNoDomain,
  isNoDomainSnapshot,
  isOperationInvalid,
} from "./errors.js";
import { DomainEventType, DomainState, Flags, type DomainLifecycleEvent } from "./types.js";

const SOCKET = process.env.VIRTKIT_LIBVIRT_SOCKET;
const TCP = process.env.VIRTKIT_LIBVIRT_TCP;
const TLS = process.env.VIRTKIT_LIBVIRT_TLS;
const PKI = process.env.VIRTKIT_LIBVIRT_PKI;
const SCRIPT = join(dirname(fileURLToPath(import.meta.url)), "../../../scripts/libvirtd.sh");
const REASON = "VIRTKIT_LIBVIRT_SOCKET is not set (run `scripts/libvirtd.sh start && eval $(scripts/libvirtd.sh env)`)";

if (!SOCKET) console.warn(`[libvirt-rpc] skipping real-libvirtd integration tests: ${REASON}`);

function openTest(options: LibvirtConnectOptions = {}): Promise<LibvirtConnection> {
  return LibvirtConnection.open("test:///default", { socketPath: SOCKET, ...options });
}

const domainXml = (name: string): string =>
  `<domain type='test'><name>${name}</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>` +
  `<os><type arch='x86_64'>hvm</type></os></domain>`;

describe.skipIf(!SOCKET)(`libvirt-rpc against a real libvirtd${SOCKET ? "" : ` (skipped: ${REASON})`}`, () => {
  it("a refused open that echoes the URI's query (a token put there) says why without the token", async () => {
    const err = (await LibvirtConnection.open("bogus+unix:///x?token=S3cretTOKEN", { socketPath: SOCKET }).catch((e: unknown) => e)) as LibvirtError;
    expect(err).toBeInstanceOf(LibvirtError);
    expect(err.message).toMatch(/no connection driver available for bogus:\/\/\/x\?token=\*\*\*/);
    expect(JSON.stringify(err.remote) + err.message).not.toContain("S3cretTOKEN");
  });

  it("opens test:///default through the daemon socket and reads host facts", async () => {
    await using conn = await openTest();
    const lib = await conn.connectGetLibVersion();
    expect(lib.major).toBeGreaterThanOrEqual(6);
    expect((await conn.connectGetVersion()).raw).toBeGreaterThan(0n);
    expect(await conn.connectGetHostname()).not.toBe("");
    expect(await conn.connectGetType()).toBe("TEST");
    expect(await conn.connectGetUri()).toBe("test:///default");
    expect(await conn.connectGetCapabilities()).toContain("<capabilities>");
    const node = await conn.nodeGetInfo();
    expect(node.cpus).toBeGreaterThan(0);
    const doms = await conn.connectListAllDomains();
    expect(doms.map((d) => d.name)).toContain("test");
  });

  it.skipIf(!TCP)("opens test+tcp://127.0.0.1:PORT/default", async () => {
    await using conn = await LibvirtConnection.open(`test+tcp://${TCP}/default`);
    expect(await conn.connectGetUri()).toBe("test:///default");
    const d = await conn.domainLookupByName("test");
    expect(d.id).toBeGreaterThan(0);
  });

  it.skipIf(!TLS || !PKI)("opens test+tls:// with certificate verification (CA, client cert/key)", async () => {
    await using conn = await LibvirtConnection.open(`test+tls://${TLS}/default?pkipath=${PKI}`);
    expect(await conn.connectGetUri()).toBe("test:///default");
    // The same through explicit PEM options instead of pkipath.
    await using viaOptions = await LibvirtConnection.open(`test+tls://${TLS}/default`, {
      tls: {
        ca: readFileSync(join(PKI as string, "cacert.pem")),
        cert: readFileSync(join(PKI as string, "clientcert.pem")),
        key: readFileSync(join(PKI as string, "clientkey.pem")),
      },
    });
    expect(await viaOptions.connectGetType()).toBe("TEST");
  });

  it.skipIf(!TLS || !PKI)("rejects a server certificate from an unknown CA unless no_verify=1", async () => {
    const wrongCa = join(PKI as string, "clientcert.pem"); // not a CA: verification must fail
    const err = await LibvirtConnection.open(`test+tls://${TLS}/default`, {
      tls: { caPath: wrongCa, certPath: join(PKI as string, "clientcert.pem"), keyPath: join(PKI as string, "clientkey.pem") },
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LibvirtConnectionClosedError);
    expect(String((err as Error).message)).toMatch(/cannot connect/);
    await using conn = await LibvirtConnection.open(`test+tls://${TLS}/default?no_verify=1&pkipath=${PKI}`, {
      tls: { caPath: wrongCa },
    });
    expect(await conn.connectGetType()).toBe("TEST");
  });

  it("defines, starts, suspends, resumes, shuts down, destroys and undefines a domain", async () => {
    await using conn = await openTest();
    const name = `vk-life-${process.pid}`;
    let dom = await conn.domainDefineXml(domainXml(name));
    expect(dom.name).toBe(name);
    expect(dom.id).toBe(-1);
    expect(await conn.domainLookupByUuid(dom.uuid)).toEqual(dom);
    expect((await conn.domainGetState(dom)).state).toBe(DomainState.SHUTOFF);
    dom = await conn.domainCreateWithFlags(dom);
    expect(dom.id).toBeGreaterThan(0);
    expect(await conn.domainLookupById(dom.id)).toEqual(dom);
    expect(await conn.domainIsActive(dom)).toBe(true);
    expect(await conn.domainIsPersistent(dom)).toBe(true);
    await conn.domainSuspend(dom);
    expect((await conn.domainGetInfo(dom)).state).toBe(DomainState.PAUSED);
    await conn.domainResume(dom);
    expect((await conn.domainGetState(dom)).state).toBe(DomainState.RUNNING);
    expect(await conn.domainGetXmlDesc(dom)).toContain(`<name>${name}</name>`);
    await conn.domainReboot(dom);
    await conn.domainShutdown(dom);
    expect((await conn.domainGetState(dom)).state).toBe(DomainState.SHUTOFF);
    // Destroying a shut-off domain is VIR_ERR_OPERATION_INVALID ("domain is not running").
    const invalid = await conn.domainDestroy(dom).catch((e: unknown) => e);
    expect((invalid as LibvirtError).virErrorName).toBe("VIR_ERR_OPERATION_INVALID");
    expect(isOperationInvalid(invalid)).toBe(true);
    dom = await conn.domainCreateWithFlags(dom);
    await conn.domainReset(dom);
    await conn.domainDestroy(dom, Flags.DESTROY_GRACEFUL);
    await conn.domainUndefine(dom, Flags.UNDEFINE_MANAGED_SAVE | Flags.UNDEFINE_SNAPSHOTS_METADATA);
    expect(isNoDomain(await conn.domainLookupByName(name).catch((e: unknown) => e))).toBe(true);
  });

  it("reports a missing domain as VIR_ERR_NO_DOMAIN with the daemon's message", async () => {
    await using conn = await openTest();
    const err = await conn.domainLookupByName("no-such-domain").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LibvirtError);
    expect(err).toMatchObject({ virErrorCode: 42, virErrorName: "VIR_ERR_NO_DOMAIN", virErrorDomainName: "VIR_FROM_TEST" });
    expect(isNoDomain(err)).toBe(true);
  });

  it("creates, lists, looks up, reverts and deletes snapshots", async () => {
    await using conn = await openTest();
    const dom = await conn.domainLookupByName("test");
    const s1 = await conn.domainSnapshotCreateXml(dom, "<domainsnapshot><name>s1</name></domainsnapshot>");
    expect(s1).toEqual({ name: "s1", domain: dom });
    await conn.domainSnapshotCreateXml(dom, "<domainsnapshot><name>s2</name></domainsnapshot>");
    expect((await conn.domainListAllSnapshots(dom)).map((s) => s.name).sort()).toEqual(["s1", "s2"]);
    expect((await conn.domainSnapshotCurrent(dom)).name).toBe("s2");
    expect(await conn.domainHasCurrentSnapshot(dom)).toBe(true);
    const looked = await conn.domainSnapshotLookupByName(dom, "s1");
    expect(await conn.domainSnapshotGetXmlDesc(looked)).toContain("<name>s1</name>");
    await conn.domainRevertToSnapshot(looked);
    expect((await conn.domainSnapshotCurrent(dom)).name).toBe("s1");
    await conn.domainSnapshotDelete(looked);
    expect(isNoDomainSnapshot(await conn.domainSnapshotLookupByName(dom, "s1").catch((e: unknown) => e))).toBe(true);
  });

  it("managed-saves, restores and removes the saved image", async () => {
    await using conn = await openTest();
    let dom = await conn.domainLookupByName("test");
    await conn.domainManagedSave(dom);
    expect(await conn.domainHasManagedSaveImage(dom)).toBe(true);
    expect((await conn.domainGetState(dom)).state).toBe(DomainState.SHUTOFF);
    dom = await conn.domainCreateWithFlags(dom);
    expect(await conn.domainHasManagedSaveImage(dom)).toBe(false);
    await conn.domainManagedSave(dom);
    await conn.domainManagedSaveRemove(dom);
    expect(await conn.domainHasManagedSaveImage(dom)).toBe(false);
  });

  it("sets a user password", async () => {
    await using conn = await openTest();
    const dom = await conn.domainLookupByName("test");
    await conn.domainSetUserPassword(dom, "root", "s3cret");
  });

  it("reports unsupported migration as a typed error, and migration knobs", async () => {
    await using conn = await openTest();
    const dom = await conn.domainLookupByName("test");
    const err = await conn
      .domainMigratePerform3Params(dom, "test:///default", [{ field: "migrate_uri", type: "string", value: "tcp://x" }])
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as { code: string }).code).toMatch(/LIBVIRT_(VERSION_SKEW|REMOTE_ERROR)/);
  });

  it("delivers lifecycle events with domain, event and detail", async () => {
    await using conn = await openTest();
    const events: DomainLifecycleEvent[] = [];
    const sub = await conn.domainEventLifecycleRegister((e) => events.push(e));
    const name = `vk-ev-${process.pid}`;
    const dom = await conn.domainDefineXml(domainXml(name));
    await conn.domainCreateWithFlags(dom);
    await conn.domainDestroy(await conn.domainLookupByName(name));
    await conn.domainUndefine(dom);
    await expect.poll(() => events.length, { timeout: 5000 }).toBeGreaterThanOrEqual(4);
    const mine = events.filter((e) => e.domain.name === name).map((e) => e.eventName);
    expect(mine).toEqual(["DEFINED", "STARTED", "STOPPED", "UNDEFINED"]);
    expect(events[0]?.domain.uuid).toBe(dom.uuid);
    expect(events.find((e) => e.event === DomainEventType.STARTED)?.detail).toBe(0);
    await sub.unsubscribe();
  });

  it("runs many calls in flight on one connection", async () => {
    await using conn = await openTest();
    const results = await Promise.all(
      Array.from({ length: 1000 }, (_, i) =>
        i % 2 ? conn.domainLookupByName("test") : conn.domainLookupByName(`missing-${i}`).catch((e: unknown) => e),
      ),
    );
    results.forEach((r, i) => {
      if (i % 2) expect(r).toMatchObject({ name: "test" });
      else expect(isNoDomain(r)).toBe(true);
    });
  });

  it("aborts and times out calls, and discards their late replies", async () => {
    await using conn = await openTest();
    const ac = new AbortController();
    const aborted = conn.connectGetCapabilities({ signal: ac.signal });
    ac.abort();
    await expect(aborted).rejects.toBeInstanceOf(LibvirtAbortedError);
    // Queue a burst, then a call with a 1 ms budget behind it.
    const burst = Array.from({ length: 2000 }, () => conn.domainLookupByName("test"));
    const late = conn.connectGetCapabilities({ timeoutMs: 1 });
    await expect(late).rejects.toBeInstanceOf(LibvirtTimeoutError);
    await Promise.all(burst);
    expect(await conn.connectGetHostname()).not.toBe("");
    expect(conn.inFlight).toBe(0);
  });

  it("keeps an idle connection alive with keepalive", async () => {
    // Many intervals, with a dead window (1 s) wide enough for a loaded machine's stalls.
    await using conn = await openTest({ keepalive: { intervalMs: 100, count: 10 } });
    await new Promise((r) => setTimeout(r, 1500));
    expect(conn.isOpen).toBe(true);
    expect(await conn.connectGetType()).toBe("TEST");
  });

  it("maps an API the driver lacks (test driver volume upload) to LibvirtVersionSkewError", async () => {
    await using conn = await openTest();
    const pool = await conn.storagePoolLookupByName("default-pool");
    const vol = await conn.storageVolCreateXml(
      pool,
      "<volume><name>vk-up.img</name><capacity unit='KiB'>64</capacity></volume>",
    );
    const err = await conn.storageVolUpload(vol).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LibvirtVersionSkewError);
    expect((err as LibvirtVersionSkewError).procedure).toBe("STORAGE_VOL_UPLOAD");
    await conn.storageVolDelete(vol);
  });

  describe("storage volume streams (qemu:///system storage driver)", () => {
    const dir = mkdtempSync(join(tmpdir(), "vk-pool-"));
    afterAll(() => rmSync(dir, { recursive: true, force: true }));

    it("creates a pool and volume, uploads, downloads and compares, then cleans up", async () => {
      await using conn = await LibvirtConnection.open("qemu:///system", { socketPath: SOCKET });
      const poolName = `vk-pool-${process.pid}`;
      const pool = await conn.storagePoolCreateXml(
        `<pool type='dir'><name>${poolName}</name><target><path>${dir}</path></target></pool>`,
      );
      try {
        expect((await conn.connectListAllStoragePools()).map((p) => p.name)).toContain(poolName);
        await conn.storagePoolRefresh(pool);
        const size = 700 * 1024 + 13; // several 256 KiB stream packets
        const vol = await conn.storageVolCreateXml(
          pool,
          `<volume><name>data.raw</name><capacity unit='bytes'>${size}</capacity>` +
            `<target><format type='raw'/></target></volume>`,
        );
        expect(await conn.storageVolGetPath(vol)).toBe(join(dir, "data.raw"));
        expect(await conn.storageVolLookupByPath(join(dir, "data.raw"))).toEqual(vol);
        expect((await conn.storageVolGetInfo(vol)).capacity).toBe(BigInt(size));
        const payload = randomBytes(size);
        const up = await conn.storageVolUpload(vol, { length: size });
        await pipeline(Readable.from([payload.subarray(0, 1000), payload.subarray(1000)]), up);
        const down = await conn.storageVolDownload(vol);
        const chunks: Buffer[] = [];
        for await (const c of down) chunks.push(c as Buffer);
        expect(Buffer.concat(chunks).equals(payload)).toBe(true);
        // Give up on a download part-way: the abort handshake leaves the connection usable.
        const partial = await conn.storageVolDownload(vol);
        for await (const _ of partial) break;
        expect(await conn.storageVolGetPath(vol)).toContain("data.raw");
        const clone = await conn.storageVolCreateXmlFrom(
          pool,
          "<volume><name>clone.raw</name><capacity unit='bytes'>0</capacity><target><format type='raw'/></target></volume>",
          vol,
        );
        expect((await conn.storagePoolListAllVolumes(pool)).map((v) => v.name).sort()).toEqual([
          "clone.raw",
          "data.raw",
        ]);
        await conn.storageVolDelete(clone);
        await conn.storageVolDelete(vol);
      } finally {
        await conn.storagePoolDestroy(pool);
      }
    });
  });

  describe("reconnect after the daemon restarts", () => {
    const dir = mkdtempSync(join(tmpdir(), "vk-libvirtd-"));
    const env = { ...process.env, VIRTKIT_LIBVIRTD_DIR: dir, VIRTKIT_LIBVIRTD_TCP_PORT: "16529" };
    const sh = (cmd: string): void => {
      execFileSync("bash", [SCRIPT, cmd], { env, stdio: "ignore" });
    };
    afterAll(() => {
      sh("stop");
      rmSync(dir, { recursive: true, force: true });
    });

    it("reopens the link on the next call and re-registers event callbacks", async () => {
      sh("start");
      const socketPath = join(dir, "run/libvirt-sock");
      await using conn = await LibvirtConnection.open("test:///default", {
        socketPath,
        reconnect: { enabled: true, attempts: 20, backoffMs: 100, eagerWhenSubscribed: false },
      });
      const events: DomainLifecycleEvent[] = [];
      await conn.domainEventLifecycleRegister((e) => events.push(e));
      expect(await conn.connectGetType()).toBe("TEST");
      const closed = new Promise<Error>((resolve) => conn.onLinkClose(resolve));
      sh("restart");
      expect(await closed).toBeInstanceOf(LibvirtConnectionClosedError);
      expect(await conn.connectGetType()).toBe("TEST");
      expect(conn.reconnectCount).toBe(1);
      const dom = await conn.domainDefineXml(domainXml("vk-after-reconnect"));
      await expect.poll(() => events.some((e) => e.domain.name === dom.name)).toBe(true);
    }, 60_000);
  });
});
