/**
 * A small in-memory ComputeDriver for core's own unit tests (core must not depend on
 * `@virtkit/driver-fake`). It keeps power states honestly, records every call, and lets a test
 * make any method fail (`driver.failOn("pause", err)`) or run a hook before it answers.
 */
import { ALL_CAPABILITIES, type Capabilities } from "../capabilities.js";
import type {
  ComputeDriver,
  DestroyOptions,
  HostInfo,
  ImageSnapshotOptions,
  InstanceInfo,
  InstanceSnapshot,
  LifecycleListener,
  LiveMigrationOptions,
  MigrateData,
  RebootType,
  RescueOptions,
  SpawnRequest,
} from "../driver.js";
import { InstanceExistsError, InstanceNotFoundError, InvalidStateError, SnapshotNotFoundError } from "../errors.js";
import { snapshotImageMetadata, type ImageService } from "../image-service.js";
import type { MigrationPlan, MigrationPolicy } from "../migration-policy.js";
import type { ImageMeta, Instance } from "../model.js";
import type { OperationOptions } from "../operation.js";
import type { Secret } from "../secret.js";
import { PowerState, powerStateName, TaskState } from "../states.js";

interface Vm {
  instance: Instance;
  power: PowerState;
  rescued: boolean;
  snapshots: InstanceSnapshot[];
  password?: string;
}

type Hook = (...args: unknown[]) => unknown;

/** Shared between stub drivers that may migrate to each other. */
export type StubFabric = Map<string, StubDriver>;

/** Options of {@link StubDriver}. */
export interface StubDriverOptions {
  readonly name?: string;
  readonly imageService?: ImageService;
  readonly fabric?: StubFabric;
  readonly capabilities?: Capabilities;
}

/** @internal The test driver. */
export class StubDriver implements ComputeDriver {
  readonly name: string;
  readonly capabilities: Capabilities;
  readonly vms = new Map<string, Vm>();
  readonly calls: { method: string; args: unknown[] }[] = [];
  host = "";
  initCount = 0;
  cleanedUp: string[] = [];
  readonly #hooks = new Map<string, Hook>();
  readonly #fabric: StubFabric;
  readonly imageService: ImageService | undefined;
  #snapshotSeq = 0;
  readonly #listeners = new Set<LifecycleListener>();

  constructor(options: StubDriverOptions = {}) {
    this.name = options.name ?? "stub";
    this.capabilities = options.capabilities ?? ALL_CAPABILITIES;
    this.imageService = options.imageService;
    this.#fabric = options.fabric ?? new Map();
  }

