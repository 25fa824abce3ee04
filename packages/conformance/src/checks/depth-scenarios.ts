/**
 * The rows of issue 8's deeper checks, for the scenario table: effects, events, deadlines for every
 * operation, migration both ways, the admin account, and the compute service path. Each declares
 * what it needs; an environment without a control skips with the reason, never passes.
 */
import type { ConformanceEnvironment } from "@virtkit/core";
import type { ScenarioDefinition } from "../scenario.js";
import * as pw from "./admin-password-depth.js";
import { DEADLINE_OPERATIONS, checkDeadlinesEveryOperation, checkInspectionDeadlines } from "./deadlines.js";
import * as fx from "./effects.js";
import * as ev from "./events-depth.js";
import { needsTwoHosts } from "./migration.js";
import * as mig from "./migration-depth.js";
import * as svc from "./service-path.js";

type Row = Omit<ScenarioDefinition, "level" | "group"> & Partial<Pick<ScenarioDefinition, "level">>;

const row =
  (group: string) =>
  (r: Row): ScenarioDefinition => ({ level: "MUST", group, ...r });

const twoHostsWithStorageFacts = (env: ConformanceEnvironment): string | undefined =>
  needsTwoHosts(env) ??
  (env.sharesStorage ? undefined : "the environment does not say which of its hosts share storage (no sharesStorage)");

const effects = row("effects");
const events = row("events");
const migration = row("migration");
const password = row("admin-password");
const service = row("service");

