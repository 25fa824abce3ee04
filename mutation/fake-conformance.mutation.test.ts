/**
 * The conformance suite against the fake driver, as ordinary vitest tests (one per scenario), for
 * StrykerJS: a mutant of the fake's behavioural code is killed when a scenario fails. The
 * environment is the fake plugin's own (what `virtkit conformance run --driver fake` uses); every
 * level counts (MAY), so a SHOULD scenario's failure kills a mutant too.
 */
import { computeServiceFactory } from "../packages/conformance/src/compute-service-adapter.js";
import { defineConformanceSuite } from "../packages/conformance/src/vitest/define-suite.js";
import { createFakeConformanceEnvironment } from "../packages/driver-fake/src/conformance-environment.js";

const skip = (process.env.VIRTKIT_MUTATION_SKIP ?? "").split(",").filter((p) => p.length > 0);

defineConformanceSuite({
  driver: { name: "fake" },
  environment: createFakeConformanceEnvironment(),
  service: computeServiceFactory(),
  level: "MAY",
  // A run may leave out scenarios (regular expressions, comma-separated), e.g. one that is flaky
  // under Stryker's instrumentation; `pnpm mutation` prints what was left out.
  skip,
});

// The same fake with softReboot and rescue switched off, for the scenarios those touch only (a
// whole second suite per mutant would double the run): a HARD reboot must not need softReboot, a
// SOFT one must be refused typed or done hard, never ask the guest (lifecycle.reboot-soft-is-clean's
// refusal half), and rescue/unrescue must be refused typed (a capability check keyed by a wrong name
// lets them through).
defineConformanceSuite({
  driver: { name: "fake (softReboot and rescue off)" },
  environment: createFakeConformanceEnvironment({ capabilities: { softReboot: false, rescue: false } }),
  service: computeServiceFactory(),
  level: "MAY",
  focus: [
    "^lifecycle\\.reboot",
    "^effects\\.reboot",
    "^state\\.[a-z]+\\.reboot-hard$",
    "^lifecycle\\.rescue-unrescue$",
    "^state\\.running\\.(rescue|unrescue)$",
  ],
  skip,
});

// The same fake with snapshots and passwords switched off, for the scenarios whose refusal half
// (an undeclared capability must be refused typed, changing nothing) reads the fake's capability
// checks for those operations: a check keyed by a wrong operation name lets the call through.
defineConformanceSuite({
  driver: { name: "fake (snapshots and passwords off)" },
  environment: createFakeConformanceEnvironment({
    capabilities: { imageSnapshot: false, instanceSnapshots: false, setAdminPassword: false, adminPasswordAnyUser: false },
  }),
  service: computeServiceFactory(),
  level: "MAY",
  focus: ["^snapshot\\.(image-running|instance-snapshots)$", "^admin-password\\.set$"],
  skip,
});

// Only adminPasswordAnyUser off (setAdminPassword still declared, as XenAPI's): an image naming
// another account must be refused typed, root and Administrator still set. With setAdminPassword
// off too (the suite above) that refusal half never runs.
defineConformanceSuite({
  driver: { name: "fake (adminPasswordAnyUser off)" },
  environment: createFakeConformanceEnvironment({ capabilities: { adminPasswordAnyUser: false } }),
  service: computeServiceFactory(),
  level: "MAY",
  focus: ["^admin-password\\.(os-admin-user|root-default|windows-administrator|at-spawn|set)$"],
  skip,
});

// The fake booting a raw image: its image snapshots must then be raw (Nova keeps the source's
// format), which the qcow2 boot image of the suites above cannot show.
defineConformanceSuite({
  driver: { name: "fake (raw boot image)" },
  environment: createFakeConformanceEnvironment({}, { bootDiskFormat: "raw" }),
  service: computeServiceFactory(),
  level: "MAY",
  focus: ["^snapshot\\.image-(running|stopped)$"],
  skip,
});

// A qemu (TCG) host: Nova sets admin passwords on kvm and qemu alike, so the fake declares
// setAdminPassword there too, and the password must then really be set (a virt-type check that
// knows only kvm refuses it), which the kvm hosts of the suites above cannot show.
defineConformanceSuite({
  driver: { name: "fake (qemu host)" },
  environment: createFakeConformanceEnvironment({ virtType: "qemu" }),
  service: computeServiceFactory(),
  level: "MAY",
  focus: ["^admin-password\\.set$"],
  skip,
});
