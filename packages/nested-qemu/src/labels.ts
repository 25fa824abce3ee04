/**
 * Labels on everything this package creates, so a later run (or `sweepNestedQemu`) can find and
 * remove what an interrupted run left behind. The owner's pid and host name tell a dead run from a
 * live one running at the same time.
 */
import { hostname } from "node:os";

/** The run id of a container, network or volume. */
export const RUN_LABEL = "virtkit.nested-qemu";
/** The pid of the process that created it. */
export const OWNER_PID_LABEL = "virtkit.nested-qemu.owner-pid";
/** The host name of the machine that process runs on. */
export const OWNER_HOST_LABEL = "virtkit.nested-qemu.owner-host";
/** On images: which layer (`base`, `hypervisor`, `guest`) and the hash of its inputs. */
export const LAYER_LABEL = "virtkit.nested-qemu.layer";
export const LAYER_HASH_LABEL = "virtkit.nested-qemu.inputs";
/**
 * The session a run belongs to: set by a process that hands the run to a child (the CLI, whose
 * vitest worker starts the hosts), so it can remove what the child left once the child is gone.
 */
export const SESSION_LABEL = "virtkit.nested-qemu.session";
/** The environment variable through which a parent process gives its children its session. */
export const SESSION_ENV = "VIRTKIT_NESTED_QEMU_SESSION";

/** The labels of resources created by run `runId` of this process (in `session`, if given). */
export function runLabels(runId: string, session?: string): Record<string, string> {
  return {
    [RUN_LABEL]: runId,
    [OWNER_PID_LABEL]: String(process.pid),
    [OWNER_HOST_LABEL]: hostname(),
    ...(session !== undefined && session !== "" ? { [SESSION_LABEL]: session } : {}),
  };
}