  /** Makes `method` throw `err` (or run `hook`, which may throw) before doing its work. */
  failOn(method: keyof ComputeDriver, err: unknown): this {
    this.#hooks.set(method, () => {
      throw err;
    });
    return this;
  }

  /** Runs `hook` before `method` does its work. */
  before(method: keyof ComputeDriver, hook: Hook): this {
    this.#hooks.set(method, hook);
    return this;
  }

  /** Removes a failure or hook. */
  clear(method: keyof ComputeDriver): this {
    this.#hooks.delete(method);
    return this;
  }

  /** The calls of one method. */
  callsOf(method: keyof ComputeDriver): unknown[][] {
    return this.calls.filter((c) => c.method === method).map((c) => c.args);
  }

  async #enter(method: string, args: unknown[]): Promise<void> {
    this.calls.push({ method, args });
    const hook = this.#hooks.get(method);
    if (hook) await hook(...args);
  }

  #vm(instance: Instance): Vm {
    const vm = this.vms.get(instance.uuid);
    if (!vm) throw new InstanceNotFoundError(instance.uuid);
    return vm;
  }

  #need(vm: Vm, op: string, ...allowed: PowerState[]): void {
    if (!allowed.includes(vm.power)) throw new InvalidStateError(vm.instance.uuid, op, powerStateName(vm.power));
  }

  async initHost(host: string): Promise<void> {
    await this.#enter("initHost", [host]);
    this.host = host;
    this.initCount++;
    this.#fabric.set(host, this);
  }
  async cleanupHost(host: string): Promise<void> {
    await this.#enter("cleanupHost", [host]);
    this.cleanedUp.push(host);
  }
  async getHostInfo(): Promise<HostInfo> {
    await this.#enter("getHostInfo", []);
    return {
      hostname: this.host,
      hypervisorType: "stub",
      hypervisorVersion: "1.0.0",
      cpuArch: "x86_64",
      vcpus: 8,
      memoryMb: 16384,
    };
  }
  async listInstances(): Promise<readonly string[]> {
    await this.#enter("listInstances", []);
    return [...this.vms.values()].map((v) => v.instance.name);
  }
  async listInstanceUuids(): Promise<readonly string[]> {
    await this.#enter("listInstanceUuids", []);
    return [...this.vms.keys()];
  }
  async instanceExists(instance: Instance): Promise<boolean> {
    await this.#enter("instanceExists", [instance]);
    return this.vms.has(instance.uuid);
  }
  async getInfo(instance: Instance): Promise<InstanceInfo> {
    await this.#enter("getInfo", [instance]);
    const vm = this.#vm(instance);
    const mem = instance.flavor.memoryMb * 1024;
    return { state: vm.power, maxMemoryKb: mem, memoryKb: mem, vcpus: instance.flavor.vcpus, cpuTimeNs: 0n };
  }
  async getConsoleOutput(instance: Instance): Promise<string> {
    await this.#enter("getConsoleOutput", [instance]);
    this.#vm(instance);
    return "";
  }
  async spawn(request: SpawnRequest, options?: OperationOptions): Promise<void> {
    await this.#enter("spawn", [request, options]);
    if (this.vms.has(request.instance.uuid)) throw new InstanceExistsError(request.instance.uuid);
    this.vms.set(request.instance.uuid, {
      instance: request.instance,
      power: PowerState.RUNNING,
      rescued: false,
      snapshots: [],
      password: request.adminPassword?.reveal(),
    });
  }
  async destroy(instance: Instance, options?: DestroyOptions): Promise<void> {
    await this.#enter("destroy", [instance, options]);
    this.vms.delete(instance.uuid);
  }
  async reboot(instance: Instance, type: RebootType): Promise<void> {
    await this.#enter("reboot", [instance, type]);
    const vm = this.#vm(instance);
    if (type === "SOFT") this.#need(vm, "soft reboot", PowerState.RUNNING);
    vm.power = PowerState.RUNNING;
  }
  async powerOff(instance: Instance): Promise<void> {
    await this.#enter("powerOff", [instance]);
    this.#vm(instance).power = PowerState.SHUTDOWN;
  }
  async powerOn(instance: Instance): Promise<void> {
    await this.#enter("powerOn", [instance]);
    const vm = this.#vm(instance);
    this.#need(vm, "power on", PowerState.SHUTDOWN, PowerState.CRASHED, PowerState.RUNNING);
    vm.power = PowerState.RUNNING;
  }
  async pause(instance: Instance): Promise<void> {
    await this.#enter("pause", [instance]);
    const vm = this.#vm(instance);
    this.#need(vm, "pause", PowerState.RUNNING);
    vm.power = PowerState.PAUSED;
  }
  async unpause(instance: Instance): Promise<void> {
    await this.#enter("unpause", [instance]);
    const vm = this.#vm(instance);
    this.#need(vm, "unpause", PowerState.PAUSED);
    vm.power = PowerState.RUNNING;
  }
  async suspend(instance: Instance): Promise<void> {
    await this.#enter("suspend", [instance]);
    const vm = this.#vm(instance);
    this.#need(vm, "suspend", PowerState.RUNNING);
    vm.power = PowerState.SUSPENDED;
  }
  async resume(instance: Instance): Promise<void> {
    await this.#enter("resume", [instance]);
    const vm = this.#vm(instance);
    this.#need(vm, "resume", PowerState.SUSPENDED);
    vm.power = PowerState.RUNNING;
  }
  async rescue(instance: Instance, rescueImageMeta: ImageMeta, options?: RescueOptions): Promise<void> {
    await this.#enter("rescue", [instance, rescueImageMeta, options]);
    const vm = this.#vm(instance);
    vm.rescued = true;
    vm.power = PowerState.RUNNING;
  }
  async unrescue(instance: Instance): Promise<void> {
    await this.#enter("unrescue", [instance]);
    const vm = this.#vm(instance);
    vm.rescued = false;
    vm.power = PowerState.RUNNING;
  }
  async snapshot(instance: Instance, imageId: string, options?: ImageSnapshotOptions): Promise<void> {
    await this.#enter("snapshot", [instance, imageId, options]);
    this.#vm(instance);
    await options?.onTaskState?.(TaskState.IMAGE_PENDING_UPLOAD, TaskState.IMAGE_SNAPSHOT);
    await options?.onTaskState?.(TaskState.IMAGE_UPLOADING, TaskState.IMAGE_PENDING_UPLOAD);
    if (this.imageService) {
      const image = await this.imageService.get(imageId);
      await this.imageService.update(
        imageId,
        snapshotImageMetadata(instance, "qcow2", image.name),
        new Uint8Array([1, 2, 3]),
      );
    }
  }
  async createInstanceSnapshot(
    instance: Instance,
    name: string,
    options?: OperationOptions & { readonly description?: string },
  ): Promise<InstanceSnapshot> {
    await this.#enter("createInstanceSnapshot", [instance, name, options]);
    const vm = this.#vm(instance);
    const snap: InstanceSnapshot = {
      id: `snap-${++this.#snapshotSeq}`,
      name,
      instanceUuid: instance.uuid,
      createdAt: new Date().toISOString(),
      powerState: vm.power,
      ...(options?.description ? { description: options.description } : {}),
    };
    vm.snapshots.push(snap);
    return snap;
  }
  async listInstanceSnapshots(instance: Instance): Promise<readonly InstanceSnapshot[]> {
    await this.#enter("listInstanceSnapshots", [instance]);
    return [...this.#vm(instance).snapshots];
  }
  async revertToInstanceSnapshot(instance: Instance, snapshotId: string): Promise<void> {
    await this.#enter("revertToInstanceSnapshot", [instance, snapshotId]);
    const vm = this.#vm(instance);
    const snap = vm.snapshots.find((s) => s.id === snapshotId);
    if (!snap) throw new SnapshotNotFoundError(instance.uuid, snapshotId);
    vm.power = snap.powerState;
  }
  async deleteInstanceSnapshot(instance: Instance, snapshotId: string): Promise<void> {
    await this.#enter("deleteInstanceSnapshot", [instance, snapshotId]);
    const vm = this.#vm(instance);
    const i = vm.snapshots.findIndex((s) => s.id === snapshotId);
    if (i < 0) throw new SnapshotNotFoundError(instance.uuid, snapshotId);
    vm.snapshots.splice(i, 1);
  }
  async setAdminPassword(instance: Instance, password: Secret): Promise<void> {
    await this.#enter("setAdminPassword", [instance, password]);
    const vm = this.#vm(instance);
    vm.password = password.reveal();
  }
  planMigration(policy: MigrationPolicy): MigrationPlan {
    return { scheme: "stub", flags: policy.live ? ["LIVE"] : [], params: {} };
  }
  async checkCanLiveMigrateDestination(
    instance: Instance,
    sourceHost: HostInfo,
    policy: MigrationPolicy,
  ): Promise<MigrateData> {
    await this.#enter("checkCanLiveMigrateDestination", [instance, sourceHost, policy]);
    return {
      sourceHost: sourceHost.hostname,
      destHost: this.host,
      policy,
      plan: this.planMigration(policy),
      extra: {},
    };
  }
  async checkCanLiveMigrateSource(instance: Instance, data: MigrateData): Promise<MigrateData> {
    await this.#enter("checkCanLiveMigrateSource", [instance, data]);
    this.#vm(instance);
    return data;
  }
  async preLiveMigration(instance: Instance, data: MigrateData): Promise<MigrateData> {
    await this.#enter("preLiveMigration", [instance, data]);
    return { ...data, extra: { ...data.extra, prepared: true } };
  }
  async liveMigration(instance: Instance, data: MigrateData, options?: LiveMigrationOptions): Promise<void> {
    await this.#enter("liveMigration", [instance, data, options]);
    const vm = this.#vm(instance);
    const dest = this.#fabric.get(data.destHost);
    if (!dest) throw new InstanceNotFoundError(instance.uuid);
    options?.onProgress?.({ dataTotalBytes: 100, dataProcessedBytes: 100, dataRemainingBytes: 0, elapsedMs: 1 });
    this.vms.delete(instance.uuid);
    dest.vms.set(instance.uuid, vm);
  }
  async postLiveMigrationAtDestination(instance: Instance, data: MigrateData): Promise<void> {
    await this.#enter("postLiveMigrationAtDestination", [instance, data]);
  }
  async rollbackLiveMigrationAtDestination(instance: Instance, data: MigrateData): Promise<void> {
    await this.#enter("rollbackLiveMigrationAtDestination", [instance, data]);
  }
  async liveMigrationAbort(instance: Instance): Promise<void> {
    await this.#enter("liveMigrationAbort", [instance]);
  }
  async liveMigrationForceComplete(instance: Instance): Promise<void> {
    await this.#enter("liveMigrationForceComplete", [instance]);
  }
  registerEventListener(listener: LifecycleListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
}

let seq = 0;

/** A valid instance with a fresh uuid. */
export function testInstance(overrides: Partial<Instance> = {}): Instance {
  seq++;
  return {
    uuid: crypto.randomUUID(),
    name: `vm-${seq}`,
    flavor: { name: "m1.tiny", memoryMb: 512, vcpus: 1, rootGb: 1 },
    imageMeta: {
      id: "cirros",
      diskFormat: "qcow2",
      containerFormat: "bare",
      properties: { hw_qemu_guest_agent: true },
    },
    projectId: "demo",
    ...overrides,
  };
}
