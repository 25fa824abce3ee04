/**
 * A ComputeDriver that delegates every call to another one. Subclasses override one method to
 * change one behaviour: the kit's broken variants, or a driver author's fault experiments.
 */
import type {
  Capabilities,
  ComputeDriver,
  DestroyOptions,
  HostInfo,
  ImageMeta,
  ImageSnapshotOptions,
  Instance,
  InstanceInfo,
  InstanceSnapshot,
  LifecycleListener,
  LiveMigrationOptions,
  MigrateData,
  MigrationContext,
  MigrationHostFacts,
  MigrationPlan,
  MigrationPolicy,
  OperationOptions,
  PowerOffOptions,
  RebootType,
  RescueOptions,
  Secret,
  SpawnRequest,
} from "@virtkit/core";

/** Delegates everything to `inner`. */
export class DriverDecorator implements ComputeDriver {
  constructor(protected readonly inner: ComputeDriver) {}

  get name(): string {
    return this.inner.name;
  }
  get capabilities(): Capabilities {
    return this.inner.capabilities;
  }
  initHost(host: string, options?: OperationOptions): Promise<void> {
    return this.inner.initHost(host, options);
  }
  cleanupHost(host: string, options?: OperationOptions): Promise<void> {
    return this.inner.cleanupHost(host, options);
  }
  getHostInfo(options?: OperationOptions): Promise<HostInfo> {
    return this.inner.getHostInfo(options);
  }
  listInstances(options?: OperationOptions): Promise<readonly string[]> {
    return this.inner.listInstances(options);
  }
  listInstanceUuids(options?: OperationOptions): Promise<readonly string[]> {
    return this.inner.listInstanceUuids(options);
  }
  instanceExists(instance: Instance, options?: OperationOptions): Promise<boolean> {
    return this.inner.instanceExists(instance, options);
  }
  getInfo(instance: Instance, options?: OperationOptions): Promise<InstanceInfo> {
    return this.inner.getInfo(instance, options);
  }
  getConsoleOutput(instance: Instance, options?: OperationOptions): Promise<string> {
    return this.inner.getConsoleOutput(instance, options);
  }
  spawn(request: SpawnRequest, options?: OperationOptions): Promise<void> {
    return this.inner.spawn(request, options);
  }
  destroy(instance: Instance, options?: DestroyOptions): Promise<void> {
    return this.inner.destroy(instance, options);
  }
  reboot(instance: Instance, type: RebootType, options?: OperationOptions): Promise<void> {
    return this.inner.reboot(instance, type, options);
  }
  powerOff(instance: Instance, options?: PowerOffOptions): Promise<void> {
    return this.inner.powerOff(instance, options);
  }
  powerOn(instance: Instance, options?: OperationOptions): Promise<void> {
    return this.inner.powerOn(instance, options);
  }
  pause(instance: Instance, options?: OperationOptions): Promise<void> {
    return this.inner.pause(instance, options);
  }
  unpause(instance: Instance, options?: OperationOptions): Promise<void> {
    return this.inner.unpause(instance, options);
  }
  suspend(instance: Instance, options?: OperationOptions): Promise<void> {
    return this.inner.suspend(instance, options);
  }
  resume(instance: Instance, options?: OperationOptions): Promise<void> {
    return this.inner.resume(instance, options);
  }
  rescue(instance: Instance, rescueImageMeta: ImageMeta, options?: RescueOptions): Promise<void> {
    return this.inner.rescue(instance, rescueImageMeta, options);
  }
  unrescue(instance: Instance, options?: OperationOptions): Promise<void> {
    return this.inner.unrescue(instance, options);
  }
  snapshot(instance: Instance, imageId: string, options?: ImageSnapshotOptions): Promise<void> {
    return this.inner.snapshot(instance, imageId, options);
  }
  createInstanceSnapshot(
    instance: Instance,
    name: string,
    options?: OperationOptions & { readonly description?: string },
  ): Promise<InstanceSnapshot> {
    return this.inner.createInstanceSnapshot(instance, name, options);
  }
  listInstanceSnapshots(instance: Instance, options?: OperationOptions): Promise<readonly InstanceSnapshot[]> {
    return this.inner.listInstanceSnapshots(instance, options);
  }
  revertToInstanceSnapshot(instance: Instance, snapshotId: string, options?: OperationOptions): Promise<void> {
    return this.inner.revertToInstanceSnapshot(instance, snapshotId, options);
  }
  deleteInstanceSnapshot(instance: Instance, snapshotId: string, options?: OperationOptions): Promise<void> {
    return this.inner.deleteInstanceSnapshot(instance, snapshotId, options);
  }
  setAdminPassword(instance: Instance, password: Secret, options?: OperationOptions): Promise<void> {
    return this.inner.setAdminPassword(instance, password, options);
  }
  planMigration(policy: MigrationPolicy, facts?: MigrationHostFacts): MigrationPlan {
    return this.inner.planMigration(policy, facts);
  }
  checkCanLiveMigrateDestination(
    instance: Instance,
    sourceHost: HostInfo,
    policy: MigrationPolicy,
    options?: OperationOptions,
  ): Promise<MigrateData> {
    return this.inner.checkCanLiveMigrateDestination(instance, sourceHost, policy, options);
  }
  checkCanLiveMigrateSource(instance: Instance, data: MigrateData, options?: OperationOptions): Promise<MigrateData> {
    return this.inner.checkCanLiveMigrateSource(instance, data, options);
  }
  preLiveMigration(
    instance: Instance,
    data: MigrateData,
    context?: MigrationContext,
    options?: OperationOptions,
  ): Promise<MigrateData> {
    return this.inner.preLiveMigration(instance, data, context, options);
  }
  liveMigration(instance: Instance, data: MigrateData, options?: LiveMigrationOptions): Promise<void> {
    return this.inner.liveMigration(instance, data, options);
  }
  postLiveMigrationAtDestination(
    instance: Instance,
    data: MigrateData,
    context?: MigrationContext,
    options?: OperationOptions,
  ): Promise<void> {
    return this.inner.postLiveMigrationAtDestination(instance, data, context, options);
  }
  rollbackLiveMigrationAtDestination(
    instance: Instance,
    data: MigrateData,
    context?: MigrationContext,
    options?: OperationOptions,
  ): Promise<void> {
    return this.inner.rollbackLiveMigrationAtDestination(instance, data, context, options);
  }
  liveMigrationAbort(instance: Instance, options?: OperationOptions): Promise<void> {
    return this.inner.liveMigrationAbort(instance, options);
  }
  liveMigrationForceComplete(instance: Instance, options?: OperationOptions): Promise<void> {
    return this.inner.liveMigrationForceComplete(instance, options);
  }
  registerEventListener(listener: LifecycleListener): () => void {
    return this.inner.registerEventListener(listener);
  }
}
