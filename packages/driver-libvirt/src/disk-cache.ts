/**
 * Nova's `disk_cachemode`: `cache='none'` (O_DIRECT, consistent performance and safe live
 * migration on shared storage), falling back to `writeback` where the instances' filesystem
 * refuses O_DIRECT (`nova.privsep.utils.supports_direct_io`, e.g. an old tmpfs). The probe runs
 * where this process can see the storage directory; the answer is kept per directory.
 */
import { constants } from "node:fs";
import { open, unlink } from "node:fs/promises";
import { join } from "node:path";
import { randomUUID } from "node:crypto";
import type { DiskCacheMode } from "./domain-xml.js";

/**
 * Whether `dir` accepts O_DIRECT: `true`, `false` (EINVAL: the filesystem refuses it), or
 * `undefined` when this process cannot tell (the directory is on another host, or not readable).
 */
export async function supportsDirectIo(dir: string): Promise<boolean | undefined> {
  const probe = join(dir, `.virtkit-directio-${randomUUID()}`);
  let handle;
  try {
    handle = await open(probe, constants.O_CREAT | constants.O_EXCL | constants.O_RDWR | constants.O_DIRECT, 0o600);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EINVAL" ? false : undefined;
  } finally {
    await handle?.close().catch(() => undefined);
    if (handle) await unlink(probe).catch(() => undefined);
  }
}

/** The cache mode for disks in `dir`, probed once per directory. */
export class DiskCachePolicy {
  readonly #byDir = new Map<string, Promise<DiskCacheMode>>();

  constructor(
    private readonly log: (message: string, fields?: Record<string, unknown>) => void,
    private readonly probe: (dir: string) => Promise<boolean | undefined> = supportsDirectIo,
  ) {}

  /** `none`, or `writeback` where O_DIRECT is refused; `none` when it cannot be probed from here (Nova's default). */
  modeFor(dir: string): Promise<DiskCacheMode> {
    let mode = this.#byDir.get(dir);
    if (mode === undefined) {
      mode = this.probe(dir).then(
        (direct) => {
          if (direct === false)
            this.log("O_DIRECT is not supported where the disks live: cache mode writeback", { dir });
          return direct === false ? "writeback" : "none";
        },
        () => "none" as const,
      );
      this.#byDir.set(dir, mode);
    }
    return mode;
  }
}
