/**
 * Finding the Docker engine: DOCKER_HOST when set, else the private engine of `scripts/docker.sh`
 * (`/tmp/virtkit-docker/docker.sock`), else Docker's default socket. testcontainers reads
 * DOCKER_HOST from the environment, so the choice is written back there for it.
 */
import { existsSync } from "node:fs";
import Docker from "dockerode";
import { abortable } from "./abortable.js";

/** The socket `scripts/docker.sh start` runs its engine on (its `VIRTKIT_DOCKER_DIR` default). */
export const PRIVATE_ENGINE_SOCKET = "/tmp/virtkit-docker/docker.sock";
const DEFAULT_SOCKET = "/var/run/docker.sock";

/** The engine's address as a DOCKER_HOST value (`unix:///...`, `tcp://...`). */
export function dockerHost(env: NodeJS.ProcessEnv = process.env): string {
  const fromEnv = env.DOCKER_HOST;
  if (fromEnv !== undefined && fromEnv !== "") return fromEnv;
  const privateSocket = env.VIRTKIT_DOCKER_DIR ? `${env.VIRTKIT_DOCKER_DIR}/docker.sock` : PRIVATE_ENGINE_SOCKET;
  if (existsSync(privateSocket)) return `unix://${privateSocket}`;
  return `unix://${DEFAULT_SOCKET}`;
}

/**
 * Points testcontainers at the engine and switches Ryuk off: its image cannot be pulled here, and
 * this package removes what it creates itself (labels and a sweep). Mapped ports are published on
 * 127.0.0.1 and this process talks to them there: testcontainers would otherwise pick the default
 * bridge's gateway (172.17.0.1) whenever /.dockerenv exists, as it does on these machines.
 */
export function configureTestcontainers(env: NodeJS.ProcessEnv = process.env): string {
  const host = dockerHost(env);
  env.DOCKER_HOST = host;
  env.TESTCONTAINERS_RYUK_DISABLED = "true";
  if (host.startsWith("unix://")) env.TESTCONTAINERS_HOST_OVERRIDE = "127.0.0.1";
  return host;
}

/** A dockerode client for `host` (a DOCKER_HOST value). */
export function dockerClient(host: string = dockerHost()): Docker {
  if (host.startsWith("unix://")) return new Docker({ socketPath: host.slice("unix://".length) });
  const url = new URL(host.replace(/^tcp:/, "http:"));
  return new Docker({ host: url.hostname, port: Number(url.port || 2375), protocol: "http" });
}

/** Whether the engine answers a ping within `timeoutMs`. */
export async function engineAnswers(
  docker: Docker = dockerClient(),
  options: { timeoutMs?: number; signal?: AbortSignal } = {},
): Promise<boolean> {
  try {
    await abortable(docker.ping(), {
      timeoutMs: options.timeoutMs ?? 3_000,
      signal: options.signal,
      what: "docker ping",
    });
    return true;
  } catch {
    return false;
  }
}