/** Every deeper scenario, in report order. */
export function depthScenarios(): ScenarioDefinition[] {
  return [
    effects({
      id: "effects.image-snapshot-data",
      title: "an image snapshot uploads what the disk held at that moment (read back from the image)",
      capability: "imageSnapshot",
      run: fx.checkImageSnapshotData,
    }),
    effects({
      id: "effects.revert-chosen-snapshot",
      guestStarts: 6,
      title: "with several instance snapshots, revert restores the one asked for (state and data); oldest first",
      capability: "instanceSnapshots",
      run: fx.checkRevertChosenSnapshot,
    }),
    effects({
      id: "effects.suspend-resume-keeps-guest",
      title: "suspend and resume keep the guest's data and do not boot it again",
      capability: "suspend",
      run: fx.checkSuspendResumeKeepsGuest,
    }),
    effects({
      id: "effects.pause-unpause-keeps-guest",
      title: "pause and unpause keep the guest's data and do not boot it again",
      capability: "pause",
      run: fx.checkPauseUnpauseKeepsGuest,
    }),
    effects({
      id: "effects.reboot-hard-boots",
      title: "a hard reboot boots the guest exactly once and keeps its disk",
      capability: null,
      run: fx.checkRebootHardBoots,
    }),
    effects({
      id: "effects.reboot-soft-boots",
      title: "a soft reboot boots the guest exactly once and keeps its disk",
      capability: "softReboot",
      level: "SHOULD",
      run: fx.checkRebootSoftBoots,
    }),
    effects({
      id: "effects.reboot-soft-acpi-fallback",
      title: "a soft reboot of a guest ignoring ACPI falls back to hard: the guest still reboots",
      capability: "softReboot",
      run: fx.checkRebootSoftFallback,
    }),
    effects({
      id: "effects.power-cycle-boots",
      guestStarts: 3,
      title: "power off boots nothing, power on boots once, power on of a running guest boots nothing",
      capability: null,
      run: fx.checkPowerCycleBoots,
    }),
    effects({
      id: "effects.spawn-flavor-units",
      title: "getInfo follows the flavor in the contract's units (KiB, vcpus), running and stopped",
      capability: null,
      run: fx.checkSpawnFlavorUnits,
    }),
    effects({
      id: "effects.host-facts-units",
      title: "getHostInfo in the contract's units (MiB, vcpus, major.minor.micro), against the environment's host",
      capability: null,
      run: fx.checkHostFactsUnits,
    }),
    events({
      id: "events.listeners-independent",
      title: "several listeners each get every event once; a throwing or removed one (even during dispatch) harms no other; timestamps are when the transition was seen",
      capability: "lifecycleEvents",
      // The power off starts 1.2 s after the driver was made (so a timestamp of another moment shows).
      waitsMs: 1_200,
      run: ev.checkListenersIndependent,
      refuse: ev.refuseListeners,
    }),
    events({
      id: "events.migration-source-not-stopped",
      title: "the source of a finished migration never announces STOPPED; events name their own host",
      capability: "lifecycleEvents",
      alsoNeeds: ["liveMigration"],
      needs: twoHostsWithStorageFacts,
      run: ev.checkMigrationRunningEvents,
    }),
    events({
      id: "events.migration-paused-source-not-stopped",
      title: "the source of a paused instance's migration never announces STOPPED",
      capability: "lifecycleEvents",
      alsoNeeds: ["liveMigration", "pause", "pausedMigration"],
      needs: twoHostsWithStorageFacts,
      run: ev.checkMigrationPausedEvents,
    }),
    events({
      id: "events.crash-announced",
      title: "a guest that crashes is announced once, as CRASHED, by its own host",
      capability: "lifecycleEvents",
      needs: ev.needsCrash,
      run: ev.checkCrashAnnounced,
    }),
    row("deadlines")({
      id: "deadlines.every-operation",
      title: `every operation (${DEADLINE_OPERATIONS.join(", ")}): an aborted signal, a passed deadline and an abort mid-way reject typed and change nothing, even later`,
      capability: null,
      // Seventeen instances prepared at once: a real hypervisor needs more than the default.
      timeoutMs: 30_000,
      // No waitsMs: its 4 ms deadlines want a warm process, not the run's first, busiest moments
      // (started first, it failed once in CI under the load of every package's tests).
      run: checkDeadlinesEveryOperation,
    }),
    row("deadlines")({
      id: "deadlines.inspection",
      title: "the calls that only look (host facts, listings, getInfo, existence, console, snapshots, the destination pre-check) reject an aborted signal and a passed deadline typed, a 1 s deadline as well as a 4 ms one",
      capability: null,
      // The long deadline's second on a hypervisor slowed to 3 s.
      waitsMs: 1_000,
      run: checkInspectionDeadlines,
    }),
    migration({
      id: "migration.storage-pre-checks",
      title: "pre-checks refuse the wrong storage mode (non-block without shared storage, block onto it) and accept the right one",
      capability: "liveMigration",
      needs: twoHostsWithStorageFacts,
      run: mig.checkStoragePreChecks,
    }),
    migration({
      id: "migration.source-not-running",
      title: "pre-checks refuse a stopped or suspended source; nothing moves",
      capability: "liveMigration",
      needs: twoHostsWithStorageFacts,
      run: mig.checkSourceNotRunning,
    }),
    migration({
      id: "migration.destination-full",
      exclusive: "it fills the destination host's memory, which would refuse every other scenario's spawn or migration there meanwhile",
      title: "pre-checks refuse a destination without free memory, and accept once it has room",
      capability: "liveMigration",
      needs: twoHostsWithStorageFacts,
      run: mig.checkDestinationFull,
    }),
    migration({
      id: "migration.paused-moves-paused",
      title: "a paused instance moves paused",
      capability: "pausedMigration",
      alsoNeeds: ["liveMigration", "pause"],
      needs: twoHostsWithStorageFacts,
      run: mig.checkPausedMovesPaused,
      refuse: mig.refusePausedMove,
      refuseNeeds: ["liveMigration", "pause"],
    }),
    migration({
      id: "migration.no-password-in-migrate-data",
      title: "no step's MigrateData carries the admin password set before the move (it crosses hosts over RPC, into logs)",
      capability: "liveMigration",
      alsoNeeds: ["setAdminPassword"],
      needs: twoHostsWithStorageFacts,
      run: mig.checkNoPasswordInMigrateData,
    }),
    migration({
      id: "migration.non-live",
      title: "a non-live policy moves the instance, running on the destination afterwards",
      capability: "liveMigration",
      needs: twoHostsWithStorageFacts,
      run: mig.checkNonLiveMove,
    }),
    migration({
      id: "migration.force-complete",
      title: "force complete finishes a slow migration early (an aborted one forces nothing); the instance runs on the destination",
      capability: "forceCompleteMigration",
      alsoNeeds: ["liveMigration"],
      needs: twoHostsWithStorageFacts,
      run: mig.checkForceComplete,
      refuse: mig.refuseForceComplete,
      refuseNeeds: ["liveMigration"],
    }),
    migration({
      id: "migration.abort-not-migrating",
      title: "abort (and force complete) with no migration running is refused with InvalidStateError and changes nothing, an unknown instance is not found, and a later move is not cut short",
      capability: "liveMigration",
      run: mig.checkAbortWithoutMigration,
    }),
    migration({
      id: "migration.steps-aborted",
      title: "every migration step with an already aborted signal rejects with OperationAbortedError and does nothing; the steps then work and the move completes",
      capability: "liveMigration",
      needs: twoHostsWithStorageFacts,
      guestStarts: 2,
      run: mig.checkMigrationStepsAborted,
    }),
    migration({
      id: "migration.steps-timed-out",
      title: "every migration step past its deadline on a slowed hypervisor rejects with OperationTimeoutError and does nothing, even later; the steps then work and the move completes",
      capability: "liveMigration",
      needs: twoHostsWithStorageFacts,
      guestStarts: 2,
      // Five waits for a late completion, and the slowed calls.
      waitsMs: 2_000,
      run: mig.checkMigrationStepsTimedOut,
    }),
    migration({
      id: "migration.block-keeps-data",
      title: "a block migration carries the guest's disk to the destination",
      capability: "liveMigration",
      alsoNeeds: ["blockMigration"],
      needs: twoHostsWithStorageFacts,
      run: mig.checkBlockKeepsData,
    }),
    migration({
      id: "migration.plan.combinations",
      title: "migration plan: every flag combination Nova builds, on kvm and xen, with and without post-copy",
      capability: "liveMigration",
      run: mig.checkPlanCombinations,
    }),
    migration({
      id: "migration.plan.fields",
      title: "migration plan: bandwidth (MiB/s), downtime (ms), non-live; invalid numbers refused",
      capability: "liveMigration",
      run: mig.checkPlanFields,
    }),
    password({
      id: "admin-password.os-admin-user",
      title: "the image's os_admin_user gets the password, no other account (undeclared: another account is refused typed, root still served)",
      capability: "adminPasswordAnyUser",
      alsoNeeds: ["setAdminPassword"],
      run: pw.checkOsAdminUser,
      refuse: pw.refuseOsAdminUser,
      refuseNeeds: ["setAdminPassword"],
    }),
    password({
      id: "admin-password.missing-account",
      title: "an image's os_admin_user the guest lacks: PasswordSetFailedError, nothing set, still running",
      capability: "adminPasswordAnyUser",
      alsoNeeds: ["setAdminPassword"],
      needs: pw.needsAccountRemoval,
      run: pw.checkMissingAccount,
    }),
    password({
      id: "admin-password.windows-administrator",
      title: "a Windows guest (also when only its image says windows): Administrator gets the password, not root",
      capability: "setAdminPassword",
      run: pw.checkWindowsAdministrator,
    }),
    password({
      id: "admin-password.root-default",
      title: "a Linux guest without os_admin_user: root gets the password, no other account",
      capability: "setAdminPassword",
      run: pw.checkRootByDefault,
    }),
    password({
      id: "admin-password.at-spawn",
      title: "spawn injects adminPassword at first boot, for the account of the request's image (where the driver can)",
      capability: null,
      level: "SHOULD",
      run: pw.checkSpawnAdminPassword,
    }),
    password({
      id: "admin-password.paused-suspended",
      title: "paused and suspended guests: typed refusal, nothing set, the service's task state cleared",
      capability: "setAdminPassword",
      run: pw.checkPasswordPausedSuspended,
    }),
    service({
      id: "service.lifecycle",
      guestStarts: 7,
      title: "through ComputeService: boot, reboots, stop/start, pause, suspend, rescue, delete keep its records right",
      capability: null,
      // A dozen state changes in a row: on a real hypervisor each takes a boot or a save.
      timeoutMs: 30_000,
      run: svc.checkServiceLifecycle,
    }),
    service({
      id: "service.image-snapshot",
      title: "through ComputeService: image snapshots (task states compare-and-set, image active, record idle)",
      capability: "imageSnapshot",
      run: svc.checkServiceImageSnapshot,
    }),
    service({
      id: "service.instance-snapshots",
      guestStarts: 3,
      title: "through ComputeService: instance snapshots create, list, revert (vm state follows), delete",
      capability: "instanceSnapshots",
      run: svc.checkServiceInstanceSnapshots,
    }),
    service({
      id: "service.live-migrate",
      title: "through ComputeService: a live migration moves the record to the destination",
      capability: "liveMigration",
      needs: twoHostsWithStorageFacts,
      run: svc.checkServiceLiveMigrate,
    }),
  ];
}
