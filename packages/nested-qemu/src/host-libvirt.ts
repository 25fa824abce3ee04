/**
 * The environment's own libvirt connection to one nested host: guest-agent commands
 * (virDomainQemuAgentCommand) and domain states. It is never the driver's connection, so what it
 * reads about a guest does not come through the code under test; it replaces a `docker exec` of
 * `virsh` per question (about 0.25 s each on a 2-core machine) with one RPC on a kept link.
 */
import { DomainState, LibvirtConnection, type CallOptions, type Domain, isNoDomain } from "@virtkit/libvirt-rpc";
import type { WaitOptions } from "./abortable.js";

/** What `virsh domstate` prints for each virDomainState. */
const STATE_WORDS: Readonly<Record<number, string>> = {
  [DomainState.NOSTATE]: "no state",
  [DomainState.RUNNING]: "running",
  [DomainState.BLOCKED]: "idle",
  [DomainState.PAUSED]: "paused",
  [DomainState.SHUTDOWN]: "in shutdown",
  [DomainState.SHUTOFF]: "shut off",
  [DomainState.CRASHED]: "crashed",
  [DomainState.PMSUSPENDED]: "pmsuspended",
};

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** One lazily opened, reconnecting link to a host's libvirtd; `close()` ends it. */
export class HostLibvirt {
  #opening: Promise<LibvirtConnection> | undefined;
  #closed = false;

  constructor(
    private readonly uri: string,
    private readonly name: string,
  ) {}

  #connection(options: WaitOptions): Promise<LibvirtConnection> {
    if (this.#closed) return Promise.reject(new Error(`the connection to ${this.name} is closed`));
    const opening =
      this.#opening ??
      LibvirtConnection.open(this.uri, {
        reconnect: true,
        connectTimeoutMs: Math.min(options.timeoutMs ?? 30_000, 30_000),
      }).catch((err: unknown) => {
        this.#opening = undefined;
        throw err;
      });
    this.#opening = opening;
    return opening;
  }

  async #domain(conn: LibvirtConnection, domain: string, opts: CallOptions): Promise<Domain> {
    return UUID_RE.test(domain) ? conn.domainLookupByUuid(domain, opts) : conn.domainLookupByName(domain, opts);
  }

  /**
   * Sends `command` (one JSON agent command) to the domain's agent; libvirtd waits for the agent
   * up to `timeoutMs` (whole seconds, at least 1). Resolves with the agent's JSON reply.
   */
  async agentCommand(domain: string, command: string, options: WaitOptions = {}): Promise<string> {
    const timeoutMs = options.timeoutMs ?? 30_000;
    const opts: CallOptions = { timeoutMs: timeoutMs + 5_000, ...(options.signal ? { signal: options.signal } : {}) };
    const conn = await this.#connection(options);
    const dom = await this.#domain(conn, domain, opts);
    const reply = await conn.qemuDomainAgentCommand(dom, command, Math.max(1, Math.ceil(timeoutMs / 1000)), 0, opts);
    return reply ?? "";
  }

  /** The domain's state as `virsh domstate` words it, or undefined when this host has no such domain. */
  async domainState(domain: string, options: WaitOptions = {}): Promise<string | undefined> {
    const opts: CallOptions = {
      timeoutMs: options.timeoutMs ?? 15_000,
      ...(options.signal ? { signal: options.signal } : {}),
    };
    const conn = await this.#connection(options);
    try {
      const { state } = await conn.domainGetState(await this.#domain(conn, domain, opts), 0, opts);
      return STATE_WORDS[state] ?? `state ${state}`;
    } catch (err) {
      if (isNoDomain(err)) return undefined;
      throw err;
    }
  }

  /** Closes the link (idempotent; later calls fail). */
  async close(): Promise<void> {
    this.#closed = true;
    const opening = this.#opening;
    this.#opening = undefined;
    const conn = await opening?.catch(() => undefined);
    await conn?.close({ timeoutMs: 2_000 }).catch(() => undefined);
  }
}
