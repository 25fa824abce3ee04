/**
 * virDomainState -> Nova power state, exactly Nova's `LIBVIRT_POWER_STATE`
 * (nova/virt/libvirt/guest.py), plus the managed-save rule the contract's suspend needs.
 */
import { PowerState } from "@virtkit/core";
import { DomainState } from "@virtkit/libvirt-rpc";

/** Nova's `LIBVIRT_POWER_STATE`. */
export const LIBVIRT_POWER_STATE: Readonly<Record<number, PowerState>> = {
  [DomainState.NOSTATE]: PowerState.NOSTATE,
  [DomainState.RUNNING]: PowerState.RUNNING,
  // Nova: "the domain is blocked on resource" is still running as far as the user is concerned.
  [DomainState.BLOCKED]: PowerState.RUNNING,
  [DomainState.PAUSED]: PowerState.PAUSED,
  // Nova: SHUTDOWN means "being shut down"; reported as SHUTDOWN as it will be in a moment.
  [DomainState.SHUTDOWN]: PowerState.SHUTDOWN,
  [DomainState.SHUTOFF]: PowerState.SHUTDOWN,
  [DomainState.CRASHED]: PowerState.CRASHED,
  [DomainState.PMSUSPENDED]: PowerState.SUSPENDED,
};

/**
 * The power state for a libvirt domain state. A shut-off domain with a managed-save image is
 * SUSPENDED: that is what `suspend` left behind, and `resume` starts it from the image.
 * An unknown state value is NOSTATE.
 */
export function toPowerState(domainState: number, hasManagedSave = false): PowerState {
  if (domainState === DomainState.SHUTOFF && hasManagedSave) return PowerState.SUSPENDED;
  return LIBVIRT_POWER_STATE[domainState] ?? PowerState.NOSTATE;
}
