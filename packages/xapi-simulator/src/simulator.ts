// startXapiSimulator: two pools on loopback endpoints (pool 1: master + a slave that answers
// HOST_IS_SLAVE; pool 2: its own master for cross-pool migration), sharing one set of credentials.
import { randomBytes } from "node:crypto";
import { Endpoint } from "./endpoint.js";
import type { XapiFaults } from "./faults.js";
import type { SimulatedGuest } from "./guest.js";
import { XapiPool } from "./pool.js";
import { World } from "./world.js";

const GiB = 1024 ** 3;

/** Options of startXapiSimulator. */
export interface XapiSimulatorOptions {
  /** Loopback address to listen on (default 127.0.0.1). */
  host?: string;
  /** Default root. */
  username?: string;
  /** Default: random, readable on the returned simulator. */
  password?: string;
  /** Hosts in pool 1 (default 2). */
  poolHosts?: number;
  /** Receives one line per call: method and outcome code, never arguments or secrets. */
  logger?: (line: string) => void;
  /** How long a VM operation keeps the VM busy (default 5 ms). */
  operationMs?: number;
  /** Minimum duration of pool_migrate / migrate_send (default 20 ms; faults.setMigrationDuration changes it). */
  migrationMs?: number;
  /** How long clean_shutdown/clean_reboot wait for a guest ignoring ACPI (default 1,200,000 ms as XAPI). */
  cleanShutdownTimeoutMs?: number;
  /** Scale of the agent plugin's waits (its int `timeout` argument, 0.5 s polls); default 1 = real time. */
  agentTimeScale?: number;
  /** How late a `slow` agent answers (default 2000 ms). */
  slowAgentMs?: number;
  /**
   * How long an event.from woken by a change waits before it collects, so one operation's changes
   * come back in one batch. XAPI waits 50 ms (xapi_event.ml); default 0: at once.
   */
  eventBatchMs?: number;
  /** Size of each pool's SR (default 200 GiB). */
  srSize?: number;
  /** Memory of each host (default 64 GiB). */
  hostMemory?: number;
  /** CPUs of each host (host.cpu_info.cpu_count, default 8). */
  hostCpus?: number;
}

/** A running simulator. */
export interface XapiSimulator {
  /** Pool 1 master, e.g. http://127.0.0.1:PORT (JSON-RPC at /jsonrpc, XML-RPC at /). */
  readonly url: string;
  /** Pool 1 second host: every call answers HOST_IS_SLAVE [master address]. */
  readonly slaveUrl: string;
  /** Pool 2 master (cross-pool migration), same credentials. */
  readonly secondPoolUrl: string;
  readonly username: string;
  readonly password: string;
  readonly faults: XapiFaults;
  /** The guest in the VM with this uuid; throws for an unknown VM. */
  guest(vmUuid: string): SimulatedGuest;
  /** Non-template VMs, snapshots, VDIs, VBDs, VIFs, open sessions and pending tasks still there. */
  leftovers(): readonly string[];
  close(): Promise<void>;
}

/** The next loopback alias (127.0.0.1 -> 127.0.0.2), or undefined for a non-loopback host. */
function nextLoopback(host: string, step: number): string | undefined {
  const m = /^127\.(\d+)\.(\d+)\.(\d+)$/.exec(host);
  if (!m) return undefined;
  const last = Number(m[3]) + step;
  if (last > 254) return undefined;
  return `127.${m[1]}.${m[2]}.${last}`;
}

/** Start a simulator. Each instance is independent; many can run in one process. */
export async function startXapiSimulator(options: XapiSimulatorOptions = {}): Promise<XapiSimulator> {
  const host = options.host ?? "127.0.0.1";
  const username = options.username ?? "root";
  const password = options.password ?? randomBytes(18).toString("base64url");
  const poolHosts = Math.max(1, options.poolHosts ?? 2);
  const logger = options.logger ?? (() => undefined);
  const world = new World(
    {
      username,
      password,
      operationMs: options.operationMs ?? 5,
      cleanShutdownTimeoutMs: options.cleanShutdownTimeoutMs ?? 1_200_000,
      agentTimeScale: options.agentTimeScale ?? 1,
      slowAgentMs: options.slowAgentMs ?? 2000,
      eventBatchMs: Math.max(0, options.eventBatchMs ?? 0),
    },
    logger,
    options.migrationMs ?? 20,
    options.logger !== undefined,
  );
  const srSize = options.srSize ?? 200 * GiB;
  const hostMemory = options.hostMemory ?? 64 * GiB;
  const hostCpus = options.hostCpus ?? 8;

  // Pool 1's hosts share one port on consecutive loopback addresses, so HOST_IS_SLAVE can name
  // the master by its address alone, as XAPI does, and the client keeps its port. Where no such
  // alias can be bound (not 127.x, or a system with only 127.0.0.1) a member takes its own port
  // and HOST_IS_SLAVE names the master as address:port, which XAPI never does.
  const addresses = [host];
  for (let i = 1; i < poolHosts; i++) addresses.push(nextLoopback(host, i) ?? host);
  const pool1 = new XapiPool(world, { name: "pool1", hosts: poolHosts, addresses, sharedStorage: true, srSize, hostMemory, hostCpus });
  const masterEp = new Endpoint(world, { pool: pool1 });
  const port = await masterEp.listen(host, 0);
  const endpoints: Endpoint[] = [masterEp];
  const slaveUrls: string[] = [];
  for (let i = 1; i < poolHosts; i++) {
    const alias = addresses[i] ?? host;
    let slave = new Endpoint(world, { pool: pool1, masterAddress: host });
    try {
      if (alias === host) throw new Error("no alias");
      await slave.listen(alias, port);
    } catch {
      slave = new Endpoint(world, { pool: pool1, masterAddress: `${host}:${port}` });
      await slave.listen(host, 0);
    }
    endpoints.push(slave);
    slaveUrls.push(slave.url);
  }
  const pool2Address = nextLoopback(host, poolHosts) ?? host;
  const pool2 = new XapiPool(world, { name: "pool2", hosts: 1, addresses: [pool2Address], sharedStorage: false, srSize, hostMemory, hostCpus });
  let second = new Endpoint(world, { pool: pool2 });
  try {
    await second.listen(pool2Address, 0);
  } catch {
    second = new Endpoint(world, { pool: pool2 });
    await second.listen(host, 0);
  }
  endpoints.push(second);
  world.pools.push(pool1, pool2);
  world.setUrl(pool1, masterEp.url);
  world.setUrl(pool2, second.url);
  const slaveUrl = slaveUrls[0] ?? "";
  logger(`xapi-simulator: pool1 ${masterEp.url} (slave ${slaveUrl}), pool2 ${second.url}`);

  let closed = false;
  return {
    url: masterEp.url,
    slaveUrl,
    secondPoolUrl: second.url,
    username,
    password,
    faults: world.faults,
    guest(vmUuid: string): SimulatedGuest {
      if (!world.findVm(vmUuid)) throw new Error(`no VM with uuid ${vmUuid} in the simulator`);
      return world.guestOf(vmUuid);
    },
    leftovers: () => world.leftovers(),
    async close(): Promise<void> {
      if (closed) return;
      closed = true;
      world.faults.releaseHungTasks();
      for (const t of world.tasks.values()) t.cancel();
      await Promise.all(endpoints.map((e) => e.close()));
    },
  };
}
