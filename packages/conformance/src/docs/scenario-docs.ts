/**
 * What each scenario checks, in words: the contract rule and the Nova behaviour behind it. Shipped
 * in the package (`virtkit conformance explain <id>` reads it; the steps come from tracing a real
 * run, see `explain.ts`). Keyed by scenario id; generated families (`migration.plan.*`, `state.*`)
 * by their prefix.
 */

/** The words of one scenario. */
export interface ScenarioDoc {
  /** The contract rule the scenario holds a driver to. */
  readonly rule: string;
  /** The Nova behaviour it mirrors (nova/virt/driver.py, the compute manager, the libvirt driver). */
  readonly nova: string;
}

const NOT_FOUND_NOVA =
  "Nova's drivers raise exception.InstanceNotFound for an unknown instance, and the compute manager relies on it (e.g. to clean up after a failed spawn).";

/** Per scenario id. */
export const SCENARIO_DOCS: Readonly<Record<string, ScenarioDoc>> = {
  "lifecycle.spawn": {
    rule: "spawn leaves the instance RUNNING, and every view agrees: getInfo, listInstances, listInstanceUuids and instanceExists; the host answers getHostInfo; an unknown instance is unknown in every view.",
    nova: "ComputeDriver.spawn must leave the guest running; the manager then reads power_state through get_info (nova/compute/manager.py _spawn).",
  },
  "lifecycle.not-found": {
    rule: "Every operation on an instance that never existed rejects with InstanceNotFoundError, never a generic error or a silent success: getInfo, power on and off, reboot, and each declared one of pause/unpause, suspend/resume, rescue/unrescue, the four instance-snapshot calls, getConsoleOutput, liveMigrationAbort and liveMigrationForceComplete; instanceExists says false.",
    nova: NOT_FOUND_NOVA,
  },
  "lifecycle.reboot-hard": {
    rule: "A hard reboot of a RUNNING instance leaves it RUNNING.",
    nova: "ComputeDriver.reboot(reboot_type='HARD'): the libvirt driver destroys and re-creates the domain; the instance ends running.",
  },
  "lifecycle.reboot-soft": {
    rule: "A soft reboot (drivers declaring softReboot) leaves the instance RUNNING; a driver may fall back to hard after its timeout.",
    nova: "The libvirt driver tries a clean shutdown and start (_soft_reboot) and falls back to a hard reboot when the guest does not comply.",
  },
  "lifecycle.power-off-on": {
    rule: "A clean power off reaches SHUTDOWN and power on RUNNING again; while stopped, pause, suspend, resume and unpause are refused with InvalidStateError and change nothing.",
    nova: "power_off(timeout, retry_interval) then power_on; the manager's @check_instance_state refuses such moves before the driver, the contract asks the driver to refuse them too.",
  },
  "lifecycle.power-off-hard": {
    rule: "power off with cleanShutdownTimeoutSec 0 is immediate, and powering off a stopped instance again is harmless.",
    nova: "power_off(instance, timeout=0) is Nova's hard stop (no ACPI request).",
  },
  "lifecycle.power-off-fallback": {
    rule: "When the guest ignores the ACPI request, power off waits the clean timeout, then stops the instance hard.",
    nova: "The libvirt driver's _clean_shutdown polls for the timeout, then power_off destroys the domain.",
  },
  "lifecycle.pause-unpause": {
    rule: "pause reaches PAUSED and unpause RUNNING; unpause of a running instance and pause of a stopped one are refused with InvalidStateError. Undeclared: pause is refused with UnsupportedOperationError.",
    nova: "ComputeDriver.pause/unpause (power_state PAUSED = 3). Nova's fake driver pauses nothing; this kit checks the state after each call.",
  },
  "lifecycle.suspend-resume": {
    rule: "suspend reaches SUSPENDED and resume RUNNING; resume of a running instance is refused. Undeclared: suspend is refused with UnsupportedOperationError.",
    nova: "ComputeDriver.suspend/resume (power_state SUSPENDED = 7; libvirt uses managed save).",
  },
  "lifecycle.rescue-unrescue": {
    rule: "rescue boots the rescue image and leaves the instance RUNNING (rescued); unrescue boots the original disk, RUNNING. Undeclared: refused with UnsupportedOperationError.",
    nova: "ComputeDriver.rescue/unrescue: the instance boots a rescue image with its own disk attached.",
  },
  "lifecycle.destroy": {
    rule: "destroy removes the instance from every view; destroying it again, destroying a stopped instance and one that never existed all succeed.",
    nova: "ComputeDriver.destroy is idempotent: the manager calls it on cleanup paths where the instance may already be gone.",
  },
  "lifecycle.console-output": {
    rule: "getConsoleOutput returns a string, not empty after a boot. Undeclared: refused with UnsupportedOperationError.",
    nova: "ComputeDriver.get_console_output (the libvirt driver reads the console log).",
  },
  "lifecycle.events": {
    rule: "Every transition emits one lifecycle event for the right instance and host; after the listener is unregistered, none arrive.",
    nova: "ComputeDriver.register_event_listener / emit_event: the manager syncs power states from these events (handle_lifecycle_event).",
  },
  "lifecycle.deadlines": {
    rule: "A call with an aborted signal rejects with OperationAbortedError and changes nothing; with a slow hypervisor, timeoutMs rejects with OperationTimeoutError in time.",
    nova: "Nova has no per-call deadline; this is the contract's own rule (every call that can hang takes a signal and a timeout).",
  },
  "snapshot.image-running": {
    rule: "An image snapshot of a running instance lands in the image service (read from the service, never the driver's word) with Nova's metadata, and the instance stays RUNNING. A driver that tells onSnapshotMethod tells it once, live or cold with a reason, before the upload begins.",
    nova: "ComputeDriver.snapshot(context, instance, image_id, update_task_state) uploads through the image API with the instance's metadata.",
  },
  "snapshot.image-stopped": {
    rule: "An image snapshot of a stopped instance works the same and leaves it SHUTDOWN; onSnapshotMethod, if told, never says live for it.",
    nova: "Snapshots of stopped instances are cold snapshots in the libvirt driver.",
  },
  "snapshot.image-inherits-properties": {
    rule: "The snapshot image inherits the base image's properties, min disk and min RAM, minus the non-inheritable ones.",
    nova: "nova/compute/utils.py get_image_metadata / initialize_instance_snapshot_metadata, with CONF.non_inheritable_image_properties.",
  },
  "snapshot.image-callback-stall": {
    rule: "An image snapshot's timeoutMs bounds the whole call, the caller's own task-state callback included: while the callback has not returned, the call still rejects with OperationTimeoutError by its deadline, and the instance is RUNNING as before once the callback returns. Then the callback rejects at image_uploading, and again throws synchronously at its first task state: each time the call rejects with the callback's error (or one caused by it), the callback is not called again, no update of the image reaches the image service until the instance is RUNNING again and 0.6 s more (held where the environment can hold the image service: one that came at all fails), and the image does not become active.",
    nova: "The libvirt driver calls update_task_state (a database write through conductor) from inside snapshot(); the contract's deadline replaces Nova's RPC timeouts around the whole call.",
  },
  "snapshot.image-upload-aborted": {
    rule: "An image snapshot aborted while the image service is still taking its calls (first every call on the image held, then only the upload) rejects with OperationAbortedError within 5 s; 0.1 s later none of its image-service calls is still waiting (the abort reached them), and once the image service goes on the image is as it was (queued, no data). The instance is RUNNING.",
    nova: "The libvirt driver streams the snapshot to Glance inside snapshot(); when the compute manager gives up, Glance must not end up with an active image of a snapshot reported failed (the manager deletes it). The contract asks the driver to pass its signal down instead.",
  },
  "snapshot.instance-snapshots": {
    rule: "Instance snapshots are created while running, listed, reverted (the captured power state and the guest's data come back) and deleted; one created without a description has no description field, or the hypervisor's own text, never one holding undefined. Undeclared: refused with UnsupportedOperationError.",
    nova: "No Nova driver API: the contract's own, after libvirt's internal snapshots (virDomainSnapshotCreateXML / revertToSnapshot).",
  },
  "migration.pre-checks": {
    rule: "The live-migration pre-checks refuse what the destination cannot take: the instance's own host, an instance bigger than the destination, tunnelled together with native TLS.",
    nova: "check_can_live_migrate_destination / check_can_live_migrate_source; newer Nova refuses tunnelled + native TLS.",
  },
  "migration.live": {
    rule: "A real live migration between two hosts: afterwards the instance runs on the destination and is gone from the source, with the events emitted. The MigrateData the pre-checks and preLiveMigration return must be plain JSON, and the next step gets it back from JSON (as another host would); cleanupLiveMigrationDestinationCheck, where the kit needs it, is called twice (it is idempotent).",
    nova: "pre_live_migration, live_migration, post_live_migration_at_destination (nova/compute/manager.py _do_live_migration); migrate_data crosses hosts as a versioned object over RPC.",
  },
  "migration.rollback": {
    rule: "After preLiveMigration, a rollback at the destination leaves the instance running on the source only.",
    nova: "rollback_live_migration_at_destination.",
  },
  "migration.abort": {
    rule: "A migration aborted mid-way fails with LiveMigrationFailedError and leaves the instance running on the source.",
    nova: "live_migration_abort (libvirt: virDomainAbortJob).",
  },
  "migration.progress": {
    rule: "onProgress is optional for a driver to call; when it does, while the move (slowed to 0.6 s) runs: every byte count finite and >= 0, the remaining at most the total when a total is known (the processed may pass it: QEMU sends dirtied pages again), elapsedMs never going back, and no report after liveMigration settled (watched 0.3 s more).",
    nova: "The libvirt driver's _live_migration_monitor reads the job's data_total/data_processed/data_remaining and updates the migration's progress; nothing is reported once the job has ended.",
  },
  "admin-password.set": {
    rule: "A password set through the driver and through the compute service takes effect in the guest, as the environment verifies by its own means (a guest login), never by asking the driver.",
    nova: "ComputeDriver.set_admin_password; the manager's set_admin_password sets task_state UPDATING_PASSWORD and clears it (seed 000).",
  },
  "admin-password.generated": {
    rule: "Without a password, the service generates one, sets it and returns it (as a Secret).",
    nova: "The compute manager generates a password when none is given (utils.generate_password).",
  },
  "admin-password.not-running": {
    rule: "On a stopped instance, setting a password fails typed (password-set-failed or not-running, also when its guest agent hung before it stopped: not the agent's error) and the task state is cleared.",
    nova: "The manager refuses unless the instance is RUNNING (InstancePasswordSetFailed) and clears task_state on every path.",
  },
  "admin-password.no-agent": {
    rule: "Without a guest agent, setting a password fails with the not-supported or agent-not-enabled error.",
    nova: "The libvirt driver raises SetAdminPasswdNotSupported / QemuGuestAgentNotEnabled.",
  },
  "admin-password.agent-unresponsive": {
    rule: "With an agent that hangs, and with no agent running in the guest, the typed error (GuestAgentUnresponsiveError or OperationTimeoutError) comes within the timeout and the guest keeps running.",
    nova: "libvirt's agent call times out (VIR_ERR_AGENT_UNRESPONSIVE) and Nova reports the failure without stopping the guest.",
  },
  "admin-password.no-leak": {
    rule: "On every failing path the password appears in no error, log line or report.",
    nova: "The manager never puts the password in an error (seed 000); here every password is tracked and searched for.",
  },
  "input.bad-arguments": {
    rule: "A malformed call (spawn without a request object, a non-image imageMeta, a plain-text adminPassword or rescuePassword, a reboot type other than SOFT/HARD, a negative or NaN clean timeout or retry interval, an empty image id, snapshot name or snapshot id, a non-string description, a plain-text or empty admin password) rejects with InvalidInputError itself, whose field names the argument, and changes nothing: no instance, the same state, no events, no boot.",
    nova: "Nova validates at its API (schemas) before the driver; a driver behind this contract is called by any program, so it validates itself (the project's rule: bad input gets a clear typed error and loses nothing).",
  },
  "input.options-omitted": {
    rule: "Every options argument of the contract is optional: each lifecycle call works without it, and so do the snapshot calls (createInstanceSnapshot without a description, snapshot without a task-state callback).",
    nova: "Nova's driver methods take keyword defaults (timeout=0, retry_interval=0, ...).",
  },
  "lifecycle.reboot-soft-is-clean": {
    rule: "As the guest saw it: a soft reboot of a guest honouring ACPI asks it and it restarts itself cleanly; a hard reboot asks nothing and resets it; a guest ignoring the request is asked, then rebooted hard. softReboot undeclared: a hard reboot still works and asks nothing; a soft one is refused with UnsupportedOperationError and changes nothing, or is done hard, never asking the guest.",
    nova: "The libvirt driver's _soft_reboot shuts the domain down (ACPI) and starts it, falling back to _hard_reboot only when the guest does not go down in time.",
  },
  "lifecycle.power-off-seen-by-guest": {
    rule: "As the guest saw it: power off with timeout 0 asks nothing and cuts the guest off; an instance already off is not touched; a suspended (saved) guest is not asked; with a clean timeout a guest honouring ACPI shuts itself down cleanly.",
    nova: "power_off(timeout=0) destroys at once; _clean_shutdown returns at once for SHUTDOWN, CRASHED and SUSPENDED and otherwise asks the guest (guest.shutdown()).",
  },
  "lifecycle.power-off-retries": {
    rule: "Within the clean timeout a guest that does not react is asked again every retryIntervalSec, then the instance is stopped hard.",
    nova: "_clean_shutdown re-triggers guest.shutdown() every retry_interval within the timeout, because the guest may have missed the first request.",
  },
  "lifecycle.power-off-wait-bounded": {
    rule: "The clean-shutdown wait is bounded: an unknown instance is refused InstanceNotFound with any timeout, a wait without retry interval still ends, the call's own deadline cuts a long wait short with OperationTimeoutError, the instance still RUNNING, and a retry interval that does not divide the clean timeout does not stretch the wait past it.",
    nova: "_clean_shutdown returns True for an instance that is gone; the contract adds per-call deadlines Nova does not have.",
  },
  "lifecycle.power-off-wait-ends-on-crash": {
    rule: "A guest ignoring ACPI that crashes while a clean power off waits for it ends the wait: the call returns within about a poll of the crash, not at the end of the clean timeout, and the instance is SHUTDOWN.",
    nova: "_clean_shutdown polls the power state every second and returns once it is in SHUTDOWN_STATES (SHUTDOWN, CRASHED, SUSPENDED); power_off then destroys the domain.",
  },
  "input.deadline-unbounded": {
    rule: "OperationOptions.timeoutMs of Infinity means no deadline, and one beyond 2^31 - 1 ms (a Node timer's limit) is capped, not fired at once: spawn, getInfo, listInstances, getHostInfo, a hard reboot, power off and on and destroy all succeed with either.",
    nova: "Nova's calls take no per-call deadline; the contract adds one, so what it means when unbounded is the contract's own rule.",
  },
  "lifecycle.cleanup-host-releases": {
    rule: "cleanupHost releases connections and listeners and leaves the driver unusable: checked on a second driver of the host, its listener hears nothing of what the first does afterwards, removing it is harmless, and listInstances, getHostInfo, getInfo, powerOn, instanceExists, destroy and spawn are each refused with a VirtkitError (not InstanceNotFoundError: the instance is there) and change nothing.",
    nova: "ComputeDriver.cleanup_host: 'Clean up anything that is necessary for the driver gracefully stop, including ending remote sessions' (the libvirt driver closes its connection and its event thread); the contract adds that a cleaned-up driver refuses calls rather than reconnecting.",
  },
  "migration.abort-not-migrating": {
    rule: "liveMigrationAbort of a running instance that is not migrating rejects with InvalidStateError itself (so does liveMigrationForceComplete where forceCompleteMigration is declared) and the instance still runs; an instance the host does not have is InstanceNotFoundError; where two hosts can move it, a migration started afterwards completes (no abort is kept for later).",
    nova: "The API's live_migration_abort refuses a migration that is not running or preparing (InvalidMigrationState); the libvirt driver's abortJob fails with 'no job is active' when nothing runs.",
  },
  "migration.steps-aborted": {
    rule: "checkCanLiveMigrateDestination, checkCanLiveMigrateSource, cleanupLiveMigrationDestinationCheck (where implemented), preLiveMigration, liveMigration, rollbackLiveMigrationAtDestination and postLiveMigrationAtDestination, each called with an already aborted signal, reject with OperationAbortedError itself (liveMigration may say LiveMigrationFailedError) and change nothing: after each refused step, not only the last, the instance still runs on the source only; each step then succeeds with a live signal and the move completes.",
    nova: "Nova's compute manager runs these steps as RPCs that a cancelled request never reaches; the contract's OperationOptions carry the cancellation to each step instead, so a step must honour it like every other call.",
  },
  "lifecycle.cpu-time": {
    rule: "getInfo's cpuTimeNs (nanoseconds consumed) never runs backwards while the instance lives, never exceeds what its vCPUs could burn since the spawn, stands still while it is stopped and hardly moves while it is paused; a restart may count afresh.",
    nova: "get_info's cpu_time_ns (libvirt's virDomainGetInfo cpuTime), which Nova's diagnostics and metrics read.",
  },
  "lifecycle.cpu-time-grows": {
    rule: "A running instance's cpuTimeNs grows (after spawn, after unpause and after power on); a constant is not CPU accounting.",
    nova: "get_info's cpu_time_ns, as above.",
  },
  "lifecycle.rescue-password": {
    rule: "rescue's rescuePassword opens root of the rescue system the instance boots, and no account of the instance's own system, also after unrescue.",
    nova: "The libvirt driver's rescue injects rescue_password as the rescue image's root password (instance.admin_pass during rescue).",
  },
  "lifecycle.rescue-survives-reboot": {
    rule: "A rescued instance that is rebooted (hard, or soft where declared) still runs its rescue system, as the guest shows, or the reboot is refused with InvalidStateError; powered off and on, it runs the rescue system again unless the power off left rescue mode (then unrescue is refused); unrescue boots the instance's own system.",
    nova: "Nova's API refuses a reboot of a RESCUED instance; a driver that accepts one must not leave rescue mode behind the caller's back.",
  },
  "lifecycle.unrescue-after-crash": {
    rule: "A rescued instance whose rescue system crashed (getInfo CRASHED, announced once as CRASHED) is unrescued: RUNNING, announced as STARTED once (a STOPPED of the crashed domain first is allowed), its own system booted, and a second unrescue is refused with InvalidStateError (rescue mode is over).",
    nova: "Nova's API accepts unrescue for every RESCUED instance whatever its power state; the libvirt driver destroys the rescue domain and defines the instance's own again.",
  },
  "admin-password.first-boot": {
    rule: "spawn's adminPassword goes to the account setAdminPassword would use, with os_type inherited from the image when the instance has none (Windows: Administrator, not root); a spawn with a password honours its deadline like any other (nothing left behind); two spawns of one uuid at once leave one instance and refuse the other with InstanceExistsError.",
    nova: "Nova's instance.os_type comes from the image's os_type at boot; the libvirt driver picks Administrator for Windows guests.",
  },
  "admin-password.spawn-without-agent": {
    rule: "A spawn given an adminPassword for an image without a guest agent either sets it at first boot by other means (it then opens root) or is refused typed (GuestAgentNotEnabledError, AdminPasswordNotSupportedError or UnsupportedOperationError) with nothing made; a spawn that succeeds with the password unset fails.",
    nova: "Nova injects a spawn's admin password through the config drive or file injection where it can, and the xenapi driver through its agent; a password it cannot inject is not silently accepted by the API.",
  },
  "migration.caller-cancels": {
    rule: "liveMigration takes the caller's signal and deadline like every call: on two instances at once, moves slowed to 0.7 s, one aborted by its caller 30 ms in and one with a 50 ms deadline reject typed (OperationAbortedError / OperationTimeoutError, or LiveMigrationFailedError) within 1 s; watched until 0.4 s past the slowed move's time, neither arrives on the destination (listed there and gone from the source: the incoming side of a move being torn down, which libvirt lists until then, is not an arrival); both still run on the source and are not on the destination after its rollback. Only when the kit's own 30 ms (or 50 ms) timer fired after half the slowed move (a machine that loaded) may the move have finished, and then the answer must match where the instance is.",
    nova: "Nova's live migration monitor aborts the libvirt job (virDomainAbortJob) when the migration is cancelled or exceeds its completion timeout, and the instance stays on the source.",
  },
  "migration.destroy-during": {
    rule: "Destroying the instance on the source during a live migration stops the migration at once (it rejects typed) and, after the destination's rollback, the instance is on neither host.",
    nova: "Deleting an instance that is migrating aborts the libvirt migration job; the manager then rolls back at the destination.",
  },
  "snapshot.per-instance": {
    rule: "Instance snapshots belong to their instance: with two instances holding one each, an id of the other's is SnapshotNotFoundError for deleteInstanceSnapshot and revertToInstanceSnapshot (both instances and their snapshots unchanged), each listing holds its own snapshot only, a name of 255 characters (the contract's limit) is kept as given, every id is at most 255 characters, and a listing returned earlier does not change under its holder with later calls.",
    nova: "Nova's libvirt driver looks snapshots up on the instance's own domain (virDomainSnapshotLookupByName on that domain), and XenAPI's vmops on the VM's own snapshot list; Nova's API limits names to 255 characters.",
  },
  "snapshot.power-and-respawn": {
    rule: "A snapshot taken while PAUSED says powerState PAUSED, and reverting to it (from RUNNING) leaves the instance PAUSED; an instance destroyed with a snapshot and spawned again under the same uuid lists no snapshot.",
    nova: "libvirt reverts a snapshot to the state it captured (paused stays paused); Nova's rebuild and evacuate spawn the same uuid again after destroy, and the libvirt driver's undefine removes the snapshots' metadata with the domain.",
  },
  "admin-password.characters": {
    rule: "setAdminPassword takes any text: a password holding ':', a space, quotes, a backslash, '$', '#' and a non-ASCII letter opens the admin account whole (checked in the guest), and its part before the ':' does not.",
    nova: "Nova passes the API's admin password as given to the guest agent (qemu-guest-agent's guest-set-user-password base64-encodes it; the agent feeds chpasswd, whose 'user:password' line splits at the first ':'), so a driver must not build such a line itself.",
  },
  "deadlines.inspection": {
    rule: "getHostInfo, listInstances, listInstanceUuids, instanceExists, getInfo, getConsoleOutput, listInstanceSnapshots and checkCanLiveMigrateDestination (asked of the destination's driver with the source's host facts, as Nova asks it) reject an already aborted signal with OperationAbortedError; on a hypervisor slowed by 100 ms the calls that only look reject a 4 ms deadline with OperationTimeoutError (a late answer is asked again, up to three tries in all: a stall of the test machine can run the answer before the deadline's timer), and on one slowed to 3 s getInfo rejects a 1 000 ms deadline typed before 2.5 s.",
    nova: "Nova bounds its calls to the hypervisor (libvirt's keepalive, XenAPI's session timeouts) so a status poll cannot hang the compute manager's periodic tasks.",
  },
  "events.crash-announced": {
    rule: "A guest that crashes on its own is announced exactly once, as CRASHED, by the host running it (not STOPPED, not twice), and getInfo says CRASHED.",
    nova: "Nova's event.py has no crash transition (its libvirt host reports a crashed domain's stop as STOPPED); the contract adds CRASHED so a service can tell a crash from a deliberate stop.",
  },
};

