/**
 * Shared state for several fake hosts, so a live migration really moves an instance from one
 * `FakeDriver` to another. Drivers built by the plugin find each other through named clouds
 * ({@link FakeCloud.named}); tests usually make their own `new FakeCloud()`.
 */
import { InstanceNotFoundError, InvalidInputError } from "@virtkit/core";
import { systemClock, type Clock } from "./clock.js";
import type { DiskFiles } from "./fake-disk.js";
import type { FakeGuest } from "./fake-guest.js";
import { FakeHost, type FakeHostOptions } from "./fake-host.js";
import type { FakeInstance } from "./fake-instance.js";

/** How a cloud is built. */
export interface FakeCloudOptions {
  /** A label for debug output (named clouds use their name). */
  readonly name?: string;
  /** The clock every host of this cloud reads (default: the system clock). */
  readonly clock?: Clock;
}

const NAMED = new Map<string, FakeCloud>();

/** A set of fake hosts sharing one clock and one uuid space. */
export class FakeCloud {
  /** A label for debug output. */
  readonly name: string;
  /** The clock every host reads. */
  readonly clock: Clock;
  readonly #hosts = new Map<string, FakeHost>();
  readonly #where = new Map<string, FakeHost>();
  /** Disks a destroy with `destroyDisks: false` left, by storage pool, then instance uuid. */
  readonly #keptDisks = new Map<string, Map<string, DiskFiles>>();

  constructor(options: FakeCloudOptions = {}) {
    this.name = options.name ?? "private";
    this.clock = options.clock ?? systemClock;
  }

  /**
   * The module-level cloud called `name`, created on first use (with `options`), so that two
   * drivers built independently (e.g. by the plugin, `--option cloud=lab`) share hosts.
   */
  static named(name: string, options: Omit<FakeCloudOptions, "name"> = {}): FakeCloud {
    let cloud = NAMED.get(name);
    if (!cloud) {
      cloud = new FakeCloud({ ...options, name });
      NAMED.set(name, cloud);
    }
    return cloud;
  }

  /** Drops the named cloud `name` (or all named clouds), e.g. between tests. */
  static forget(name?: string): void {
    if (name === undefined) NAMED.clear();
    else NAMED.delete(name);
  }

  /** Adds a host; an existing host of that name is returned as it is (a reconnecting driver). */
  addHost(options: FakeHostOptions): FakeHost {
    if (typeof options.name !== "string" || options.name.length === 0) {
      throw new InvalidInputError("host", "must be a non-empty string");
    }
    const existing = this.#hosts.get(options.name);
    if (existing) {
      if (options.virtType !== undefined && options.virtType !== existing.virtType) {
        throw new InvalidInputError("virtType", `host ${options.name} already exists with virtType ${existing.virtType}`);
      }
      return existing;
    }
    for (const [field, v] of [
      ["memoryMb", options.memoryMb],
      ["vcpus", options.vcpus],
    ] as const) {
      if (v !== undefined && (!Number.isInteger(v) || v < 1)) throw new InvalidInputError(field, "must be an integer >= 1");
    }
    const host = new FakeHost(this, options);
    this.#hosts.set(host.name, host);
    return host;
  }

  /** The host called `name`; throws `RangeError` when there is none. */
  host(name: string): FakeHost {
    const h = this.#hosts.get(name);
    if (!h) throw new RangeError(`no fake host ${name} in cloud ${this.name}`);
    return h;
  }

  /** True when the cloud has a host called `name`. */
  hasHost(name: string): boolean {
    return this.#hosts.has(name);
  }

  /** Every host, in creation order. */
  hosts(): FakeHost[] {
    return [...this.#hosts.values()];
  }

  /** The host instance `uuid` is on, or undefined. */
  locate(uuid: string): FakeHost | undefined {
    return this.#where.get(uuid);
  }

  /**
   * The guest of instance `uuid`, wherever it runs: the environment's own access to the inside
   * of an instance (files, accounts, password check, agent and ACPI behaviour, console).
   * Throws `InstanceNotFoundError` when no host has it.
   */
  guest(uuid: string): FakeGuest {
    return this.record(uuid).guest;
  }

  /** @internal The hypervisor record of `uuid`. */
  record(uuid: string): FakeInstance {
    const rec = this.#where.get(uuid)?.instances.get(uuid);
    if (!rec) throw new InstanceNotFoundError(uuid);
    return rec;
  }

  /**
   * Disks kept on storage after a destroy with `destroyDisks: false`, as `[pool, uuid]` pairs:
   * the environment's own view of the hosts' storage.
   */
  keptDisks(): [pool: string, uuid: string][] {
    return [...this.#keptDisks].flatMap(([pool, disks]) => [...disks.keys()].map((uuid): [string, string] => [pool, uuid]));
  }

  /** The kept disks (of instance `uuid`, or all), described for an environment's view of storage. */
  keptDiskDescriptions(uuid?: string): string[] {
    return this.keptDisks()
      .filter(([, u]) => uuid === undefined || u === uuid)
      .map(([pool, u]) => `disk of instance ${u} kept on storage ${pool}`);
  }

  /** The disks of instance `uuid`, described: its live one (if it runs somewhere) and any kept. */
  instanceDisks(uuid: string): string[] {
    const host = this.locate(uuid);
    return [...(host ? [`disk of instance ${uuid} on ${host.name}`] : []), ...this.keptDiskDescriptions(uuid)];
  }

  /** @internal Leaves `disk` of instance `uuid` on storage `pool`. */
  keepDisk(pool: string, uuid: string, disk: DiskFiles): void {
    let disks = this.#keptDisks.get(pool);
    if (!disks) this.#keptDisks.set(pool, (disks = new Map()));
    disks.set(uuid, disk);
  }

  /** @internal A copy of instance `uuid`'s kept disk on storage `pool`, left there. */
  keptDisk(pool: string, uuid: string): DiskFiles | undefined {
    const disk = this.#keptDisks.get(pool)?.get(uuid);
    return disk === undefined ? undefined : new Map(disk);
  }

  /** @internal Takes instance `uuid`'s kept disk off storage `pool` (to reuse or delete it). */
  takeKeptDisk(pool: string, uuid: string): DiskFiles | undefined {
    const disks = this.#keptDisks.get(pool);
    const disk = disks?.get(uuid);
    if (disk === undefined) return undefined;
    disks!.delete(uuid);
    if (disks!.size === 0) this.#keptDisks.delete(pool);
    return disk;
  }

  /** @internal */
  index(uuid: string, host: FakeHost): void {
    this.#where.set(uuid, host);
  }

  /** @internal */
  unindex(uuid: string, host: FakeHost): void {
    if (this.#where.get(uuid) === host) this.#where.delete(uuid);
  }

  /** A debug dump of every host and instance; never a password or a hash. */
  toJSON(): Record<string, unknown> {
    return { name: this.name, hosts: this.hosts().map((h) => h.toJSON()) };
  }
}
