/**
 * THE scenario table: every runner (vitest, direct, CLI, matrix) reads this one list. New groups
 * (volumes, interfaces, consoles) add rows here and a `checks/<area>.ts`; the runner is unchanged.
 */
import * as pw from "./checks/admin-password.js";
import * as lc from "./checks/lifecycle.js";
import * as mig from "./checks/migration.js";
import * as snap from "./checks/snapshot.js";
import { depthScenarios } from "./checks/depth-scenarios.js";
import { mutationGapScenarios } from "./checks/mutation-gap-scenarios.js";
import { checkSnapshotInheritsImageProperties } from "./checks/snapshot-inheritance.js";
import { stateMatrixScenarios } from "./checks/state-matrix.js";
import { EXPLORE_SCENARIO } from "./explore/explore-scenario.js";
import type { ScenarioDefinition } from "./scenario.js";
import { userPattern } from "./user-pattern.js";

/** Scenario groups, in report order. */
export const SCENARIO_GROUPS = [
  "lifecycle",
  "input",
  "snapshot",
  "migration",
  "admin-password",
  "state",
  "effects",
  "events",
  "deadlines",
  "service",
  "explore",
] as const;

const lifecycle: ScenarioDefinition[] = [
  {
    id: "lifecycle.spawn",
    // The spawn, then a hard reboot and a power on (the deadline and signal checks of waiting calls).
    guestStarts: 3,
    title: "spawn reaches RUNNING and every view agrees",
    group: "lifecycle",
    capability: null,
    level: "MUST",
    run: lc.checkSpawn,
  },
  {
    id: "lifecycle.concurrent-instances",
    guestStarts: 13,
    title: "calls about different instances at once (spawns, then pause, power off, reboot, destroy; then passwords, image and instance snapshots, suspends and resumes, rescues with their passwords) each end as if alone; a listing handed out does not change",
    group: "lifecycle",
    capability: null,
    level: "MUST",
    run: lc.checkConcurrentInstances,
  },
  {
    id: "lifecycle.not-found",
    title: "operations on an unknown instance reject with InstanceNotFoundError",
    group: "lifecycle",
    capability: null,
    level: "MUST",
    run: lc.checkNotFound,
  },
  {
    id: "lifecycle.reboot-hard",
    title: "hard reboot",
    group: "lifecycle",
    capability: null,
    level: "MUST",
    run: lc.checkRebootHard,
  },
  {
    id: "lifecycle.reboot-soft",
    title: "soft reboot",
    group: "lifecycle",
    capability: "softReboot",
    level: "SHOULD",
    run: lc.checkRebootSoft,
  },
  {
    id: "lifecycle.power-off-on",
    title: "clean power off and on; stopped instances refuse pause/suspend/resume",
    group: "lifecycle",
    capability: null,
    level: "MUST",
    run: lc.checkPowerOffOn,
  },
  {
    id: "lifecycle.power-off-hard",
    title: "power off with a zero clean timeout is immediate and repeatable",
    group: "lifecycle",
    capability: null,
    level: "MUST",
    run: lc.checkPowerOffHard,
  },
  {
    id: "lifecycle.power-off-fallback",
    title: "power off falls back to hard after the clean timeout",
    group: "lifecycle",
    capability: null,
    level: "MUST",
    // A 0.3 s clean timeout run out.
    waitsMs: 300,
    run: lc.checkPowerOffFallback,
  },
  {
    id: "lifecycle.pause-unpause",
    title: "pause and unpause; illegal pause/unpause refused",
    group: "lifecycle",
    capability: "pause",
    level: "MUST",
    run: lc.checkPauseUnpause,
    refuse: lc.refusePause,
  },
  {
    id: "lifecycle.suspend-resume",
    title: "suspend and resume; resume of a running instance refused",
    group: "lifecycle",
    capability: "suspend",
    level: "MUST",
    run: lc.checkSuspendResume,
    refuse: lc.refuseSuspend,
  },
  {
    id: "lifecycle.rescue-unrescue",
    guestStarts: 3,
    title: "rescue and unrescue",
    group: "lifecycle",
    capability: "rescue",
    level: "MUST",
    run: lc.checkRescue,
    refuse: lc.refuseRescue,
  },
  {
    id: "lifecycle.destroy",
    title: "destroy is idempotent, also for stopped and unknown instances",
    group: "lifecycle",
    capability: null,
    level: "MUST",
    run: lc.checkDestroy,
  },
  {
    id: "lifecycle.console-output",
    title: "console output",
    group: "lifecycle",
    capability: "consoleOutput",
    level: "SHOULD",
    run: lc.checkConsoleOutput,
    refuse: lc.refuseConsoleOutput,
  },
  {
    id: "lifecycle.events",
    title: "lifecycle events for every transition, none after unregistering",
    group: "lifecycle",
    capability: "lifecycleEvents",
    level: "MUST",
    run: lc.checkEvents,
  },
  {
    id: "lifecycle.deadlines",
    title: "cancellation and deadlines are honoured and change nothing",
    group: "lifecycle",
    capability: null,
    level: "MUST",
    run: lc.checkDeadlines,
  },
];