/** Families of generated scenarios, by id prefix. */
export const FAMILY_DOCS: Readonly<Record<string, ScenarioDoc>> = {
  "migration.plan.": {
    rule: "The neutral MigrationPolicy maps to exactly these libvirt VIR_MIGRATE_* flags for this configuration (scheme `libvirt`); a driver planning in another scheme is checked for its own representation.",
    nova: "The libvirt driver's _parse_migration_flags (seed 004): LIVE|PEER2PEER|UNDEFINE_SOURCE|PERSIST_DEST, NON_SHARED_INC for block migration, TUNNELLED, post-copy only if permitted and supported (then no auto-converge), newer Nova's TLS and PARALLEL.",
  },
  "effects.": {
    rule: "An operation has the effect it claims, checked by the environment's own means inside the guest or on the host (boot counts, disk markers, host facts), never by the driver's word.",
    nova: "Nova trusts the driver's get_info; its tests rarely check what happened in the guest. This group is the contract's own.",
  },
  "events.": {
    rule: "Lifecycle events reach every registered listener independently, and a migration's events never report the source stopped while the instance still runs.",
    nova: "ComputeDriver.emit_event and the manager's handle_lifecycle_event (which must not power off an instance that is migrating).",
  },
  "deadlines.": {
    rule: "Every contract operation honours an aborted signal (OperationAbortedError, nothing changed) and its timeoutMs (OperationTimeoutError, in time).",
    nova: "Nova has no per-call deadline; this is the contract's own rule.",
  },
  "service.": {
    rule: "The compute service over this driver keeps Nova's vm/task states through the operation: task state set during it and cleared on every path, vm state as Nova's manager leaves it.",
    nova: "nova/compute/manager.py: the task_state/vm_state bookkeeping around each driver call.",
  },
  "explore.": {
    rule: "Random sequences of operations from a fixed seed keep the driver in step with the kit's reference model of the contract, in every view, after every step (a failure is shrunk to a short sequence).",
    nova: "No Nova counterpart: Nova's driver tests call one operation at a time; this is model-based testing of the contract.",
  },
  "state.": {
    rule: "From this power state, this operation has exactly the outcome the state matrix expects: the new state in every view, or a typed refusal that changes nothing (the title says which).",
    nova: "Nova's compute manager guards these moves with @check_instance_state on vm_state/task_state; the contract asks the driver itself to refuse illegal transitions.",
  },
};

