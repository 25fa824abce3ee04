/**
 * Lifecycle events from the VM events of the client's one `event.from` stream (the one its Async
 * tasks are awaited through), joined at initHost (its first answer is the baseline, announced as
 * nothing) and left at cleanupHost.
 * Each power-state change of a VM on this host becomes the transition Nova's event.py names; a
 * rescue VM's changes are announced for the instance it rescues.
 */
import type { LifecycleTransition } from "@virtkit/core";
import { bool, effectivePower, isOnHost, str, vmKind, type XapiRecord } from "./vm-record.js";
import type { XapiClient, XapiEvent } from "./xapi-client.js";

/** What the loop remembers of one VM. */
interface Seen {
  readonly power: string;
  readonly mine: boolean;
  readonly instanceUuid: string;
}

/** Receives one transition. */
export type TransitionSink = (instanceUuid: string, transition: LifecycleTransition) => void;

/** The transition for a VM that was `prev` and is now `cur` (both as this host sees them). */
export function transitionFor(prev: Seen | undefined, cur: Seen): LifecycleTransition | undefined {
  const power = cur.power.toLowerCase();
  if (!prev) return cur.mine && power === "running" ? "STARTED" : undefined;
  if (!prev.mine && cur.mine) return power === "running" ? "STARTED" : undefined;
  if (prev.mine && !cur.mine) return prev.power.toLowerCase() === "running" ? "MIGRATION_COMPLETED" : undefined;
  if (!cur.mine) return undefined;
  const before = prev.power.toLowerCase();
  if (before === power) return undefined;
  switch (power) {
    case "running":
      return before === "paused" ? "RESUMED" : "STARTED";
    case "halted":
      return "STOPPED";
    case "paused":
      return "PAUSED";
    case "suspended":
      return "SUSPENDED";
    case "crashed":
      return "CRASHED";
    default:
      return undefined;
  }
}

/** The event loop of one driver. */
export class VmEventLoop {
  readonly #seen = new Map<string, Seen>();
  /** instance uuid -> the ref of its VM / of its rescue VM, kept from the events (a lookup hint, verified by the caller). */
  readonly #instances = new Map<string, string>();
  readonly #rescues = new Map<string, string>();
  /** The pool's templates as the stream last showed them (spawn clones one without asking XAPI for it). */
  readonly #templates = new Map<string, XapiRecord>();
  #leave: (() => void) | undefined;

  constructor(
    private readonly client: XapiClient,
    private readonly hostRef: string,
    private readonly sink: TransitionSink,
    private readonly onError: (err: unknown) => void,
  ) {}

  /** Joins the client's event stream; resolves once the baseline is in. */
  async start(signal: AbortSignal): Promise<void> {
    this.#leave = await this.client.watch(
      {
        classes: ["vm"],
        onEvents: (events, baseline) => {
          for (const ev of events) this.#apply(ev, !baseline);
        },
        onError: (err) => this.onError(err),
      },
      { signal },
    );
  }

  /** The VM ref last seen for the instance's VM (a hint: the caller verifies it). */
  instanceRef(instanceUuid: string): string | undefined {
    return this.#instances.get(instanceUuid);
  }

  /** The ref last seen for the instance's rescue VM. */
  rescueRef(instanceUuid: string): string | undefined {
    return this.#rescues.get(instanceUuid);
  }

  /** A template of this name as last seen on the stream, if any. */
  template(name: string): { readonly ref: string; readonly rec: XapiRecord } | undefined {
    for (const [ref, rec] of this.#templates) if (str(rec, "name_label") === name) return { ref, rec };
    return undefined;
  }

  async stop(): Promise<void> {
    this.#leave?.();
    this.#leave = undefined;
  }

  #apply(ev: XapiEvent, announce: boolean): void {
    if (ev.class.toLowerCase() !== "vm") return;
    if (ev.operation === "del") {
      const gone = this.#seen.get(ev.ref);
      this.#seen.delete(ev.ref);
      this.#templates.delete(ev.ref);
      if (gone) this.#forget(gone.instanceUuid, ev.ref);
      return;
    }
    const rec = ev.snapshot as XapiRecord | undefined;
    if (!rec) return;
    if (bool(rec, "is_a_template")) this.#templates.set(ev.ref, rec);
    else this.#templates.delete(ev.ref);
    const kind = vmKind(rec);
    if (kind.kind === "other") {
      const was = this.#seen.get(ev.ref);
      this.#seen.delete(ev.ref);
      if (was) this.#forget(was.instanceUuid, ev.ref);
      return;
    }
    (kind.kind === "rescue" ? this.#rescues : this.#instances).set(kind.instanceUuid, ev.ref);
    const cur: Seen = { power: effectivePower(rec), mine: isOnHost(rec, this.hostRef), instanceUuid: kind.instanceUuid };
    const prev = this.#seen.get(ev.ref);
    this.#seen.set(ev.ref, cur);
    if (!announce) return;
    const t = transitionFor(prev, cur);
    if (t) this.sink(cur.instanceUuid, t);
  }

  #forget(instanceUuid: string, ref: string): void {
    if (this.#instances.get(instanceUuid) === ref) this.#instances.delete(instanceUuid);
    if (this.#rescues.get(instanceUuid) === ref) this.#rescues.delete(instanceUuid);
  }
}