const snapshot: ScenarioDefinition[] = [
  {
    id: "snapshot.image-running",
    title: "image snapshot of a running instance: Nova's metadata, state kept; said live, the guest never stopped, paused or rebooted for it",
    group: "snapshot",
    capability: "imageSnapshot",
    level: "MUST",
    run: snap.checkImageSnapshotRunning,
    refuse: snap.refuseImageSnapshot,
  },
  {
    id: "snapshot.image-stopped",
    title: "image snapshot of a stopped instance: Nova's metadata, state kept",
    group: "snapshot",
    capability: "imageSnapshot",
    level: "MUST",
    run: snap.checkImageSnapshotStopped,
    refuse: snap.refuseImageSnapshot,
  },
  {
    id: "snapshot.image-inherits-properties",
    title: "image snapshot inherits the base image's properties, min disk and RAM, minus the non-inheritable ones",
    group: "snapshot",
    capability: "imageSnapshot",
    level: "MUST",
    run: checkSnapshotInheritsImageProperties,
    refuse: snap.refuseImageSnapshot,
  },
  {
    id: "snapshot.image-callback-stall",
    title: "image snapshot: the call's deadline holds while the caller's task-state callback has not returned; a callback that rejects or throws ends the snapshot with its error, the image not active",
    group: "snapshot",
    capability: "imageSnapshot",
    level: "MUST",
    // The 0.3 s deadline and 0.2 s after it; then 0.2 s, 0.6 s with late updates held and 0.1 s
    // after each of the callback's two failures.
    waitsMs: 2300,
    run: snap.checkImageSnapshotCallbackStalls,
  },
  {
    id: "snapshot.image-upload-aborted",
    title: "image snapshot aborted while the image service holds its calls: typed, nothing left waiting, no image uploaded later",
    group: "snapshot",
    capability: "imageSnapshot",
    level: "MUST",
    needs: snap.needsImageControls,
    // Twice: 0.1 s for a call left waiting to show, 0.2 s for a late upload.
    waitsMs: 600,
    run: snap.checkImageUploadAborted,
  },
  {
    id: "snapshot.instance-snapshots",
    title: "instance snapshots: create, list, revert restores state and data, delete",
    group: "snapshot",
    capability: "instanceSnapshots",
    level: "MUST",
    run: snap.checkInstanceSnapshots,
    refuse: snap.refuseInstanceSnapshots,
  },
  {
    id: "snapshot.per-instance",
    title: "snapshots belong to their instance: another's id is not found, each lists its own; 255-character names, ids of at most 255",
    group: "snapshot",
    capability: "instanceSnapshots",
    level: "MUST",
    guestStarts: 2,
    run: snap.checkSnapshotsPerInstance,
    refuse: snap.refuseInstanceSnapshots,
  },
  {
    id: "snapshot.power-and-respawn",
    title: "a snapshot captured PAUSED reverts to PAUSED; an instance spawned again under a destroyed one's uuid has no snapshots",
    group: "snapshot",
    capability: "instanceSnapshots",
    level: "MUST",
    guestStarts: 2,
    run: snap.checkSnapshotPowerAndRespawn,
    refuse: snap.refuseInstanceSnapshots,
  },
];

const migration: ScenarioDefinition[] = [
  ...mig.MIGRATION_CASES.map((c): ScenarioDefinition => ({
    id: `migration.plan.${c.name}`,
    title: `migration plan: ${c.title}`,
    group: "migration",
    capability: "liveMigration",
    alsoNeeds: c.needs,
    level: "MUST",
    run: mig.checkPlan(c),
    refuse: mig.refusePlan(c),
  })),
  {
    id: "migration.pre-checks",
    title: "pre-checks refuse what the destination cannot take",
    group: "migration",
    capability: "liveMigration",
    level: "MUST",
    run: mig.checkPreChecks,
    refuse: mig.refusePreChecks,
    needs: mig.needsTwoHosts,
  },
  {
    id: "migration.live",
    title: "real live migration: running on the destination (its guest answers with the data written before), gone from the source, events (the destination's own for a later pause and unpause)",
    group: "migration",
    capability: "liveMigration",
    level: "MUST",
    run: mig.checkLiveMigration,
    refuse: mig.refuseLiveMigration,
    needs: mig.needsTwoHosts,
  },
  {
    id: "migration.rollback",
    title: "rollback leaves the instance running on the source",
    group: "migration",
    capability: "liveMigration",
    level: "MUST",
    run: mig.checkRollback,
    needs: mig.needsTwoHosts,
  },
  {
    id: "migration.abort",
    title: "an aborted migration fails typed and leaves the instance on the source",
    group: "migration",
    capability: "liveMigration",
    level: "SHOULD",
    run: mig.checkAbort,
    refuse: mig.refuseAbort,
    needs: mig.needsTwoHosts,
  },
  {
    id: "migration.progress",
    title: "onProgress reports sane numbers (bytes >= 0, remaining within the total, elapsed never back) and nothing after the call settled",
    group: "migration",
    capability: "liveMigration",
    level: "SHOULD",
    // The slowed move's 0.6 s and 0.3 s more, watched for a late report.
    waitsMs: 900,
    run: mig.checkMigrationProgress,
    needs: mig.needsTwoHosts,
  },
  {
    id: "migration.caller-cancels",
    title: "liveMigration aborted by its caller or past its deadline rejects typed at once; the instance stays on the source",
    group: "migration",
    capability: "liveMigration",
    level: "MUST",
    // The slowed move's 0.7 s and 0.4 s more, watched to see that it did not go on.
    waitsMs: 1_100,
    run: mig.checkCallerCancels,
    needs: mig.needsTwoHosts,
  },
];

