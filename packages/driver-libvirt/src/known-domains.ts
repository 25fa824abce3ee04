/**
 * Which domains exist on the daemon, learnt once per connection (one listing) and kept true by the
 * lifecycle events since (Nova's host keeps its knowledge the same way: asked once, invalidated by
 * events). It lets a spawn skip the look-up of a uuid that is known to be free, and a destroy skip
 * reading back a definition this driver wrote itself and nobody changed since.
 *
 * The knowledge is only ever used to skip a call whose answer is known; whenever it may be stale
 * (not subscribed, a re-opened link, a listing not finished) the caller asks the daemon as before.
 */
import { DomainEventType, type CallOptions, type DomainLifecycleEvent } from "@virtkit/libvirt-rpc";
import type { LibvirtApi } from "./libvirt-connection.js";

/** virDomainEventDefinedDetailType: VIR_DOMAIN_EVENT_DEFINED_ADDED (a new definition). */
const DEFINED_ADDED = 0;

/** What may exist of one domain: a persistent definition, a running (or paused) process. */
interface Presence {
  persistent: boolean;
  active: boolean;
}

/** The daemon's domains as one connection's listing plus the events since. */
export class KnownDomains {
  /** Every uuid that may exist; absent means known not to exist (while {@link valid}). */
  readonly #present = new Map<string, Presence>();
  /** Domains whose definition is the one this driver wrote at spawn (no rescue record), unchanged. */
  readonly #plain = new Set<string>();
  /** The link the listing was taken on; undefined while none is trusted. */
  #on: { readonly api: LibvirtApi; readonly generation: number } | undefined;
  #listing: Promise<void> | undefined;
  /** Uuids an event named while a listing was in flight (the listing may predate the event). */
  #touched: Set<string> | undefined;

  /**
   * Takes the listing on `api`. Call only while lifecycle events are subscribed on it: events that
   * arrive meanwhile are merged (a uuid stays "may exist" when in doubt). Trusted only when the link
   * was not re-opened while listing (the events of a re-opened link are registered before its first
   * call, so a listing taken on it after that is complete).
   */
  learn(api: LibvirtApi, call: CallOptions): Promise<void> {
    this.#listing ??= this.#learn(api, call).finally(() => {
      this.#listing = undefined;
    });
    return this.#listing;
  }

  async #learn(api: LibvirtApi, call: CallOptions): Promise<void> {
    const generation = api.reconnectCount ?? 0;
    this.#on = undefined;
    this.#plain.clear();
    const touched = (this.#touched = new Set());
    try {
      const domains = await api.connectListAllDomains(0, call);
      if ((api.reconnectCount ?? 0) !== generation) return;
      const listed = new Set<string>();
      // The listing only adds (whether a listed domain is persistent is not asked: assume so).
      for (const d of domains) {
        listed.add(d.uuid);
        const p = this.#present.get(d.uuid);
        if (p) p.active ||= d.id >= 0;
        else this.#present.set(d.uuid, { persistent: true, active: d.id >= 0 });
      }
      // Gone since an earlier listing (events lost while the link was down): what neither the
      // listing nor an event since it began names does not exist.
      for (const uuid of this.#present.keys()) if (!listed.has(uuid) && !touched.has(uuid)) this.#present.delete(uuid);
      this.#on = { api, generation };
    } finally {
      if (this.#touched === touched) this.#touched = undefined;
    }
  }

  /** True while the listing and the events since describe the daemon behind `api`. */
  valid(api: LibvirtApi): boolean {
    const on = this.#on;
    return on !== undefined && on.api === api && on.generation === (api.reconnectCount ?? 0);
  }

  /** False only when `uuid` is known not to exist on the daemon behind `api`; else ask it. */
  mayExist(api: LibvirtApi, uuid: string): boolean {
    return !this.valid(api) || this.#present.has(uuid);
  }

  /** The spawn that defined `uuid` on `api` wrote a definition without a rescue record. */
  definedPlain(api: LibvirtApi, uuid: string): void {
    if (this.valid(api)) this.#plain.add(uuid);
  }

  /** True when the definition of `uuid` is known to be the plain one a spawn wrote. */
  isPlain(api: LibvirtApi, uuid: string): boolean {
    return this.valid(api) && this.#plain.has(uuid);
  }

  /** The definition of `uuid` may change (rescue, revert, migration...): read it when it matters. */
  forgetPlain(uuid: string): void {
    this.#plain.delete(uuid);
  }

  /** Stops trusting anything (the link is closed or events stopped). */
  reset(): void {
    this.#on = undefined;
    this.#present.clear();
    this.#plain.clear();
  }

  /** Applies one lifecycle event (every event of every domain on the subscribed link). */
  onEvent(e: DomainLifecycleEvent): void {
    const uuid = e.domain.uuid;
    this.#touched?.add(uuid);
    let p = this.#present.get(uuid);
    switch (e.event) {
      case DomainEventType.DEFINED:
        // Anything but a brand-new definition (updated, renamed, restored from a snapshot) may
        // carry another disk layout: no longer the spawn's.
        if (e.detail !== DEFINED_ADDED) this.#plain.delete(uuid);
        if (p) p.persistent = true;
        else this.#present.set(uuid, { persistent: true, active: false });
        return;
      case DomainEventType.UNDEFINED:
        this.#plain.delete(uuid);
        if (p) {
          p.persistent = false;
          if (!p.active) this.#present.delete(uuid);
        }
        return;
      case DomainEventType.STOPPED:
        if (p) {
          p.active = false;
          if (!p.persistent) this.#present.delete(uuid);
        }
        return;
      default:
        // Started, suspended, resumed, crashed...: a process exists (a transient domain starts
        // without being defined).
        if (!p) this.#present.set(uuid, (p = { persistent: false, active: true }));
        else p.active = true;
    }
  }
}
