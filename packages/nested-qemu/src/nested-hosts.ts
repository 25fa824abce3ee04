/**
 * Two (or more) hypervisor hosts: containers of the nested-QEMU image started by testcontainers,
 * each running a private libvirtd on TCP, on a Docker network this run creates. The driver reaches
 * each daemon through a port mapped to 127.0.0.1; the daemons reach each other by their address on
 * the run's network (peer-to-peer migration). Everything is labelled with the run id and removed on
 * stop, on a failed start, on abort, and on SIGINT/SIGTERM; a later run sweeps what a killed one left.
 */
import { randomBytes } from "node:crypto";
import type Docker from "dockerode";
import { GenericContainer, Wait, type StartedTestContainer } from "testcontainers";
import { abortable, deadlineSignal, type WaitOptions } from "./abortable.js";
import { configureTestcontainers, dockerClient, engineAnswers } from "./docker-engine.js";
import { HostLibvirt } from "./host-libvirt.js";
import { LIBVIRTD_TCP_PORT } from "./host-layer.js";
import { ensureImage } from "./image.js";
import { runLabels } from "./labels.js";
import { sweepNestedQemu } from "./sweep.js";

/** What a command run in a host container printed. */
export interface ExecOutput {
  readonly exitCode: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** One hypervisor host. */
export interface NestedHost {
  /** The container's name (unique per run). */
  readonly name: string;
  /** Its address on the run's network: what the other hosts' libvirtd and QEMU dial. */
  readonly address: string;
  /** libvirt URI for this process: `qemu+tcp://127.0.0.1:<mapped port>/system`. */
  readonly uri: string;
  /** The port on 127.0.0.1 mapped to libvirtd's TCP port. */
  readonly port: number;
  /**
   * Runs a command inside the host (as root), bounded by `timeoutMs` (default 60 s): the command is
   * killed inside the container too, by coreutils' `timeout`.
   */
  exec(command: readonly string[], options?: WaitOptions): Promise<ExecOutput>;
  /**
   * Sends one guest-agent command (JSON) to `domain` (name or UUID) through this host's libvirtd on
   * the environment's own connection (never the driver's); libvirtd waits for the agent up to
   * `timeoutMs` (default 30 s). Resolves with the agent's JSON reply; rejects with libvirt's error.
   */
  agentCommand(domain: string, command: string, options?: WaitOptions): Promise<string>;
  /** `domain`'s state as `virsh domstate` words it ("running", "shut off"...); undefined: not on this host. */
  domainState(domain: string, options?: WaitOptions): Promise<string | undefined>;
  /**
   * What is wrong with the host's container, as the engine says (gone, paused, exited with its
   * code), or undefined while it runs; bounded by `timeoutMs` (default 5 s).
   */
  fault(options?: WaitOptions): Promise<string | undefined>;
}

/** The running hosts. `stop()` (or `await using`) removes everything the run created. */
export interface NestedHosts extends AsyncDisposable {
  readonly runId: string;
  readonly image: string;
  /** The Docker network the hosts share. */
  readonly network: string;
  /** Where the run's shared volume is mounted on every host (with `sharedDir`). */
  readonly sharedDir?: string;
  readonly hosts: readonly NestedHost[];
  /** What the start's sweep removed of dead earlier runs (names of containers, networks, volumes). */
  readonly swept: readonly string[];
  /** Removes the containers and the network; idempotent; bounded by `timeoutMs` (default 60 s). */
  stop(options?: WaitOptions): Promise<void>;
}

/** Options of {@link startNestedHosts}. */
export interface StartNestedHostsOptions {
  /** Number of hosts (default 2). */
  readonly count?: number;
  /** The image (default: {@link ensureImage}'s, built when missing). */
  readonly image?: string;
  /** Governs the start only (cancelled start: everything removed); stop with `stop()`. */
  readonly signal?: AbortSignal;
  /** Deadline of the start, image build excluded (default 120 s). */
  readonly timeoutMs?: number;
  readonly onProgress?: (message: string) => void;
  /** Sweep what dead earlier runs left before starting (default true). */
  readonly sweep?: boolean;
  /** The session the run's resources are labelled with (`SESSION_LABEL`), so a parent process can sweep them. */
  readonly session?: string;
  /**
   * On SIGINT/SIGTERM remove everything, then raise the signal again so the process ends as it
   * would have (default true). Pass false when the program handles these signals and calls `stop()`.
   */
  readonly handleSignals?: boolean;
  readonly docker?: Docker;
  /**
   * A directory (absolute path) that every host mounts from one Docker volume of the run: storage
   * the hosts share, as an NFS instance directory would be (shared-storage live migration).
   */
  readonly sharedDir?: string;
}

/** Publishes every exposed port on 127.0.0.1 only (testcontainers binds all addresses). */
class LoopbackContainer extends GenericContainer {
  protected override async beforeContainerCreated(): Promise<void> {
    const bindings = this.hostConfig.PortBindings as
      Record<string, { HostIp?: string; HostPort?: string }[]> | undefined;
    for (const list of Object.values(bindings ?? {})) {
      for (const binding of list) binding.HostIp = "127.0.0.1";
    }
  }
}

const EXEC_DEFAULT_TIMEOUT_MS = 60_000;

/** The host of `container`; its own libvirt link (for checks, never the driver's) goes into `links`. */
function toHost(container: StartedTestContainer, network: string, links: HostLibvirt[], docker: Docker): NestedHost {
  const port = container.getMappedPort(LIBVIRTD_TCP_PORT);
  const name = container.getName().replace(/^\//, "");
  const uri = `qemu+tcp://127.0.0.1:${port}/system`;
  const link = new HostLibvirt(uri, name);
  links.push(link);
  return {
    name,
    address: container.getIpAddress(network),
    uri,
    port,
    agentCommand: (domain, command, options) => link.agentCommand(domain, command, options),
    domainState: (domain, options) => link.domainState(domain, options),
    async fault(options = {}) {
      let state: Docker.ContainerInspectInfo["State"];
      try {
        const info = await abortable(docker.getContainer(container.getId()).inspect(), {
          signal: options.signal,
          timeoutMs: options.timeoutMs ?? 5_000,
          what: `docker inspect ${name}`,
        });
        state = info.State;
      } catch (err) {
        if ((err as { statusCode?: number }).statusCode === 404) return `host ${name}: its container is gone`;
        throw err;
      }
      if (state.Paused) return `host ${name}: its container is paused`;
      if (!state.Running) return `host ${name}: its container is ${state.Status} (exit code ${state.ExitCode}${state.OOMKilled ? ", killed out of memory" : ""})`;
      return undefined;
    },
    async exec(command, options = {}) {
      const timeoutMs = options.timeoutMs ?? EXEC_DEFAULT_TIMEOUT_MS;
      const secs = Math.max(1, Math.ceil(timeoutMs / 1000));
      const result = await abortable(container.exec(["timeout", "-k", "5", String(secs), ...command]), {
        signal: options.signal,
        // The in-container timeout fires first; this one guards the exec call itself.
        timeoutMs: timeoutMs + 10_000,
        what: `exec ${command.join(" ").slice(0, 80)}`,
      });
      return { exitCode: result.exitCode, stdout: result.stdout, stderr: result.stderr };
    },
  };
}

/** Resolves once every promise of `pending` has settled, or after `timeoutMs`. */
async function settled(pending: ReadonlySet<Promise<unknown>>, timeoutMs: number): Promise<void> {
  if (pending.size === 0) return;
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([Promise.allSettled([...pending]), new Promise((r) => (timer = setTimeout(r, timeoutMs)))]);
  clearTimeout(timer);
}

/**
 * Starts the hosts; on any failure (an abort through `signal` included) removes what it created,
 * waiting for container starts still under way, and only then rejects.
 */
export async function startNestedHosts(options: StartNestedHostsOptions = {}): Promise<NestedHosts> {
  configureTestcontainers();
  const docker = options.docker ?? dockerClient();
  const progress = (m: string) => options.onProgress?.(m);
  if (!(await engineAnswers(docker, { signal: options.signal }))) {
    throw new Error(`no Docker engine answers at ${process.env.DOCKER_HOST} (start one: bash scripts/docker.sh start)`);
  }
  const image =
    options.image ??
    (
      await ensureImage({
        signal: options.signal,
        docker,
        onProgress: (p) => {
          if (p.phase !== "output") progress(`image ${p.layer} ${p.phase} ${p.message}`);
        },
      })
    ).image;
  const signal = deadlineSignal(options.signal, options.timeoutMs ?? 120_000);
  const sweptNames: string[] = [];
  if (options.sweep !== false) {
    const swept = await sweepNestedQemu({ docker, signal });
    sweptNames.push(...swept.containers, ...swept.networks, ...swept.volumes);
    if (sweptNames.length > 0) progress(`swept ${sweptNames.length} leftovers of earlier runs: ${sweptNames.join(", ")}`);
  }

  const runId = `${Date.now().toString(36)}-${randomBytes(3).toString("hex")}`;
  const labels = runLabels(runId, options.session);
  const networkName = `virtkit-nq-${runId}`;
  const containerIds = new Set<string>();
  let networkId: string | undefined;
  const sharedDir = options.sharedDir;
  if (sharedDir !== undefined && (!sharedDir.startsWith("/") || /[:,\s]/.test(sharedDir) || sharedDir.split("/").includes(".."))) {
    throw new Error(`sharedDir must be an absolute path without ':', ',', spaces or '..': ${sharedDir}`);
  }
  let volumeName: string | undefined;
  let stopping: Promise<void> | undefined;
  const links: HostLibvirt[] = [];

  const removeAll = async (timeoutMs: number): Promise<void> => {
    const stopSignal = AbortSignal.timeout(timeoutMs);
    const failures: string[] = [];
    await Promise.all(
      [...containerIds].map(async (id) => {
        try {
          await abortable(docker.getContainer(id).remove({ force: true, v: true }), {
            signal: stopSignal,
            what: `docker rm ${id.slice(0, 12)}`,
          });
          containerIds.delete(id);
        } catch (err) {
          // 404: gone; 409: a removal (the label sweep's) is already under way.
          const code = (err as { statusCode?: number }).statusCode;
          if (code === 404 || code === 409) containerIds.delete(id);
          else failures.push(`container ${id.slice(0, 12)}: ${err instanceof Error ? err.message : String(err)}`);
        }
      }),
    );
    // The network goes once its containers have: a removal still under way keeps an endpoint for a
    // moment (403 "active endpoints"), so it is tried again for a few seconds.
    for (let attempt = 1; networkId !== undefined; attempt++) {
      try {
        await abortable(docker.getNetwork(networkId).remove(), {
          signal: stopSignal,
          what: `docker network rm ${networkName}`,
        });
        networkId = undefined;
      } catch (err) {
        const code = (err as { statusCode?: number }).statusCode;
        if (code === 404) networkId = undefined;
        else if (code === 403 && attempt < 20 && !stopSignal.aborted) await new Promise((r) => setTimeout(r, 500));
        else {
          failures.push(`network ${networkName}: ${err instanceof Error ? err.message : String(err)}`);
          break;
        }
      }
    }
    // The shared volume goes once no container uses it.
    if (volumeName !== undefined) {
      try {
        await abortable(docker.getVolume(volumeName).remove(), { signal: stopSignal, what: `docker volume rm ${volumeName}` });
        volumeName = undefined;
      } catch (err) {
        if ((err as { statusCode?: number }).statusCode === 404) volumeName = undefined;
        else failures.push(`volume ${volumeName}: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
    if (failures.length > 0) {
      throw new Error(`nested-qemu run ${runId}: could not remove ${failures.join("; ")} (a later run sweeps them)`);
    }
  };

  // Container starts under way: a signal that arrives while one is being created must wait for it
  // to exist before removing by the run's label, or the engine finishes creating it after we left.
  const inFlight = new Set<Promise<unknown>>();
  const onSignal = (sig: NodeJS.Signals): void => {
    progress(`${sig}: removing the nested-qemu hosts of run ${runId}`);
    void (async () => {
      if (inFlight.size > 0) {
        await settled(inFlight, 20_000);
        await sweepNestedQemu({ docker, runId, timeoutMs: 30_000 }).catch(() => undefined);
      }
      await stop({ timeoutMs: 30_000 });
    })()
      .catch((err: unknown) => console.error(err instanceof Error ? err.message : String(err)))
      .finally(() => {
        // Raised again so the process ends as it would have: our listener is gone, and libraries'
        // listeners (signal-exit, from testcontainers' proper-lockfile) re-raise once they are alone.
        process.kill(process.pid, sig);
      });
  };
  const signalHandlers: [NodeJS.Signals, () => void][] = [
    ["SIGINT", () => onSignal("SIGINT")],
    ["SIGTERM", () => onSignal("SIGTERM")],
  ];
  if (options.handleSignals !== false) for (const [sig, fn] of signalHandlers) process.once(sig, fn);

  const stop = (stopOptions: WaitOptions = {}): Promise<void> => {
    for (const [sig, fn] of signalHandlers) process.removeListener(sig, fn);
    stopping ??= Promise.all(links.map((l) => l.close()))
      .then(() => removeAll(stopOptions.timeoutMs ?? 60_000))
      .finally(() => {
        stopping = undefined;
      });
    return stopping;
  };

  try {
    progress(`creating network ${networkName}`);
    const network = await abortable(
      docker.createNetwork({ Name: networkName, Driver: "bridge", CheckDuplicate: true, Labels: labels }),
      { signal, what: `docker network create ${networkName}` },
    );
    networkId = network.id;
    if (sharedDir !== undefined) {
      const name = `virtkit-nq-${runId}-shared`;
      progress(`creating volume ${name} (shared by the hosts at ${sharedDir})`);
      await abortable(docker.createVolume({ Name: name, Labels: labels }), { signal, what: `docker volume create ${name}` });
      volumeName = name;
    }
    const count = options.count ?? 2;
    const started = await Promise.all(
      Array.from({ length: count }, async (_, i) => {
        const name = `virtkit-nq-${runId}-${i}`;
        progress(`starting host ${name}`);
        const container = new LoopbackContainer(image)
          .withName(name)
          .withLabels(labels)
          .withNetworkMode(networkName)
          .withExposedPorts(LIBVIRTD_TCP_PORT)
          // Post-copy's destination QEMU needs userfaultfd: the kernel grants it only with
          // CAP_SYS_PTRACE while vm.unprivileged_userfaultfd is 0 (QEMU 7.2 predates /dev/userfaultfd),
          // and Docker's default seccomp profile refuses the syscall even then (both tried: QEMU says
          // "Postcopy is not supported" unless the container has the capability and no seccomp filter).
          .withAddedCapabilities("SYS_PTRACE")
          .withSecurityOpt("seccomp=unconfined")
          .withWaitStrategy(Wait.forListeningPorts())
          .withStartupTimeout(60_000);
        // A named volume in Binds: every host sees the same files at the same path.
        if (volumeName !== undefined && sharedDir !== undefined) {
          container.withBindMounts([{ source: volumeName, target: sharedDir, mode: "rw" }]);
        }
        const starting = container.start();
        inFlight.add(starting);
        void starting.then(
          () => inFlight.delete(starting),
          () => inFlight.delete(starting),
        );
        const s = await abortable(starting, {
          signal,
          what: `starting ${name}`,
          // Started after we gave up: remove it too.
          onLate: (late) => {
            containerIds.add(late.getId());
            void removeAll(30_000).catch(() => undefined);
          },
        });
        containerIds.add(s.getId());
        return s;
      }),
    );
    const hosts = started.map((c) => toHost(c, networkName, links, docker));
    progress(`hosts ${hosts.map((h) => `${h.name} ${h.address} -> 127.0.0.1:${h.port}`).join(", ")}`);
    return {
      runId,
      image,
      network: networkName,
      ...(sharedDir !== undefined ? { sharedDir } : {}),
      hosts,
      swept: sweptNames,
      stop,
      [Symbol.asyncDispose]: () => stop(),
    };
  } catch (err) {
    // A start given up on (aborted, timed out, a sibling failed) may still be creating its
    // container, or waiting for its libvirtd: what exists goes now (which ends such a wait at
    // once), the starts are waited for (bounded), so the sweep below sees a container created
    // meanwhile and the caller, once this rejects, knows nothing of the run is left.
    if (inFlight.size > 0) {
      await sweepNestedQemu({ docker, runId, timeoutMs: 30_000 }).catch(() => undefined);
      await settled(inFlight, 20_000);
    }
    // Containers whose start failed half way carry the run's label: remove them by it.
    await sweepNestedQemu({ docker, runId, timeoutMs: 60_000 }).catch(() => undefined);
    await stop({ timeoutMs: 60_000 }).catch(() => undefined);
    throw err;
  }
}
