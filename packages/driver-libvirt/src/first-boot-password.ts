/**
 * An admin password given at spawn (`SpawnRequest.adminPassword`, "injected at first boot where
 * the driver can"). Nova's libvirt driver injects it only by writing into the guest's disk image
 * (`inject_password`, off by default, and impossible over a remote libvirt connection); virtkit's
 * libvirt driver has no file injection and no config drive, so the one channel it has is the one
 * `setAdminPassword` uses: the QEMU guest agent. The password is set through the agent as soon as
 * the agent answers after the first boot, within the spawn's deadline, and a spawn whose image
 * enables no agent is refused typed before anything is created: never a silent loss.
 */
import { GuestAgentUnresponsiveError, sleep, type Instance, type Secret } from "@virtkit/core";
import { VirErrorNumber as E, type CallOptions } from "@virtkit/libvirt-rpc";
import { adminUser, checkCanSetAdminPassword, checkPasswordTransport, passwordError } from "./admin-password.js";
import type { ErrorContext } from "./error-map.js";
import { virErrorCode } from "./error-map.js";
import type { Guest } from "./guest.js";

/** Refuses, before the spawn creates anything, a first-boot password this driver could not set. */
export function checkFirstBootPassword(
  virtType: string,
  uri: string,
  allowPlainTcp: boolean,
  instance: Instance,
): void {
  // GuestAgentNotEnabledError without hw_qemu_guest_agent; AdminPasswordNotSupportedError elsewhere.
  checkCanSetAdminPassword(virtType, instance);
  checkPasswordTransport(uri, allowPlainTcp);
}

/**
 * Sets the password through the guest agent once it answers: an unresponsive agent right after
 * boot is the guest still starting, so it is asked again (every `retryMs`) until the spawn's
 * signal ends the wait; any other failure is final. The password is never in an error.
 */
export async function setFirstBootPassword(
  guest: Guest,
  instance: Instance,
  password: Secret,
  call: CallOptions,
  ctx: () => ErrorContext,
  retryMs = 1_000,
): Promise<void> {
  const user = adminUser(instance);
  const secret = password.reveal();
  for (;;) {
    try {
      await guest.api.domainSetUserPassword(guest.dom, user, secret, 0, call);
      return;
    } catch (err) {
      if (virErrorCode(err) !== E.VIR_ERR_AGENT_UNRESPONSIVE || call.signal?.aborted) {
        throw passwordError(instance, user, err, { ...ctx(), secrets: [secret] });
      }
    }
    try {
      await sleep(retryMs, call.signal, "first-boot password: waiting for the guest agent");
    } catch (err) {
      throw new GuestAgentUnresponsiveError(instance.uuid, { cause: err });
    }
  }
}
