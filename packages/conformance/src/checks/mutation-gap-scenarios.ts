/**
 * The rows that close the gaps the mutation run of the fake found (packages/conformance/MUTATION.md):
 * bad input, what the guest saw of reboots and power offs, CPU time, rescue seen from the guest,
 * the first-boot password, destroy during a migration and destroy keeping disks. Each declares what it needs; an
 * environment without a control skips with the reason, never passes.
 */
import type { ScenarioDefinition } from "../scenario.js";
import { checkCleanupHostReleases } from "./cleanup-host.js";
import { checkCpuTime, checkCpuTimeGrows } from "./cpu-time.js";
import { checkDestroyKeepsDisks } from "./destroy-disks.js";
import { checkFirstBootPassword, checkSpawnPasswordWithoutAgent } from "./first-boot-password.js";
import * as gs from "./guest-shutdown.js";
import { checkBadArguments, checkOptionsOmitted, checkUnboundedDeadlines } from "./input.js";
import { needsTwoHosts } from "./migration.js";
import { checkDestroyDuringMigration } from "./migration-destroy.js";
import { checkRescuedSnapshot, checkRescuePassword, checkRescueSurvivesReboot, checkUnrescueAfterCrash } from "./rescue-depth.js";

/** Every gap-closing scenario, in report order. */
export function mutationGapScenarios(): ScenarioDefinition[] {
  return [
    {
      id: "input.bad-arguments",
      title: "every malformed call rejects with InvalidInputError itself, naming the argument, and changes nothing",
      group: "input",
      capability: null,
      level: "MUST",
      run: checkBadArguments,
    },
    {
      id: "input.deadline-unbounded",
      // Two instances, each booted by its spawn, its hard reboot and its power on.
      guestStarts: 6,
      title: "timeoutMs Infinity is no deadline and 30 days (past what a Node timer holds) a long one: spawn, inspection, reboot, power off and on, destroy all succeed",
      group: "input",
      capability: null,
      level: "MUST",
      run: checkUnboundedDeadlines,
    },
    {
      id: "input.options-omitted",
      guestStarts: 7,
      title: "every options argument may be left out",
      group: "input",
      capability: null,
      level: "MUST",
      run: checkOptionsOmitted,
    },
    {
      id: "lifecycle.reboot-soft-is-clean",
      guestStarts: 4,
      title: "a soft reboot of a guest honouring ACPI is clean, a hard one asks nothing, an ignored request falls back to hard (as the guest saw it); undeclared: HARD still works, SOFT is refused typed or done hard",
      group: "lifecycle",
      capability: "softReboot",
      level: "MUST",
      run: gs.checkSoftRebootIsClean,
      refuse: gs.refuseSoftRebootUndeclared,
    },
    {
      id: "lifecycle.power-off-seen-by-guest",
      guestStarts: 5,
      title: "power off: timeout 0 is hard and asks nothing, a stopped or saved guest is not asked, a clean timeout is clean (as the guest saw it), and nothing of a returned power off stops the instance powered on after it",
      group: "lifecycle",
      capability: null,
      level: "MUST",
      // 1.5 s watched after a power off with a 1 s clean timeout.
      waitsMs: 1_500,
      run: gs.checkPowerOffSeenByGuest,
    },
    {
      id: "lifecycle.power-off-retries",
      title: "power off asks a guest ignoring ACPI again every retryIntervalSec within the clean timeout",
      group: "lifecycle",
      capability: null,
      level: "SHOULD",
      // A 0.5 s clean timeout run out.
      waitsMs: 500,
      run: gs.checkPowerOffRetries,
    },
    {
      id: "lifecycle.power-off-wait-bounded",
      title: "the clean-shutdown wait is bounded: unknown instance refused, no retry interval still ends, the call's deadline cuts it short, a retry interval not dividing the timeout adds no whole interval",
      group: "lifecycle",
      capability: null,
      level: "MUST",
      // A 0.9 s clean timeout run out, on top of shorter ones.
      waitsMs: 1_000,
      run: gs.checkPowerOffWaitBounded,
    },
    {
      id: "lifecycle.power-off-wait-ends-on-crash",
      title: "a guest ignoring ACPI that crashes during a clean power off ends the wait at a next poll (within 6 s): SHUTDOWN, not after the clean timeout",
      group: "lifecycle",
      capability: null,
      level: "MUST",
      // The crash 0.3 s in, then the driver's next poll.
      waitsMs: 800,
      run: gs.checkPowerOffWaitEndsOnCrash,
    },
    {
      id: "lifecycle.cpu-time",
      title: "cpuTimeNs never runs backwards, stays within what the vCPUs could burn, stands still while stopped and paused",
      group: "lifecycle",
      capability: null,
      level: "MUST",
      run: checkCpuTime,
    },
    {
      id: "lifecycle.cpu-time-grows",
      title: "cpuTimeNs grows while the instance runs (after spawn, unpause and power on)",
      group: "lifecycle",
      capability: null,
      level: "SHOULD",
      run: checkCpuTimeGrows,
    },
    {
      id: "lifecycle.destroy-keeps-disks",
      guestStarts: 3,
      title:
        "destroy with destroyDisks: false leaves the disks on storage, a later spawn boots them as they were, a later destroy removes them; the default removes them at once",
      group: "lifecycle",
      capability: null,
      level: "MUST",
      run: checkDestroyKeepsDisks,
    },
    {
      id: "lifecycle.cleanup-host-releases",
      title: "after cleanupHost a driver's listeners hear nothing more and every call is refused typed, acting on nothing (a spawn creates no instance)",
      group: "lifecycle",
      capability: null,
      level: "MUST",
      run: checkCleanupHostReleases,
    },
    {
      id: "lifecycle.rescue-password",
      guestStarts: 3,
      title: "rescue's rescuePassword opens root of the rescue system and no account of the instance's own",
      group: "lifecycle",
      capability: "rescue",
      level: "MUST",
      run: checkRescuePassword,
    },
    {
      id: "lifecycle.rescue-survives-reboot",
      guestStarts: 6,
      title: "a rebooted or power-cycled rescued instance still runs the rescue system while in rescue mode (or the call is refused typed)",
      group: "lifecycle",
      capability: "rescue",
      level: "MUST",
      run: checkRescueSurvivesReboot,
    },
    {
      id: "lifecycle.rescued-snapshot",
      guestStarts: 2,
      title: "an image snapshot of a rescued instance holds the instance's own disk, not the rescue system's (or is refused typed)",
      group: "lifecycle",
      capability: "rescue",
      alsoNeeds: ["imageSnapshot"],
      level: "MUST",
      run: checkRescuedSnapshot,
    },
    {
      id: "lifecycle.unrescue-after-crash",
      guestStarts: 3,
      title: "a rescued instance whose rescue system crashed unrescues to its own system, RUNNING, and leaves rescue mode",
      group: "lifecycle",
      capability: "rescue",
      level: "MUST",
      run: checkUnrescueAfterCrash,
    },
    {
      id: "admin-password.first-boot",
      title: "spawn's adminPassword: os_type inherited from the image picks the account; two spawns of one uuid at once leave one instance",
      group: "admin-password",
      capability: null,
      level: "SHOULD",
      run: checkFirstBootPassword,
    },
    {
      id: "admin-password.spawn-without-agent",
      title: "spawn's adminPassword for an image without a guest agent: set (it opens root) or refused typed before anything is made, never dropped",
      group: "admin-password",
      capability: null,
      level: "MUST",
      run: checkSpawnPasswordWithoutAgent,
    },
    {
      id: "migration.destroy-during",
      title: "destroy on the source mid-migration stops the migration at once, typed; the instance is on neither host after rollback",
      group: "migration",
      capability: "liveMigration",
      level: "MUST",
      needs: needsTwoHosts,
      run: checkDestroyDuringMigration,
    },
  ];
}
