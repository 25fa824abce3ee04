/**
 * The host side of the driver (Nova's `nova/virt/libvirt/host.py`): one connection to libvirtd,
 * opened once and shared, what the daemon supports (learnt once per connection, forgotten when the
 * link is re-opened), and the lifecycle event subscription.
 */
import { HypervisorUnavailableError, redactOptions, raceSignal } from "@virtkit/core";
import type { CallOptions, DomainLifecycleEvent, EventSubscription } from "@virtkit/libvirt-rpc";
import { libvirtMessage } from "./error-map.js";
import { KnownDomains } from "./known-domains.js";
import { openRpcConnection, type LibvirtApi, type LibvirtConnector } from "./libvirt-connection.js";

/** What the daemon was found to support, per connection. `undefined`: not learnt yet. */
export interface DaemonFacts {
  /** Whether `virDomainUndefineFlags` takes VIR_DOMAIN_UNDEFINE_NVRAM (the test driver does not). */
  undefineNvram: boolean | undefined;
}

/** Options of {@link LibvirtHost}. */
export interface LibvirtHostOptions {
  readonly uri: string;
  readonly connector?: LibvirtConnector;
  readonly connectOptions?: Readonly<Record<string, unknown>>;
  readonly timeoutMs: number;
  readonly keepaliveIntervalSec?: number;
  readonly onEvent: (event: DomainLifecycleEvent) => void;
  readonly log: (level: "info" | "warn" | "debug", message: string, fields?: Record<string, unknown>) => void;
}

/** One libvirtd connection and what is known about the daemon behind it. */
export class LibvirtHost {
  readonly #options: LibvirtHostOptions;
  #conn: LibvirtApi | undefined;
  #connecting: Promise<LibvirtApi> | undefined;
  #subscription: EventSubscription | undefined;
  #facts: { readonly api: LibvirtApi; readonly generation: number; readonly facts: DaemonFacts } | undefined;
  #closed = false;
  /** The daemon's domains, from one listing and the events since (see known-domains.ts). */
  readonly #known = new KnownDomains();

  constructor(options: LibvirtHostOptions) {
    this.#options = options;
  }

  /** The connection URI with any password or secret query value masked, for errors and logs. */
  get safeUri(): string {
    return redactOptions({ uri: this.#options.uri }).uri ?? "";
  }

  /** True after {@link close}. */
  get closed(): boolean {
    return this.#closed;
  }

  /** True while lifecycle events are subscribed (what keeps remembered domain handles fresh). */
  get subscribed(): boolean {
    return this.#subscription !== undefined && !this.#closed;
  }

  /** The open connection, if any (for best-effort work that must not open one). */
  get current(): LibvirtApi | undefined {
    return this.#conn;
  }

  /** The connection, opened on first use (single flight). */
  async api(signal?: AbortSignal): Promise<LibvirtApi> {
    if (this.#closed) throw new HypervisorUnavailableError(this.safeUri, "the driver was cleaned up");
    if (this.#conn) return this.#conn;
    // Shared by every caller and kept for the connection's life (its reconnects reuse the options),
    // so it runs under its own deadline: one caller's signal must not doom later reconnects.
    this.#connecting ??= this.#open().finally(() => {
      this.#connecting = undefined;
    });
    return raceSignal(this.#connecting, signal);
  }

  async #open(): Promise<LibvirtApi> {
    const connector = this.#options.connector ?? openRpcConnection;
    const keepalive = this.#options.keepaliveIntervalSec;
    const timeoutMs = this.#options.timeoutMs;
    try {
      const conn = await connector(this.#options.uri, {
        ...this.#options.connectOptions,
        timeoutMs,
        connectTimeoutMs: Math.min(timeoutMs, 30_000),
        ...(keepalive === undefined
          ? {}
          : { keepalive: keepalive > 0 ? { intervalMs: keepalive * 1000, count: 5 } : false }),
        reconnect: true,
        onListenerError: (err: unknown) => this.#options.log("warn", "lifecycle listener failed", { err }),
      });
      if (this.#closed) {
        await conn.close({ timeoutMs: 5_000 }).catch(() => undefined);
        throw new Error("the driver was cleaned up while connecting");
      }
      this.#conn = conn;
      return conn;
    } catch (err) {
      throw new HypervisorUnavailableError(this.safeUri, libvirtMessage(err), { cause: err });
    }
  }

  /** What the daemon behind `api` supports, as learnt so far on this link. */
  facts(api: LibvirtApi): DaemonFacts {
    const generation = api.reconnectCount ?? 0;
    const f = this.#facts;
    if (f && f.api === api && f.generation === generation) return f.facts;
    // A re-opened link may lead to an upgraded daemon: learn again.
    const facts: DaemonFacts = { undefineNvram: undefined };
    this.#facts = { api, generation, facts };
    return facts;
  }

  /**
   * Registers for lifecycle events once (re-registered by the connection after a reconnect), then
   * lists the daemon's domains once, which the events keep true from then on.
   */
  async subscribe(api: LibvirtApi, call: CallOptions): Promise<void> {
    if (this.#subscription) return;
    try {
      this.#subscription = await api.domainEventLifecycleRegister((e) => {
        this.#known.onEvent(e);
        this.#options.onEvent(e);
      }, call);
    } catch (err) {
      this.#options.log("warn", "lifecycle events unavailable", { err: libvirtMessage(err) });
      return;
    }
    // Without the listing every spawn asks the daemon whether its uuid is taken, as before.
    await this.#known.learn(api, call).catch((err: unknown) =>
      this.#options.log("debug", "domain listing failed; uuids are looked up", { err: libvirtMessage(err) }),
    );
  }

  /**
   * False only when no domain with `uuid` exists on the daemon behind `api`, as the listing and
   * the events since say; true means ask. After a re-opened link the listing is taken again in
   * the background (events of the gap are lost), and the daemon is asked until it is back.
   */
  mayExist(api: LibvirtApi, uuid: string): boolean {
    if (!this.subscribed) return true;
    if (this.#known.valid(api)) return this.#known.mayExist(api, uuid);
    void this.#known.learn(api, { timeoutMs: this.#options.timeoutMs }).catch(() => undefined);
    return true;
  }

  /** A spawn on `api` defined `uuid` with a definition holding nothing but its own disk. */
  definedPlain(api: LibvirtApi, uuid: string): void {
    if (this.subscribed) this.#known.definedPlain(api, uuid);
  }

  /** True when `uuid`'s definition is known to be the plain one a spawn on `api` wrote. */
  isPlain(api: LibvirtApi, uuid: string): boolean {
    return this.subscribed && this.#known.isPlain(api, uuid);
  }

  /** `uuid`'s definition may change now: read it back when it matters. */
  forgetPlain(uuid: string): void {
    this.#known.forgetPlain(uuid);
  }

  /** Unsubscribes and closes the connection; the host cannot be used afterwards. */
  async close(call: CallOptions): Promise<void> {
    const conn = this.#conn;
    const sub = this.#subscription;
    this.#subscription = undefined;
    this.#conn = undefined;
    this.#closed = true;
    this.#known.reset();
    if (!conn) return;
    try {
      await sub?.unsubscribe(call);
    } catch {
      // Closing anyway.
    }
    await conn.close(call);
  }
}
