/**
 * Removes what earlier runs left: containers, networks and volumes labelled by this package whose
 * owning process is gone (a run killed before its cleanup, or whose cleanup was cut short). A run
 * still alive in another process keeps its resources.
 */
import { hostname } from "node:os";
import type Docker from "dockerode";
import { abortable, deadlineSignal } from "./abortable.js";
import { dockerClient } from "./docker-engine.js";
import { OWNER_HOST_LABEL, OWNER_PID_LABEL, RUN_LABEL, SESSION_LABEL } from "./labels.js";

/** Options of {@link sweepNestedQemu}. */
export interface SweepOptions {
  readonly docker?: Docker;
  readonly signal?: AbortSignal;
  /** Deadline of the whole sweep (default 60 s). */
  readonly timeoutMs?: number;
  /** Remove every labelled resource, even those of live runs (default false). */
  readonly all?: boolean;
  /** Only this run's resources (whatever its owner). */
  readonly runId?: string;
  /** Only the resources of runs in this session (whatever their owner: see `SESSION_LABEL`). */
  readonly session?: string;
  /** Resources owned by a process on another machine count as abandoned after this long (default 1 h). */
  readonly foreignAfterMs?: number;
}

/** What a sweep removed (names), and what it could not remove (with the error). */
export interface SweepResult {
  readonly containers: readonly string[];
  readonly networks: readonly string[];
  readonly volumes: readonly string[];
  readonly failures: readonly string[];
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists but belongs to someone else.
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Whether the resource's owner is gone (or the options pick it regardless). */
export function abandoned(
  labels: Readonly<Record<string, string>> | undefined,
  createdMs: number,
  options: SweepOptions,
): boolean {
  if (!labels || labels[RUN_LABEL] === undefined) return false;
  if (options.runId !== undefined) return labels[RUN_LABEL] === options.runId;
  if (options.session !== undefined) return labels[SESSION_LABEL] === options.session;
  if (options.all) return true;
  const pid = Number(labels[OWNER_PID_LABEL]);
  if (labels[OWNER_HOST_LABEL] !== hostname()) return Date.now() - createdMs > (options.foreignAfterMs ?? 3_600_000);
  return !Number.isInteger(pid) || pid <= 0 || (pid !== process.pid && !pidAlive(pid));
}

/** Removes abandoned (or, with `all` / `runId`, the chosen) containers, networks and volumes. */
export async function sweepNestedQemu(options: SweepOptions = {}): Promise<SweepResult> {
  const docker = options.docker ?? dockerClient();
  const signal = deadlineSignal(options.signal, options.timeoutMs ?? 60_000);
  const filters = { label: [RUN_LABEL] };
  const step = <T>(p: Promise<T>, what: string) => abortable(p, { signal, timeoutMs: 30_000, what });
  const result = {
    containers: [] as string[],
    networks: [] as string[],
    volumes: [] as string[],
    failures: [] as string[],
  };

  const containers = await step(docker.listContainers({ all: true, filters }), "docker ps");
  await Promise.all(
    containers
      .filter((c) => abandoned(c.Labels, c.Created * 1000, options))
      .map(async (c) => {
        const name = c.Names[0]?.replace(/^\//, "") ?? c.Id.slice(0, 12);
        try {
          await step(docker.getContainer(c.Id).remove({ force: true, v: true }), `docker rm ${name}`);
          result.containers.push(name);
        } catch (err) {
          if ((err as { statusCode?: number }).statusCode === 404) return;
          result.failures.push(`container ${name}: ${err instanceof Error ? err.message : String(err)}`);
        }
      }),
  );
  // Networks after their containers: a network with endpoints cannot be removed.
  const networks = await step(docker.listNetworks({ filters }), "docker network ls");
  for (const n of networks) {
    if (!abandoned(n.Labels, Date.parse(n.Created), options)) continue;
    try {
      await step(docker.getNetwork(n.Id).remove(), `docker network rm ${n.Name}`);
      result.networks.push(n.Name);
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode === 404) continue;
      result.failures.push(`network ${n.Name}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  const volumes = (await step(docker.listVolumes({ filters }), "docker volume ls")).Volumes ?? [];
  for (const v of volumes) {
    const created = (v as { CreatedAt?: string }).CreatedAt;
    if (!abandoned(v.Labels, created ? Date.parse(created) : 0, options)) continue;
    try {
      await step(docker.getVolume(v.Name).remove(), `docker volume rm ${v.Name}`);
      result.volumes.push(v.Name);
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode === 404) continue;
      result.failures.push(`volume ${v.Name}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  return result;
}
