/**
 * libvirt domain lifecycle events -> the contract's lifecycle transitions, after Nova's
 * `Host._event_lifecycle_callback` (nova/virt/libvirt/host.py).
 */
import type { LifecycleTransition } from "@virtkit/core";
import { DomainEventType } from "@virtkit/libvirt-rpc";

/** VIR_DOMAIN_EVENT_SUSPENDED_POSTCOPY. */
const SUSPENDED_POSTCOPY = 7;
/** VIR_DOMAIN_EVENT_STOPPED_* details the mapping looks at. */
const STOPPED_CRASHED = 2;
const STOPPED_MIGRATED = 3;
const STOPPED_SAVED = 4;

/**
 * The transition for a libvirt lifecycle event and detail, or `undefined` for events with no
 * power-state meaning (DEFINED, UNDEFINED, SHUTDOWN "guest is shutting down", ...).
 */
export function toLifecycleTransition(event: number, detail: number): LifecycleTransition | undefined {
  switch (event) {
    case DomainEventType.STARTED:
      return "STARTED";
    case DomainEventType.STOPPED:
      if (detail === STOPPED_CRASHED) return "CRASHED";
      // A managed save (the contract's suspend) stops the domain with its memory on disk.
      if (detail === STOPPED_SAVED) return "SUSPENDED";
      if (detail === STOPPED_MIGRATED) return "MIGRATION_COMPLETED";
      return "STOPPED";
    case DomainEventType.SUSPENDED:
      if (detail === SUSPENDED_POSTCOPY) return "POSTCOPY_STARTED";
      // Anything else, including SUSPENDED_MIGRATED (the pause before the switch-over), is a pause;
      // completion is reported when the source domain stops with STOPPED_MIGRATED.
      return "PAUSED";
    case DomainEventType.RESUMED:
      return "RESUMED";
    case DomainEventType.PMSUSPENDED:
      return "SUSPENDED";
    case DomainEventType.CRASHED:
      return "CRASHED";
    default:
      return undefined;
  }
}
