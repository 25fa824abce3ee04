export { LibvirtDriver, virtTypeFromUri, withRescueDisk } from "./libvirt-driver.js";
export type { LibvirtDriverOptions, DriverLogger } from "./libvirt-driver.js";
export { plugin, libvirtOptionsSchema, PLUGIN_VERSION } from "./plugin.js";
export type { LibvirtPluginOptions } from "./plugin.js";
export { libvirtCapabilities } from "./capabilities.js";
export {
  createLibvirtConformanceEnvironment,
  libvirtEnvironmentLimits,
  libvirtEnvironmentNotes,
} from "./conformance-environment.js";
export type { LibvirtConformanceOptions } from "./conformance-environment.js";
export type { CapabilityFacts } from "./capabilities.js";
export {
  buildDomainXml,
  readDomainXml,
  buildSnapshotXml,
  readSnapshotXml,
  buildVolumeXml,
  domainName,
  guestCpuConfig,
  parseDiskCacheModes,
  retargetDomainXml,
  DEFAULT_SYSINFO,
  DISK_CACHE_MODES,
  GUEST_AGENT_CHANNEL,
  VIRTKIT_XMLNS,
} from "./domain-xml.js";
export type {
  DomainSpec,
  DiskSpec,
  DomainXmlFacts,
  SnapshotXmlFacts,
  CpuMode,
  GuestCpu,
  DiskCacheMode,
  GuestSysinfo,
  DomainRetarget,
} from "./domain-xml.js";
export {
  planMigration,
  migrateFlagNames,
  effectiveMigrationFlags,
  VIR_MIGRATE,
  LIBVIRT_PLAN_SCHEME,
} from "./migration-flags.js";
export type { MigrateFlagName } from "./migration-flags.js";
export { liveMigrationUri, migrateUri, escapeIpv6 } from "./migration-uri.js";
export type { LiveMigrationUriOptions } from "./migration-uri.js";
export { toPowerState, LIBVIRT_POWER_STATE } from "./power-state-map.js";
export { mapLibvirtError, redact } from "./error-map.js";
export type { ErrorContext } from "./error-map.js";
export { toLifecycleTransition } from "./lifecycle-events.js";
export { openRpcConnection, LIBVIRT_CONNECTOR } from "./libvirt-connection.js";
export type { LibvirtApi, LibvirtConnector, ByteStream } from "./libvirt-connection.js";
export { escapeXml, parseXml, XmlParseError } from "./xml.js";
export type { XmlElement } from "./xml.js";
