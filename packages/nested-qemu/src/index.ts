export { ensureImage, layersToBuild, planLayers, IMAGE_REPOSITORY } from "./image.js";
export type { EnsureImageOptions, ImageProgress, LayerName, NestedQemuImage } from "./image.js";
export {
  dockerHost,
  dockerClient,
  engineAnswers,
  configureTestcontainers,
  PRIVATE_ENGINE_SOCKET,
} from "./docker-engine.js";
export {
  GUEST_KERNEL_PATH,
  GUEST_INITRD_PATH,
  GUEST_CMDLINE,
  GUEST_MARKERS,
  GUEST_BOOT_COUNTER,
  GUEST_POWER_LOG,
  GUEST_ACPI_IGNORE_FLAG,
} from "./guest-layer.js";
export { parseGuestPowerLog } from "./guest-power-log.js";
export type { GuestPowerLog } from "./guest-power-log.js";
export { LIBVIRTD_TCP_PORT } from "./host-layer.js";
export { RUN_LABEL, OWNER_PID_LABEL, OWNER_HOST_LABEL, SESSION_LABEL, SESSION_ENV } from "./labels.js";
export { NestedQemuTimeoutError } from "./abortable.js";
export { startNestedHosts } from "./nested-hosts.js";
export type { NestedHost, NestedHosts, StartNestedHostsOptions, ExecOutput } from "./nested-hosts.js";
export { sweepNestedQemu } from "./sweep.js";
export type { SweepOptions, SweepResult } from "./sweep.js";
export type { WaitOptions } from "./abortable.js";
export { waitForAgent, bareQemuBoot, agentCommand, readGuestFile } from "./guest-checks.js";
export type { AgentAnswer, BareBoot } from "./guest-checks.js";
