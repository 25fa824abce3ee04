/**
 * The hypervisor's record of one fake instance: power state, rescue mode, CPU accounting,
 * hypervisor-level snapshots and the guest. It moves between hosts as a whole on live migration.
 */
import type { ImageMeta, Instance, InstanceSnapshot, LifecycleTransition } from "@virtkit/core";
import type { DiskFiles } from "./fake-disk.js";
import type { FakeGuest } from "./fake-guest.js";
import type { InstanceStateName } from "./transitions.js";

/** A hypervisor-level snapshot with what it captured. */
export interface StoredSnapshot {
  readonly info: InstanceSnapshot;
  readonly disk: DiskFiles;
  readonly state: InstanceStateName;
  readonly rescued: boolean;
}

/** A live migration in flight from this instance's host. */
export interface MigrationJob {
  readonly id: string;
  readonly destHost: string;
  aborted: boolean;
  forceComplete: boolean;
  /** The plan carries VIR_MIGRATE_POSTCOPY, so force-complete switches to post-copy. */
  readonly postCopyPlanned: boolean;
  /** Set when force-complete switched a post-copy-enabled migration to post-copy. */
  postCopyStarted: boolean;
  /** Fired on abort and force-complete, so the transfer reacts at once instead of after its current step. */
  readonly wake: AbortController;
}

/** The lifecycle event a move from `from` to a different state `to` produces (XenAPI-style: resume -> RESUMED). */
function transitionEvent(from: InstanceStateName, to: InstanceStateName): LifecycleTransition {
  switch (to) {
    case "RUNNING":
      return from === "PAUSED" || from === "SUSPENDED" ? "RESUMED" : "STARTED";
    case "PAUSED":
      return "PAUSED";
    case "SUSPENDED":
      return "SUSPENDED";
    case "SHUTDOWN":
      return "STOPPED";
    case "CRASHED":
      return "CRASHED";
  }
}

/** @internal One instance as the fake hypervisor holds it. */
export class FakeInstance {
  spec: Instance;
  readonly imageMeta: ImageMeta;
  readonly guest: FakeGuest;
  readonly internalId: string;
  state: InstanceStateName = "RUNNING";
  rescued = false;
  rescueImageMeta: ImageMeta | undefined;
  snapshots: StoredSnapshot[] = [];
  migration: MigrationJob | undefined;
  #cpuNs = 0n;
  #runningSince: number | undefined;

  constructor(spec: Instance, imageMeta: ImageMeta, guest: FakeGuest, internalId: string, nowMs: number) {
    this.spec = spec;
    this.imageMeta = imageMeta;
    this.guest = guest;
    this.internalId = internalId;
    this.#runningSince = nowMs;
  }

  /** Nanoseconds of guest CPU time: grows by wall time x vcpus while RUNNING. */
  cpuTimeNs(nowMs: number): bigint {
    if (this.#runningSince === undefined) return this.#cpuNs;
    const elapsedMs = BigInt(Math.round(Math.max(0, nowMs - this.#runningSince)));
    return this.#cpuNs + elapsedMs * 1_000_000n * BigInt(this.spec.flavor.vcpus);
  }

  /** Moves to `to`, keeping the CPU accounting right; returns the event to emit, if any. */
  setState(to: InstanceStateName, nowMs: number): LifecycleTransition | undefined {
    const from = this.state;
    if (from === to) return undefined;
    // Bank the CPU time of the interval that ends here; only RUNNING starts a new one.
    this.#cpuNs = this.cpuTimeNs(nowMs);
    this.#runningSince = to === "RUNNING" ? nowMs : undefined;
    this.state = to;
    return transitionEvent(from, to);
  }
}
