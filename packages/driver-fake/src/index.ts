/**
 * @virtkit/driver-fake: a ComputeDriver simulating hypervisor hosts in memory, with the cloud and
 * guest accessors tests use to verify effects and inject faults.
 */
export { FakeDriver } from "./fake-driver.js";
export type { FakeDriverOptions } from "./fake-driver.js";
export { FakeCloud } from "./fake-cloud.js";
export type { FakeCloudOptions } from "./fake-cloud.js";
export { FakeHost } from "./fake-host.js";
export type { FakeHostOptions, Reservation } from "./fake-host.js";
export { FakeGuest } from "./fake-guest.js";
export type { FakeAgentMode, FakeShutdownKind, FakeGuestInit } from "./fake-guest.js";
export { serializeDisk, parseDisk, diskBytes } from "./fake-disk.js";
export type { DiskFiles } from "./fake-disk.js";
export { FaultInjector, FAKE_OPERATIONS } from "./faults.js";
export type { FakeOperation, FaultTarget, FaultError, ArmedFault } from "./faults.js";
export { systemClock, ManualClock } from "./clock.js";
export type { Clock } from "./clock.js";
export { TRANSITIONS, INSTANCE_STATES, nextState } from "./transitions.js";
export type { PowerOperation, InstanceStateName } from "./transitions.js";
export {
  VIR_MIGRATE,
  LIBVIRT_PLAN_SCHEME,
  planLibvirtMigration,
  virMigrateFlagNames,
  liveMigrationUri,
} from "./libvirt-migration-flags.js";
export type { VirMigrateFlag } from "./libvirt-migration-flags.js";
export type { FakeLogger, FakeLogFields } from "./logger.js";
export { plugin, fakeOptionsSchema } from "./plugin.js";
export { FAKE_TOKENS } from "./plugin-tokens.js";
export type { FakePluginOptions } from "./plugin.js";
export { plugin as default } from "./plugin.js";
