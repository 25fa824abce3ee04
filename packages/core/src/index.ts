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
  StorageUnavailableError,
  InsufficientStorageError,
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
export type {
  ConformanceEnvironment,
  ConformanceEnvironmentContext,
  ConformanceEnvironmentFactory,
  GuestAgentControls,
  GuestAgentMode,
  GuestControls,
  HypervisorControls,
} from "./conformance-environment.js";
export {
  LIMITS,
  DISK_FORMATS,
  CONTAINER_FORMATS,
  validateSafeString,
  validateInstanceName,
  validateUuid,
  NIL_UUID,
  validateFlavor,
  parseImageBoolean,
  validateUserName,
  validateImageMeta,
  parseImageProperties,
  validateMigrationPolicy,
  resolveMigrationPolicy,
  validateInstance,
} from "./validation.js";
export { REDACTED, SECRET_KEY_PATTERN, redact, JsonLogger, MemoryLogger, NullLogger } from "./logger.js";
export { redactOptions, scrubOptionSecrets } from "./redact-options.js";
export type { Logger, LogLevel, LogFields, LogRecord, LogSink, JsonLoggerOptions } from "./logger.js";
export { PASSWORD_GROUPS, PASSWORD_LENGTH, generatePassword } from "./password.js";
export {
  KNOWN_DRIVERS,
  pluginCandidates,
  loadDriverPlugin,
  validatePluginManifest,
  parseOptionPairs,
  validatePluginOptions,
} from "./plugin-loader.js";
export type { LoadDriverPluginOptions } from "./plugin-loader.js";
export { DriverRegistry, createDriver } from "./driver-registry.js";
export type { DriverRegistryOptions, RawDriverOptions, CreateDriverOptions } from "./driver-registry.js";
export { InMemoryInstanceStore, expectedList } from "./instance-store.js";
export type {
  InstanceRecord,
  NewInstanceRecord,
  InstancePatch,
  InstanceFault,
  SaveOptions,
  InstanceStore,
} from "./instance-store.js";
export { ComputeService, reconcileVmState } from "./compute-service.js";
export type {
  ComputeServiceOptions,
  BootOptions,
  RescueServiceOptions,
  RescueResult,
  MigrationDestination,
  LiveMigrateOptions,
  InstanceSnapshotOptions,
} from "./compute-service.js";