/** Groups whose new scenarios have no words of their own yet: what the whole group holds a driver to. */
const GROUP_DOCS: Readonly<Record<string, ScenarioDoc>> = {
  lifecycle: {
    rule: "Each lifecycle operation reaches the state the contract names, in every view the driver offers, and illegal moves are refused typed without changing anything.",
    nova: "ComputeDriver's lifecycle methods (spawn, reboot, power_off/on, pause, suspend, rescue, destroy) and power_state.",
  },
  migration: {
    rule: "Live migration follows the neutral MigrationPolicy, its pre-checks refuse what cannot work, and the instance ends in exactly one place.",
    nova: "The live-migration methods of ComputeDriver and the libvirt driver's migration flags.",
  },
  "admin-password": {
    rule: "Setting the admin password takes effect in the guest, fails typed when it cannot, and never shows the password.",
    nova: "ComputeDriver.set_admin_password and the manager's set_admin_password (seed 000).",
  },
  snapshot: {
    rule: "Snapshots land where the contract says with the metadata it names, and leave the instance as it was.",
    nova: "ComputeDriver.snapshot and nova/compute/utils.py's snapshot metadata.",
  },
};

/** The words for `id`: its own, its family's, or its group's; undefined when none are written. */
export function scenarioDoc(id: string): ScenarioDoc | undefined {
  return (
    SCENARIO_DOCS[id] ??
    Object.entries(FAMILY_DOCS).find(([prefix]) => id.startsWith(prefix))?.[1] ??
    GROUP_DOCS[id.split(".")[0] ?? ""]
  );
}
