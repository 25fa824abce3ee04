/**
 * Broken variants of the fake whose defect shows only after a particular SEQUENCE of operations
 * (no single state x operation cell exposes them): what the explorer exists to find. Each is one
 * defect, as a small decorator over a healthy driver.
 */
import {
  InvalidStateError,
  PowerState,
  type ComputeDriver,
  type Instance,
  type InstanceInfo,
  type InstanceSnapshot,
  type LifecycleListener,
  type OperationOptions,
} from "@virtkit/core";
import { DriverDecorator } from "../testing/driver-decorator.js";

/**
 * Forgets the paused state after an instance snapshot: its record says RUNNING from then on, so
 * getInfo lies and unpause is refused, until the next operation that changes the state.
 */
export class ForgetsPausedAfterSnapshot extends DriverDecorator {
  readonly #forgot = new Set<string>();
  override async createInstanceSnapshot(
    instance: Instance,
    name: string,
    options?: OperationOptions & { readonly description?: string },
  ): Promise<InstanceSnapshot> {
    const snap = await this.inner.createInstanceSnapshot(instance, name, options);
    if (snap.powerState === PowerState.PAUSED) this.#forgot.add(instance.uuid);
    return snap;
  }
  override async getInfo(instance: Instance, options?: OperationOptions): Promise<InstanceInfo> {
    const info = await this.inner.getInfo(instance, options);
    return this.#forgot.has(instance.uuid) && info.state === PowerState.PAUSED
      ? { ...info, state: PowerState.RUNNING }
      : info;
  }
  override async unpause(instance: Instance, options?: OperationOptions): Promise<void> {
    if (this.#forgot.has(instance.uuid)) throw new InvalidStateError(instance.uuid, "unpause", "RUNNING");
    return this.inner.unpause(instance, options);
  }
  override async powerOff(instance: Instance, options?: OperationOptions): Promise<void> {
    await this.inner.powerOff(instance, options);
    this.#forgot.delete(instance.uuid);
  }
}

/** Reverts to the OLDEST snapshot whatever id it is given: right only while there is one. */
export class RevertToOldest extends DriverDecorator {
  override async revertToInstanceSnapshot(instance: Instance, snapshotId: string, options?: OperationOptions): Promise<void> {
    const oldest = (await this.inner.listInstanceSnapshots(instance, options))[0];
    return this.inner.revertToInstanceSnapshot(instance, oldest?.id ?? snapshotId, options);
  }
}

/** Reverting to a snapshot taken while SUSPENDED resumes the guest (it ends RUNNING). */
export class RevertOfSuspendedResumes extends DriverDecorator {
  override async revertToInstanceSnapshot(instance: Instance, snapshotId: string, options?: OperationOptions): Promise<void> {
    const snap = (await this.inner.listInstanceSnapshots(instance, options)).find((s) => s.id === snapshotId);
    await this.inner.revertToInstanceSnapshot(instance, snapshotId, options);
    if (snap?.powerState === PowerState.SUSPENDED) await this.inner.resume(instance, options);
  }
}

/** Deleting one of several snapshots deletes the newest instead. */
export class DeleteDropsNewest extends DriverDecorator {
  override async deleteInstanceSnapshot(instance: Instance, snapshotId: string, options?: OperationOptions): Promise<void> {
    const all = await this.inner.listInstanceSnapshots(instance, options);
    const target = all.some((s) => s.id === snapshotId) ? (all[all.length - 1]?.id ?? snapshotId) : snapshotId;
    return this.inner.deleteInstanceSnapshot(instance, target, options);
  }
}

/** The name list is a cache refreshed by spawn only: a destroyed instance's name stays listed. */
export class StaleNamesAfterDestroy extends DriverDecorator {
  #names: readonly string[] | undefined;
  override async spawn(...args: Parameters<ComputeDriver["spawn"]>): Promise<void> {
    await this.inner.spawn(...args);
    this.#names = await this.inner.listInstances();
  }
  override async listInstances(options?: OperationOptions): Promise<readonly string[]> {
    return this.#names ?? this.inner.listInstances(options);
  }
}

/** The second PAUSED event of an instance is lost (an event de-duplication keyed on the instance alone). */
export class SecondPauseUnannounced extends DriverDecorator {
  override registerEventListener(listener: LifecycleListener): () => void {
    const paused = new Map<string, number>();
    return this.inner.registerEventListener((e) => {
      if (e.transition === "PAUSED") {
        const n = (paused.get(e.instanceUuid) ?? 0) + 1;
        paused.set(e.instanceUuid, n);
        if (n === 2) return;
      }
      listener(e);
    });
  }
}

/** One sequence-dependent defect: its name, what is wrong, and how to build it. */
export interface SequenceDefect {
  readonly name: string;
  readonly defect: string;
  readonly wrap: (driver: ComputeDriver) => ComputeDriver;
}

/** Every sequence-dependent variant. */
export const SEQUENCE_DEFECTS: readonly SequenceDefect[] = [
  {
    name: "forgets-paused-after-snapshot",
    defect: "after an instance snapshot of a PAUSED instance the driver believes it RUNNING",
    wrap: (d) => new ForgetsPausedAfterSnapshot(d),
  },
  {
    name: "revert-to-oldest",
    defect: "revert goes to the oldest snapshot, whichever was asked for",
    wrap: (d) => new RevertToOldest(d),
  },
  {
    name: "revert-of-suspended-resumes",
    defect: "revert to a snapshot taken SUSPENDED ends RUNNING",
    wrap: (d) => new RevertOfSuspendedResumes(d),
  },
  {
    name: "delete-drops-newest",
    defect: "deleting one of several snapshots deletes the newest",
    wrap: (d) => new DeleteDropsNewest(d),
  },
  {
    name: "stale-names-after-destroy",
    defect: "listInstances is refreshed by spawn only",
    wrap: (d) => new StaleNamesAfterDestroy(d),
  },
  {
    name: "second-pause-unannounced",
    defect: "the second PAUSED event of an instance is lost",
    wrap: (d) => new SecondPauseUnannounced(d),
  },
];
