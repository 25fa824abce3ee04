/**
 * One fake hypervisor host in a {@link FakeCloud}: its size, its instances, the memory reserved
 * by incoming migrations, its lifecycle event bus and its fault injector. Several `FakeDriver`s
 * may attach to one host (a reconnect sees the same instances).
 */
import { InstanceNotFoundError, deliverLifecycleEvent, type LifecycleListener, type LifecycleTransition } from "@virtkit/core";
import type { FakeCloud } from "./fake-cloud.js";
import { FaultInjector } from "./faults.js";
import type { FakeInstance } from "./fake-instance.js";
import type { InstanceStateName } from "./transitions.js";

/** How a host is built. */
export interface FakeHostOptions {
  readonly name: string;
  /** Host memory in MiB (default 16384); live migration checks the destination's free memory. */
  readonly memoryMb?: number;
  /** Host CPUs (default 8). */
  readonly vcpus?: number;
  /** `kvm` (default), `qemu`, `xen`, ...; migration needs the same type on both ends. */
  readonly virtType?: string;
  /** Whether the hypervisor supports post-copy migration (default true). */
  readonly postCopySupported?: boolean;
  /**
   * Storage this host's instance disks live on (default: the host's own). Hosts with the same
   * pool share storage, so live migration between them must NOT be a block migration; otherwise
   * it must be.
   */
  readonly storagePool?: string;
  /** CPU architecture (default `x86_64`). */
  readonly cpuArch?: string;
}

/** Memory held on a destination by a prepared incoming migration. */
export interface Reservation {
  readonly memoryMb: number;
  readonly sourceHost: string;
}

/** One fake hypervisor host. */
export class FakeHost {
  readonly name: string;
  readonly memoryMb: number;
  readonly vcpus: number;
  readonly virtType: string;
  readonly postCopySupported: boolean;
  readonly storagePool: string;
  readonly cpuArch: string;
  /** Fault injection for calls made to this host. */
  readonly faults: FaultInjector;
  /** @internal */
  readonly instances = new Map<string, FakeInstance>();
  /** @internal Incoming migrations prepared by `preLiveMigration`, by instance uuid. */
  readonly reservations = new Map<string, Reservation>();
  readonly #cloud: FakeCloud;
  readonly #listeners = new Set<LifecycleListener>();
  #nextInternalId = 1;

  /** Use {@link FakeCloud.addHost} rather than this. */
  constructor(cloud: FakeCloud, options: FakeHostOptions) {
    this.#cloud = cloud;
    this.name = options.name;
    this.memoryMb = options.memoryMb ?? 16384;
    this.vcpus = options.vcpus ?? 8;
    this.virtType = options.virtType ?? "kvm";
    this.postCopySupported = options.postCopySupported ?? true;
    this.storagePool = options.storagePool ?? `local:${options.name}`;
    this.cpuArch = options.cpuArch ?? "x86_64";
    this.faults = new FaultInjector({
      setAgent: (uuid, mode) => {
        this.#mustGet(uuid).guest.agent = mode;
      },
      setIgnoreAcpi: (uuid, ignore) => {
        this.#mustGet(uuid).guest.ignoresAcpi = ignore;
      },
      crash: (uuid) => this.crash(uuid),
    });
  }

  /** Memory taken by instances (whatever their state, as Nova's resource tracker counts) and reservations. */
  usedMemoryMb(): number {
    let used = 0;
    for (const rec of this.instances.values()) used += rec.spec.flavor.memoryMb;
    for (const r of this.reservations.values()) used += r.memoryMb;
    return used;
  }

  /** Memory still free, in MiB. */
  freeMemoryMb(): number {
    return this.memoryMb - this.usedMemoryMb();
  }

  /** Uuids of the instances on this host. */
  instanceUuids(): string[] {
    return [...this.instances.keys()];
  }

  /** Uuids of instances whose incoming migration this host has prepared (memory reserved). */
  reservationUuids(): string[] {
    return [...this.reservations.keys()];
  }

  /** @internal The next hypervisor id. */
  allocateInternalId(): string {
    return String(this.#nextInternalId++);
  }

  /** @internal Puts an instance on this host. */
  attach(rec: FakeInstance): void {
    this.instances.set(rec.spec.uuid, rec);
    this.#cloud.index(rec.spec.uuid, this);
  }

  /** @internal Takes an instance off this host. */
  detach(uuid: string): void {
    if (this.instances.delete(uuid)) this.#cloud.unindex(uuid, this);
  }

  /** @internal Adds a listener; returns its remover. */
  subscribe(listener: LifecycleListener): () => void {
    this.#listeners.add(listener);
    return () => {
      this.#listeners.delete(listener);
    };
  }

  /** @internal Emits a lifecycle event to every listener of this host; a throwing (or rejecting) listener is ignored. */
  emit(instanceUuid: string, transition: LifecycleTransition): void {
    const event = { instanceUuid, transition, host: this.name, timestamp: this.#cloud.clock.now() };
    // A listener's failure is its own; the hypervisor carries on.
    deliverLifecycleEvent(this.#listeners, event, () => undefined);
  }

  /** @internal Moves `rec` to `to` and emits the matching event. */
  transition(rec: FakeInstance, to: InstanceStateName): void {
    const event = rec.setState(to, this.#cloud.clock.now());
    if (event !== undefined) this.emit(rec.spec.uuid, event);
  }

  /** Crashes a RUNNING or PAUSED instance (fault injection). */
  crash(uuid: string): void {
    const rec = this.#mustGet(uuid);
    if (rec.state !== "RUNNING" && rec.state !== "PAUSED") {
      throw new RangeError(`only a running or paused instance can crash (it is ${rec.state})`);
    }
    rec.guest.print(this.#cloud.clock.now(), "Kernel panic - not syncing: Fatal exception (injected by virtkit fake)");
    this.transition(rec, "CRASHED");
  }

  #mustGet(uuid: string): FakeInstance {
    const rec = this.instances.get(uuid);
    if (!rec) throw new InstanceNotFoundError(uuid);
    return rec;
  }

  // Stryker disable all: a debug view for JSON.stringify; no driver call or environment control reads it
  // (MUTATION.md, "ignored").
  /** A debug view (no secrets). */
  toJSON(): Record<string, unknown> {
    return {
      name: this.name,
      memoryMb: this.memoryMb,
      freeMemoryMb: this.freeMemoryMb(),
      vcpus: this.vcpus,
      virtType: this.virtType,
      storagePool: this.storagePool,
      instances: [...this.instances.values()].map((r) => ({
        uuid: r.spec.uuid,
        name: r.spec.name,
        state: r.state,
        rescued: r.rescued,
        migrating: r.migration !== undefined,
        snapshots: r.snapshots.map((s) => s.info.id),
        guest: r.guest.toJSON(),
      })),
      reservations: Object.fromEntries(this.reservations),
      pendingFaults: this.faults.pending,
    };
  }
  // Stryker restore all
}
