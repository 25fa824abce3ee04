import "reflect-metadata";

export {
  VirtkitError,
  InstanceNotFoundError,
  InstanceNotRunningError,
  InvalidStateError,
  PowerOffFailureError,
  PasswordSetFailedError,
  AdminPasswordNotSupportedError,
  GuestAgentNotEnabledError,
  GuestAgentUnresponsiveError,
  UnsupportedOperationError,
  InvalidInputError,
  UnexpectedTaskStateError,
  MigrationPreCheckError,
  LiveMigrationFailedError,
  HypervisorUnavailableError,
  DriverLoadError,
  SnapshotNotFoundError,
  ImageNotFoundError,
  InstanceExistsError,
  OperationTimeoutError,
  OperationAbortedError,
  ERROR_CLASSES,
  findError,
  isInstanceNotFound,
  isUnsupported,
  isInvalidState,
  isInvalidInput,
} from "./errors.js";
export type { VirtkitErrorCode, VirtkitErrorOptions } from "./errors.js";
export { PowerState, VmState, TaskState, powerStateName } from "./states.js";
export type { PowerStateName } from "./states.js";
export type {
  Flavor,
  OsType,
  ImageProperties,
  DiskFormat,
  ContainerFormat,
  ImageMeta,
  NetworkInterface,
  NetworkInfo,
  BlockDevice,
  BlockDeviceInfo,
  Instance,
} from "./model.js";
export { CAPABILITY_NAMES, CAPABILITY_DESCRIPTIONS, NO_CAPABILITIES, ALL_CAPABILITIES } from "./capabilities.js";
export type { Capability, Capabilities } from "./capabilities.js";
export { DEFAULT_MIGRATION_POLICY } from "./migration-policy.js";
export type { MigrationPolicy, MigrationPlan, MigrationHostFacts } from "./migration-policy.js";
export { Secret, isSecret } from "./secret.js";
export { withDeadline, throwIfAborted, sleep } from "./operation.js";
export type { OperationOptions } from "./operation.js";
export { InMemoryImageService, snapshotImageMetadata } from "./image-service.js";
export type { ImageService, ImageRecord, ImageUpdate, ImageStatus, ImageData } from "./image-service.js";
export { CONTRACT_VERSION } from "./driver.js";
export type {
  ComputeDriver,
  HostInfo,
  InstanceInfo,
  RebootType,
  SpawnRequest,
  PowerOffOptions,
  DestroyOptions,
  RescueOptions,
  TaskStateCallback,
  ImageSnapshotOptions,
  InstanceSnapshot,
  MigrateData,
  MigrationProgress,
  LiveMigrationOptions,
  MigrationContext,
  LifecycleTransition,
  LifecycleEvent,
  LifecycleListener,
} from "./driver.js";
export { TOKENS, driverToken } from "./plugin.js";
export type { DriverPlugin, PluginRegistration } from "./plugin.js";
