/** A storage pool a test made for itself on the private daemon, removed with its volumes and directory. */
import { rmSync } from "node:fs";
import { LibvirtConnection } from "@virtkit/libvirt-rpc";

/** Deletes every volume of `pool`, destroys and undefines it, then removes `dir`; tolerant of what is gone. */
export async function removeScratchPool(socketPath: string | undefined, pool: string, dir: string): Promise<void> {
  try {
    await using conn = await LibvirtConnection.open("qemu:///system", { socketPath });
    const p = await conn.storagePoolLookupByName(pool).catch(() => undefined);
    if (p) {
      for (const v of await conn.storagePoolListAllVolumes(p).catch(() => [])) {
        await conn.storageVolDelete(v).catch(() => undefined);
      }
      await conn.storagePoolDestroy(p).catch(() => undefined);
      await conn.storagePoolUndefine(p).catch(() => undefined);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
