import { LibvirtDriver, type LibvirtDriverOptions } from "../libvirt-driver.js";
import type { FakeLibvirt } from "./fake-libvirt.js";

/**
 * A migration's two ends for unit tests: a source and a destination driver ("dest-host"), each on
 * its own fake daemon, both hosts initialised. `srcOptions` adds to the source driver's options.
 */
export async function twoHosts<S extends FakeLibvirt, D extends FakeLibvirt>(
  srcFake: S,
  dstFake: D,
  srcOptions: Partial<LibvirtDriverOptions> = {},
): Promise<{ src: LibvirtDriver; dest: LibvirtDriver; srcFake: S; dstFake: D }> {
  dstFake.hostname = "dest-host";
  const src = new LibvirtDriver({ uri: "qemu:///system", pollIntervalMs: 1, ...srcOptions, connector: async () => srcFake });
  const dest = new LibvirtDriver({ uri: "qemu:///system", pollIntervalMs: 1, connector: async () => dstFake });
  await src.initHost("src");
  await dest.initHost("dest");
  return { src, dest, srcFake, dstFake };
}
