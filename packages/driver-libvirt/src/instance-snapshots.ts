/**
 * Instance snapshots as libvirt domain snapshots: virtkit keeps the caller's name, creation time
 * and description as JSON in the snapshot's description, so a listing gives them back as given.
 */
import { PowerState, type Instance, type InstanceSnapshot } from "@virtkit/core";
import type { DomainSnapshot } from "@virtkit/libvirt-rpc";
import { readSnapshotXml } from "./domain-xml.js";

/** What virtkit writes into a snapshot's description. */
export interface SnapshotDescription {
  readonly virtkit: 1;
  readonly name: string;
  readonly createdAt: string;
  readonly description?: string;
}

/** The contract's view of a libvirt snapshot, from its XML. */
export function toInstanceSnapshot(instance: Instance, snap: DomainSnapshot, xml: string): InstanceSnapshot {
  const facts = readSnapshotXml(xml);
  let name = facts.name;
  let createdAt = new Date(facts.creationTime * 1000).toISOString();
  let description = facts.description;
  const parsed = parseSnapshotDescription(facts.description);
  if (parsed) {
    name = parsed.name;
    createdAt = parsed.createdAt;
    description = parsed.description;
  }
  return {
    id: snap.name,
    name,
    instanceUuid: instance.uuid,
    createdAt,
    powerState: snapshotPowerState(facts.state),
    ...(description !== undefined ? { description } : {}),
  };
}

/** Snapshot `<state>` -> the power state a revert restores. */
function snapshotPowerState(state: string): PowerState {
  switch (state) {
    case "running":
    case "blocked":
      return PowerState.RUNNING;
    case "paused":
      return PowerState.PAUSED;
    case "shutdown":
    case "shutoff":
    case "disk-snapshot":
      return PowerState.SHUTDOWN;
    case "crashed":
      return PowerState.CRASHED;
    case "pmsuspended":
      return PowerState.SUSPENDED;
    default:
      return PowerState.NOSTATE;
  }
}

export function parseSnapshotDescription(text: string | undefined): SnapshotDescription | undefined {
  if (text === undefined || !text.startsWith("{")) return undefined;
  try {
    const v = JSON.parse(text) as Partial<SnapshotDescription>;
    if (v.virtkit === 1 && typeof v.name === "string" && typeof v.createdAt === "string") {
      return v as SnapshotDescription;
    }
  } catch {
    // A description written by someone else.
  }
  return undefined;
}