const adminPassword: ScenarioDefinition[] = [
  {
    id: "admin-password.set",
    title: "the password takes effect in the guest (driver and service)",
    group: "admin-password",
    capability: "setAdminPassword",
    level: "MUST",
    run: pw.checkSetPassword,
    refuse: pw.refuseSetPassword,
  },
  {
    id: "admin-password.characters",
    title: "a password with ':', spaces, quotes, a backslash, '$' and 'é' takes effect whole",
    group: "admin-password",
    capability: "setAdminPassword",
    level: "MUST",
    run: pw.checkPasswordCharacters,
    refuse: pw.refuseSetPassword,
  },
  {
    id: "admin-password.generated",
    title: "no password given: one is generated, set and returned",
    group: "admin-password",
    capability: "setAdminPassword",
    level: "MUST",
    run: pw.checkGeneratedPassword,
  },
  {
    id: "admin-password.not-running",
    title: "a stopped instance: password-set-failed, task state cleared",
    group: "admin-password",
    capability: "setAdminPassword",
    level: "MUST",
    run: pw.checkPasswordNotRunning,
  },
  {
    id: "admin-password.no-agent",
    title: "no guest agent: not-supported or agent-not-enabled",
    group: "admin-password",
    capability: "setAdminPassword",
    level: "MUST",
    run: pw.checkPasswordNoAgent,
  },
  {
    id: "admin-password.agent-unresponsive",
    title: "a hanging agent: the typed error within the timeout",
    group: "admin-password",
    capability: "setAdminPassword",
    level: "MUST",
    run: pw.checkPasswordAgentUnresponsive,
  },
  {
    id: "admin-password.agent-hang-isolated",
    guestStarts: 2,
    title: "one guest's hanging agent holds no other instance's password change",
    group: "admin-password",
    capability: "setAdminPassword",
    level: "MUST",
    run: pw.checkAgentHangIsolated,
  },
  {
    id: "admin-password.no-leak",
    title: "the password appears in no error, log line or report",
    group: "admin-password",
    capability: "setAdminPassword",
    level: "MUST",
    run: pw.checkPasswordNoLeak,
  },
];

/** Every state x every operation, one scenario per cell of the kit's expected table (`state.<state>.<operation>`). */
const state: ScenarioDefinition[] = stateMatrixScenarios();

/** Every scenario, in report order. Ids are stable across releases. */
export const SCENARIOS: readonly ScenarioDefinition[] = Object.freeze([
  ...lifecycle,
  ...snapshot,
  ...migration,
  ...adminPassword,
  ...state,
  // Issue 8's deeper checks (effects, events, deadlines, migration both ways, accounts, service path).
  ...depthScenarios(),
  // The gaps the mutation run of the fake found (MUTATION.md): bad input, what the guest saw, CPU time, rescue.
  ...mutationGapScenarios(),
  // Model-based: a fixed-seed exploration of random sequences against the kit's reference model.
  EXPLORE_SCENARIO,
]);

/** Filters by `--focus` / `--skip` patterns (regular expressions over id and title). */
export function selectScenarios(
  scenarios: readonly ScenarioDefinition[],
  filter: { readonly focus?: readonly string[]; readonly skip?: readonly string[] } = {},
): ScenarioDefinition[] {
  const compile = (ps: readonly string[] | undefined) => (ps ?? []).map(userPattern);
  const focus = compile(filter.focus);
  const skip = compile(filter.skip);
  const matches = (s: ScenarioDefinition, rs: RegExp[]) => rs.some((r) => r.test(s.id) || r.test(s.title));
  return scenarios.filter((s) => (focus.length === 0 || matches(s, focus)) && !matches(s, skip));
}
