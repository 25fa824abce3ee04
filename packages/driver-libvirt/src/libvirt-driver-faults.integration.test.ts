// Races and faults of the libvirt driver against the REAL private libvirtd with QEMU (TCG):
// a fresh daemon where several drivers create the storage pool at once, a pool stopped under the
// driver, a full pool, and the daemon dying at every point of a spawn. Skipped unless
// VIRTKIT_LIBVIRT_SOCKET / VIRTKIT_LIBVIRT_TCP are set (scripts/libvirtd.sh env).

import { randomUUID } from "node:crypto";
import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  HypervisorUnavailableError,
  InMemoryImageService,
  InsufficientStorageError,
  PowerState,
  StorageUnavailableError,
  type Instance,
} from "@virtkit/core";
import { LibvirtConnection, VirErrorNumber, isNoStoragePool, type StoragePool } from "@virtkit/libvirt-rpc";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readDomainXml } from "./domain-xml.js";
import { LibvirtDriver, type LibvirtDriverOptions } from "./libvirt-driver.js";
import { CuttableProxy } from "./testing/cuttable-proxy.js";

const SOCKET = process.env.VIRTKIT_LIBVIRT_SOCKET;
const TCP = process.env.VIRTKIT_LIBVIRT_TCP;
const REASON =
  "VIRTKIT_LIBVIRT_SOCKET/VIRTKIT_LIBVIRT_TCP are not set (scripts/libvirtd.sh start && eval $(scripts/libvirtd.sh env))";
const QEMU_URI = `qemu+unix:///system?socket=${SOCKET ?? ""}`;
const TEST_URI = `test+unix:///default?socket=${SOCKET ?? ""}`;
/** REMOTE_PROC_DOMAIN_SNAPSHOT_DELETE (remote_protocol.x). */
const PROC_DOMAIN_SNAPSHOT_DELETE = 193;
/** REMOTE_PROC_STORAGE_POOL_REFRESH and REMOTE_PROC_DOMAIN_GET_XML_DESC (remote_protocol.x). */
const PROC_STORAGE_POOL_REFRESH = 83;
const PROC_DOMAIN_GET_XML_DESC = 14;

function instance(over: Partial<Instance> = {}): Instance {
  const uuid = randomUUID();
  return {
    uuid,
    name: `vkf-${uuid.slice(0, 8)}`,
    projectId: "proj-1",
    userId: "user-1",
    flavor: { name: "m1.tiny", memoryMb: 64, vcpus: 1, rootGb: 1 },
    imageMeta: { diskFormat: "qcow2", containerFormat: "bare", properties: {} },
    ...over,
  };
}

