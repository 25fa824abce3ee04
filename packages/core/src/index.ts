// No global `reflect-metadata`: virtkit injects by explicit token only and reads no decorator
// metadata; containers come from `createContainer()` (container.ts), never from tsyringe's index.
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
export {
  CAPABILITY_NAMES,
  CAPABILITY_DESCRIPTIONS,
  CAPABILITY_METHODS,
  NO_CAPABILITIES,
  ALL_CAPABILITIES,
  isCapability,
  validateCapabilities,
  declareCapabilities,
} from "./capabilities.js";
export type { Capability, Capabilities, ValidateCapabilitiesOptions } from "./capabilities.js";
export { BaseComputeDriver, capabilitiesFrom } from "./base-driver.js";
export type { CapabilityDeclaration } from "./base-driver.js";
export { DEFAULT_MIGRATION_POLICY } from "./migration-policy.js";
export type { MigrationPolicy, MigrationPlan, MigrationHostFacts } from "./migration-policy.js";
export { Secret, isSecret } from "./secret.js";
export {
  withDeadline,
  throwIfAborted,
  sleep,
  onAbort,
  raceSignal,
  MAX_TIMER_MS,
  timerDelay,
  validateOperationOptions,
} from "./operation.js";
export type { OperationOptions } from "./operation.js";
export {
  LIBVIRT_PLAN_SCHEME,
  MIN_QEMU_PARALLEL_POSTCOPY_VERSION,
  VIR_MIGRATE,
  escapeIpv6,
  liveMigrationUri,
  migrateUri,
  planLibvirtMigration,
  virMigrateFlagNames,
} from "./libvirt-migration.js";
export type { LiveMigrationUriOptions, VirMigrateFlag } from "./libvirt-migration.js";
export {
  DEFAULT_NON_INHERITABLE_IMAGE_PROPERTIES,
  InMemoryImageService,
  NEVER_INHERITED_IMAGE_NAMESPACES,
  NEVER_INHERITED_IMAGE_PROPERTIES,
  snapshotImageMetadata,
} from "./image-service.js";
export type {
  ImageService,
  ImageRecord,
  ImageUpdate,
  ImageStatus,
  ImageData,
  HeldImageMethod,
  ImageHold,
  ImageServiceControls,
  SnapshotMetadataOptions,
} from "./image-service.js";
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
  ImageSnapshotMethod,
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
export type { TypedToken } from "./plugin.js";
export type {
  DriverPlugin,
  PluginRegistration,
  PluginEnvironment,
  EnvironmentProgress,
  PluginOptions,
  PluginOptionsInput,
} from "./plugin.js";
export type { StandardSchemaV1 } from "@standard-schema/spec";
export type {
  ConformanceEnvironment,
  ConformanceEnvironmentContext,
  ConformanceEnvironmentFactory,
  ConformanceDriverSetup,
  GuestAgentControls,
  GuestAgentMode,
  GuestControls,
  GuestShutdownRecord,
  HostFacts,
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
export {
  powerOffOptionsError,
  rebootTypeError,
  validateAdminPassword,
  validateImageId,
  validateInstanceSnapshotInput,
  validateRescueInput,
  validateSnapshotId,
  validateSpawnRequest,
  SNAPSHOT_DESCRIPTION_MAX,
} from "./driver-input.js";
export { REDACTED, SECRET_KEY_PATTERN, redact, JsonLogger, MemoryLogger, NullLogger } from "./logger.js";
export { redactOptions, scrubOptionSecrets } from "./redact-options.js";
export { redactUrisInText } from "./secret-patterns.js";
export { PinoLogger, pinoLogger } from "./pino-logger.js";
export type { PinoLike } from "./pino-logger.js";
export type { Logger, LogLevel, LogFields, LogRecord, LogSink, JsonLoggerOptions } from "./logger.js";
export { PASSWORD_GROUPS, PASSWORD_LENGTH, generatePassword } from "./password.js";
export { forEachLimited, mapLimited } from "./limited.js";
export {
  KNOWN_DRIVERS,
  pluginCandidates,
  loadDriverPlugin,
  validatePluginManifest,
  parseOptionPairs,
  validatePluginOptions,
  missingPluginOptions,
  discoverDriverPlugins,
  DRIVER_PACKAGE_KEYWORD,
} from "./plugin-loader.js";
export type { LoadDriverPluginOptions, DiscoveredDriver, DiscoverDriverPluginsOptions } from "./plugin-loader.js";
export { DriverRegistry, createDriver } from "./driver-registry.js";
export { createContainer, cachedFactory } from "./container.js";
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
export { deliverLifecycleEvent } from "./lifecycle-listeners.js";
export { computeServiceToken, registerComputeService, computeServiceFor } from "./compute-service-provider.js";
export type { RegisterComputeServiceOptions } from "./compute-service-provider.js";
export type {
  ComputeServiceOptions,
  BootOptions,
  RescueServiceOptions,
  RescueResult,
  MigrationDestination,
  LiveMigrateOptions,
  InstanceSnapshotOptions,
} from "./compute-service.js";
