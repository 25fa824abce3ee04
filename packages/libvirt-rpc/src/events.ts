// Domain event subscriptions (REMOTE_PROC_CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY) and the
// decoding of the MESSAGE packets that carry them. Subscriptions outlive a link: after a
// reconnect they are registered again and get new callback ids.

import type { RpcClient } from "./client.js";
import { Proc } from "./procedures.js";
import { DomainEventId, DomainEventType, type CallOptions, type Domain, type DomainLifecycleEvent } from "./types.js";
import { readDomain, writeDomain } from "./wire.js";
import type { XdrReader } from "./xdr.js";

/** Receives domain lifecycle events. */
export type DomainLifecycleListener = (event: DomainLifecycleEvent) => void;

/** A live subscription; `unsubscribe` deregisters it from the daemon. */
export interface EventSubscription {
  /** The daemon's current callback id (changes after a reconnect). */
  readonly callbackId: number;
  /** Stop receiving events. */
  unsubscribe(options?: CallOptions): Promise<void>;
}

const eventNames = new Map<number, string>(Object.entries(DomainEventType).map(([k, v]) => [v, k]));

/** Decode remote_domain_event_callback_lifecycle_msg. */
export function readLifecycleMsg(r: XdrReader): { callbackId: number; event: DomainLifecycleEvent } {
  const callbackId = r.int();
  const domain = readDomain(r);
  const event = r.int();
  const detail = r.int();
  r.done("domain lifecycle event");
  return { callbackId, event: { domain, event, eventName: eventNames.get(event) ?? `EVENT_${event}`, detail } };
}

class Subscription implements EventSubscription {
  callbackId = -1;
  active = true;

  constructor(
    readonly registry: EventRegistry,
    readonly eventId: number,
    readonly domain: Domain | null,
    readonly listener: DomainLifecycleListener,
  ) {}

  unsubscribe(options?: CallOptions): Promise<void> {
    return this.registry.unsubscribe(this, options);
  }
}

/** Keeps the domain event subscriptions of one logical connection. */
export class EventRegistry {
  private readonly subs = new Set<Subscription>();
  private readonly byCallback = new Map<number, Subscription>();
  private client: RpcClient | undefined;

  constructor(private readonly onListenerError: (err: unknown) => void = () => undefined) {}

  /** Number of active subscriptions. */
  get size(): number {
    return this.subs.size;
  }

  /** Route events of `client` here. */
  attach(client: RpcClient): void {
    this.client = client;
    this.byCallback.clear();
    client.onMessage = (proc, body) => this.onMessage(proc, body);
  }

  private onMessage(proc: number, body: XdrReader): void {
    if (proc !== Proc.DOMAIN_EVENT_CALLBACK_LIFECYCLE) return; // events we never asked for
    const { callbackId, event } = readLifecycleMsg(body);
    const sub = this.byCallback.get(callbackId);
    if (!sub?.active) return;
    try {
      sub.listener(event);
    } catch (err) {
      this.onListenerError(err);
    }
  }

  private async registerOn(client: RpcClient, sub: Subscription, options?: CallOptions): Promise<void> {
    const id = await client.call(
      Proc.CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY,
      (w) => {
        w.int(sub.eventId);
        w.optional(sub.domain, writeDomain);
      },
      (r) => r.int(),
      options,
    );
    sub.callbackId = id;
    if (this.client === client) this.byCallback.set(id, sub);
  }

  /** Register a lifecycle listener (optionally for one domain). */
  async subscribeLifecycle(
    client: RpcClient,
    listener: DomainLifecycleListener,
    domain: Domain | null,
    options?: CallOptions,
  ): Promise<EventSubscription> {
    const sub = new Subscription(this, DomainEventId.LIFECYCLE, domain, listener);
    await this.registerOn(client, sub, options);
    this.subs.add(sub);
    return sub;
  }

  /** @internal */
  async unsubscribe(sub: Subscription, options?: CallOptions): Promise<void> {
    if (!sub.active) return;
    sub.active = false;
    this.subs.delete(sub);
    this.byCallback.delete(sub.callbackId);
    const client = this.client;
    if (client && !client.closed) {
      await client.call(
        Proc.CONNECT_DOMAIN_EVENT_CALLBACK_DEREGISTER_ANY,
        (w) => w.int(sub.callbackId),
        null,
        options,
      );
    }
  }

  /** After a reconnect: register every subscription again on the new link. */
  async reregisterAll(client: RpcClient, options?: CallOptions): Promise<void> {
    this.attach(client);
    for (const sub of this.subs) await this.registerOn(client, sub, options);
  }
}