describe.skipIf(!SOCKET || !TCP)(
  `libvirt driver races and faults on a real libvirtd${SOCKET ? "" : ` (skipped: ${REASON})`}`,
  () => {
    let checker: LibvirtConnection;
    const pools: string[] = [];
    const dirs: string[] = [];

    beforeAll(async () => {
      checker = await LibvirtConnection.open(QEMU_URI, { timeoutMs: 30_000 });
    });

    afterAll(async () => {
      for (const name of pools) {
        try {
          const p = await checker.storagePoolLookupByName(name);
          await checker.storagePoolDestroy(p).catch(() => undefined);
          await checker.storagePoolUndefine(p).catch(() => undefined);
        } catch {
          // Never created.
        }
      }
      for (const d of dirs) rmSync(d, { recursive: true, force: true });
      await checker?.close();
    });

    /** A pool name nobody has used: the daemon is "fresh" for it. */
    function freshPool(): { pool: string; poolPath: string } {
      const pool = `vkpool-${randomUUID().slice(0, 8)}`;
      const poolPath = mkdtempSync(join(tmpdir(), "vkpool-"));
      pools.push(pool);
      dirs.push(poolPath);
      return { pool, poolPath };
    }

    async function leftovers(pool: string, uuid: string): Promise<string[]> {
      const out: string[] = [];
      const doms = await checker.connectListAllDomains(0);
      for (const d of doms) if (d.uuid === uuid) out.push(`domain ${d.name}`);
      let p: StoragePool;
      try {
        p = await checker.storagePoolLookupByName(pool);
      } catch (err) {
        if (isNoStoragePool(err)) return out;
        throw err;
      }
      // An inactive pool lists no volumes: look at its directory too (a file there is a leak either way).
      if ((await checker.storagePoolGetInfo(p)).state === 2) {
        await checker.storagePoolRefresh(p).catch(() => undefined);
        for (const v of await checker.storagePoolListAllVolumes(p, 0))
          if (v.name.startsWith(uuid)) out.push(`volume ${v.name}`);
      }
      const dir = dirs[pools.indexOf(pool)];
      if (dir !== undefined && existsSync(dir)) {
        for (const f of readdirSync(dir)) if (f.startsWith(uuid) && !out.includes(`volume ${f}`)) out.push(`file ${f}`);
      }
      return out;
    }

    it("four drivers spawning at once on a fresh daemon all succeed: one pool, created once", async () => {
      const { pool, poolPath } = freshPool();
      const drivers = Array.from({ length: 4 }, () => new LibvirtDriver({ uri: QEMU_URI, pool, poolPath }));
      await Promise.all(drivers.map((d, n) => d.initHost(`host-${n}`)));
      const instances = drivers.map(() => [instance(), instance()]);
      try {
        const results = await Promise.allSettled(
          drivers.flatMap((d, n) => instances[n]!.map((i) => d.spawn({ instance: i }))),
        );
        expect(results.filter((r) => r.status === "rejected")).toEqual([]);
        const p = await checker.storagePoolLookupByName(pool);
        expect((await checker.storagePoolGetInfo(p)).state).toBe(2); // running
      } finally {
        await Promise.all(drivers.flatMap((d, n) => instances[n]!.map((i) => d.destroy(i).catch(() => undefined))));
        await Promise.all(drivers.map((d, n) => d.cleanupHost(`host-${n}`)));
      }
      for (const list of instances) for (const i of list) expect(await leftovers(pool, i.uuid)).toEqual([]);
    }, 120_000);

    it("a pool that another client defined but did not start is started, not reported as UNKNOWN", async () => {
      const { pool, poolPath } = freshPool();
      await checker.storagePoolDefineXml(
        `<pool type='dir'><name>${pool}</name><target><path>${poolPath}</path></target></pool>`,
        0,
      );
      const d = new LibvirtDriver({ uri: QEMU_URI, pool, poolPath });
      await d.initHost("host-a");
      const i = instance();
      try {
        await d.spawn({ instance: i });
        const p = await checker.storagePoolLookupByName(pool);
        expect((await checker.storagePoolGetInfo(p)).state).toBe(2);
      } finally {
        await d.destroy(i).catch(() => undefined);
        await d.cleanupHost("host-a");
      }
    }, 120_000);

    it("a pool stopped under the driver is a typed StorageUnavailableError, and the next spawn starts it again", async () => {
      const { pool, poolPath } = freshPool();
      const d = new LibvirtDriver({ uri: QEMU_URI, pool, poolPath });
      await d.initHost("host-a");
      const first = instance();
      const second = instance();
      try {
        await d.spawn({ instance: first });
        await d.destroy(first);
        await checker.storagePoolDestroy(await checker.storagePoolLookupByName(pool));
        const err = await d.spawn({ instance: second }).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(StorageUnavailableError);
        expect((err as Error).message).toMatch(/not active/);
        expect(await leftovers(pool, second.uuid)).toEqual([]);
        await d.spawn({ instance: second });
        expect(await d.instanceExists(second)).toBe(true);
      } finally {
        await d.destroy(second).catch(() => undefined);
        await d.cleanupHost("host-a");
      }
    }, 120_000);

    it("a disk larger than the pool can hold is a typed InsufficientStorageError and nothing is left", async () => {
      // The test hypervisor accounts for pool space (QEMU's qcow2 volumes are sparse).
      const d = new LibvirtDriver({ uri: TEST_URI });
      await d.initHost("host-a");
      const i = instance({ flavor: { name: "huge", memoryMb: 64, vcpus: 1, rootGb: 1_000_000 } });
      try {
        const err = await d.spawn({ instance: i }).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(InsufficientStorageError);
        expect(await d.instanceExists(i)).toBe(false);
      } finally {
        await d.cleanupHost("host-a");
      }
    }, 120_000);

    /** A QEMU driver on a fresh pool whose every call goes through a proxy that can refuse one procedure. */
    async function proxiedSnapshotDriver() {
      const [host, port] = (TCP ?? "127.0.0.1:0").split(":");
      const proxy = await CuttableProxy.start({ host: host!, port: Number(port) });
      const { pool, poolPath } = freshPool();
      const images = new InMemoryImageService();
      const warnings: string[] = [];
      const d = new LibvirtDriver({
        uri: `qemu+tcp://127.0.0.1:${proxy.port}/system`,
        virtType: "qemu",
        pool,
        poolPath,
        imageService: images,
        logger: { warn: (m) => void warnings.push(m) },
      });
      await d.initHost("host-a");
      return { proxy, pool, poolPath, images, warnings, d };
    }

    it("a live snapshot whose overlay cannot be merged back still succeeds, and destroy removes the overlay with the instance", async () => {
      const { proxy, pool, poolPath, images, warnings, d } = await proxiedSnapshotDriver();
      const i = instance({
        flavor: { name: "m1.tiny", memoryMb: 64, vcpus: 1, rootGb: 1 },
        imageMeta: { id: "img-merge", diskFormat: "qcow2", containerFormat: "bare", properties: {} },
      });
      try {
        await d.spawn({ instance: i });
        const diskPath = async () =>
          readDomainXml(await checker.domainGetXmlDesc(await checker.domainLookupByUuid(i.uuid), 0)).disks[0]?.path;
        const own = await diskPath();
        // One failed merge is tried again, and the guest is back on its own disk.
        proxy.refuse(PROC_DOMAIN_SNAPSHOT_DELETE, { code: VirErrorNumber.VIR_ERR_OPERATION_TIMEOUT, message: "cannot acquire state change lock" });
        const first = await images.create({ name: "merge-retried" });
        await d.snapshot(i, first.id);
        expect(proxy.refusedCalls).toBe(1);
        expect(await diskPath()).toBe(own);
        expect(warnings).toEqual([]);
        expect(readdirSync(poolPath).filter((f) => f.includes("_snapshot_overlay_"))).toEqual([]);
        // Every merge attempt (virDomainSnapshotDelete) fails on the "daemon"; all else is real.
        proxy.refuse(PROC_DOMAIN_SNAPSHOT_DELETE, { code: VirErrorNumber.VIR_ERR_OPERATION_FAILED, message: "block commit failed" }, 10);
        const image = await images.create({ name: "merge-fails" });
        const methods: string[] = [];
        await d.snapshot(i, image.id, { onSnapshotMethod: (m) => void methods.push(m) });
        expect(methods).toEqual(["live"]);
        expect((await images.get(image.id)).status).toBe("active");
        // Tried more than once, then said so; the guest runs on the overlay.
        expect(proxy.refusedCalls).toBeGreaterThan(2);
        expect(warnings).toContain("could not merge the live snapshot's overlay back; the guest runs on it");
        expect(await diskPath()).toContain(`${i.uuid}_snapshot_overlay_`);
        expect((await d.getInfo(i)).state).toBe(PowerState.RUNNING);
      } finally {
        await d.destroy(i);
        await d.cleanupHost("host-a");
        await proxy.close();
      }
      // The disk, the overlay and the domain are all gone.
      expect(await leftovers(pool, i.uuid)).toEqual([]);
    }, 180_000);

    it("destroy removes an overlay whatever fails on the way: a refresh refused while another volume builds, the definition unreadable, a destroy that failed before", async () => {
      const { proxy, pool, poolPath, images, d } = await proxiedSnapshotDriver();
      /** A running instance left on a live snapshot's overlay (every merge refused). */
      const onOverlay = async (): Promise<Instance> => {
        const i = instance({ imageMeta: { id: "img-overlay", diskFormat: "qcow2", containerFormat: "bare", properties: {} } });
        await d.spawn({ instance: i });
        proxy.refuse(PROC_DOMAIN_SNAPSHOT_DELETE, { code: VirErrorNumber.VIR_ERR_OPERATION_FAILED, message: "block commit failed" }, 3);
        const image = await images.create({ name: `overlay-${i.uuid}` });
        await d.snapshot(i, image.id);
        expect(readdirSync(poolPath).filter((f) => f.startsWith(`${i.uuid}_snapshot_overlay_`))).toHaveLength(1);
        return i;
      };
      const busy = { code: VirErrorNumber.VIR_ERR_INTERNAL_ERROR, message: `pool '${pool}' has asynchronous jobs running.` };
      try {
        // libvirt refuses a refresh while a volume of the pool is being built: waited out.
        const a = await onOverlay();
        proxy.refuse(PROC_STORAGE_POOL_REFRESH, busy, 3);
        await d.destroy(a);
        expect(await leftovers(pool, a.uuid)).toEqual([]);
        // The definition cannot be read: every volume named after the instance goes.
        const b = await onOverlay();
        proxy.refuse(PROC_DOMAIN_GET_XML_DESC, { code: VirErrorNumber.VIR_ERR_INTERNAL_ERROR, message: "cannot read" }, 1);
        await d.destroy(b);
        expect(await leftovers(pool, b.uuid)).toEqual([]);
        // The refresh keeps failing: destroy fails, and the next destroy (no definition left) still removes the overlay.
        const c = await onOverlay();
        proxy.refuse(PROC_STORAGE_POOL_REFRESH, { code: VirErrorNumber.VIR_ERR_INTERNAL_ERROR, message: "refresh broke" }, 1);
        await expect(d.destroy(c)).rejects.toThrow(/refresh broke/);
        expect(await checker.connectListAllDomains(0).then((ds) => ds.some((x) => x.uuid === c.uuid))).toBe(false);
        await d.destroy(c);
        expect(await leftovers(pool, c.uuid)).toEqual([]);
      } finally {
        await d.cleanupHost("host-a");
        await proxy.close();
      }
    }, 240_000);

    describe("the daemon dies during a spawn", () => {
      let proxy: CuttableProxy;
      let pool: string;
      let poolPath: string;

      beforeAll(async () => {
        const [host, port] = (TCP ?? "127.0.0.1:0").split(":");
        proxy = await CuttableProxy.start({ host: host!, port: Number(port) });
        ({ pool, poolPath } = freshPool());
      });
      afterAll(async () => {
        await proxy?.close();
      });

      const options = (): LibvirtDriverOptions => ({
        uri: `qemu+tcp://127.0.0.1:${proxy.port}/system`,
        pool,
        poolPath,
        keepaliveIntervalSec: 0, // count only the driver's own requests
        timeoutMs: 20_000,
      });

      it("leaves nothing behind at any kill point, once the daemon is back", async () => {
        const seen: string[] = [];
        let completedAt: number | undefined;
        for (let k = 1; k <= 30 && completedAt === undefined; k++) {
          proxy.restore();
          const d = new LibvirtDriver(options());
          await d.initHost("host-a");
          const i = instance();
          proxy.cutAfter(k);
          const outcome = await d.spawn({ instance: i }).then(
            () => "spawned",
            (e: unknown) => e,
          );
          if (outcome === "spawned") {
            completedAt = k;
            proxy.restore();
            await d.destroy(i);
          } else {
            expect(outcome, `kill point ${k}`).toBeInstanceOf(HypervisorUnavailableError);
            // While the daemon is away, what the spawn created may still be there, and then the
            // driver must know it has to remove it...
            const during = await leftovers(pool, i.uuid);
            if (during.length > 0) {
              seen.push(`${k}: ${during.join(", ")}`);
              expect(d.pendingCleanups, `kill point ${k}`).toEqual([i.uuid]);
            }
            // ...and once the daemon is back, the driver's next call removes it.
            proxy.restore();
            expect(await d.instanceExists(i), `kill point ${k}`).toBe(false);
            expect(d.pendingCleanups, `kill point ${k}`).toEqual([]);
          }
          expect(await leftovers(pool, i.uuid), `kill point ${k}`).toEqual([]);
          await d.cleanupHost("host-a");
        }
        // The loop reached a spawn with no kill point inside it, and some kill points did leave
        // something behind for the driver to clean (otherwise this test proves nothing).
        expect(completedAt).toBeGreaterThan(3);
        expect(seen.length).toBeGreaterThan(0);
      }, 240_000);

      it("finishes a pending cleanup in cleanupHost when the daemon is back by then", async () => {
        proxy.restore();
        const d = new LibvirtDriver(options());
        await d.initHost("host-a");
        const i = instance();
        // Past the volume creation (look-up, volume, define): the disk exists when the link dies.
        proxy.cutAfter(3);
        await expect(d.spawn({ instance: i })).rejects.toBeInstanceOf(HypervisorUnavailableError);
        expect(d.pendingCleanups).toEqual([i.uuid]);
        proxy.restore();
        await d.cleanupHost("host-a");
        expect(await leftovers(pool, i.uuid)).toEqual([]);
      }, 60_000);
    });
  },
);
