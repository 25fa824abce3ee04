/**
 * Set admin password through the QEMU guest agent, after Nova's libvirt driver (seed 004):
 * which account, which guests can, and how libvirt's failures map to the contract's errors.
 * The password itself never reaches a message.
 */
import {
  AdminPasswordNotSupportedError,
  GuestAgentNotEnabledError,
  GuestAgentUnresponsiveError,
  HypervisorUnavailableError,
  InstanceNotFoundError,
  InstanceNotRunningError,
  OperationAbortedError,
  OperationTimeoutError,
  PasswordSetFailedError,
  UnsupportedOperationError,
  type Instance,
  type VirtkitError,
} from "@virtkit/core";
import { VirErrorNumber as E } from "@virtkit/libvirt-rpc";
import { libvirtMessage, mapLibvirtError, redact, virErrorCode, type ErrorContext } from "./error-map.js";
import { imagePropertyTrue } from "./validate.js";

/** Nova's `_can_set_admin_password`. */
export function checkCanSetAdminPassword(virtType: string, instance: Instance): void {
  // The test hypervisor stands in for a qemu guest: without the agent enabled in the image the
  // domain has no agent channel, so it is refused the same way.
  if (virtType === "kvm" || virtType === "qemu" || virtType === "test") {
    if (!imagePropertyTrue(instance.imageMeta.properties.hw_qemu_guest_agent)) {
      throw new GuestAgentNotEnabledError(instance.uuid);
    }
  } else {
    // The other hypervisors here have no agent path.
    throw new AdminPasswordNotSupportedError(`Set admin password is not supported with virt type ${virtType}`);
  }
}

/**
 * Refuses to send a password over a plain-TCP libvirt connection (`xxx+tcp://`): it would cross the
 * network unencrypted. Local (unix), TLS (`+tls`, or a remote URI without transport) and ssh
 * transports are fine; `allowPlainTcp` is the operator saying the network is trusted.
 */
export function checkPasswordTransport(uri: string, allowPlainTcp: boolean): void {
  if (passwordTransportAllowed(uri, allowPlainTcp)) return;
  // The capability is then not declared (capabilities.ts), so the refusal is the contract's for that.
  throw new UnsupportedOperationError("setAdminPassword", "libvirt", {
    detail:
      "the connection to libvirtd is plain TCP, so the password would cross the network unencrypted; " +
      "connect over unix, tls or ssh, or set the driver option allowPasswordOverTcp if the network is trusted",
  });
}

/** Whether a password may be sent over `uri` (see {@link checkPasswordTransport}). */
export function passwordTransportAllowed(uri: string, allowPlainTcp: boolean): boolean {
  const transport = /^[a-z][a-z0-9]*\+([a-z0-9]+):/i.exec(uri)?.[1]?.toLowerCase();
  return transport !== "tcp" || allowPlainTcp;
}

/** The account whose password is set: `os_admin_user`, else Administrator on Windows, else root. */
export function adminUser(instance: Instance): string {
  return (
    instance.imageMeta.properties.os_admin_user ||
    ((instance.osType ?? instance.imageMeta.properties.os_type) === "windows" ? "Administrator" : "root")
  );
}

/** libvirt's failure of virDomainSetUserPassword as the contract's error, secrets redacted. */
export function passwordError(instance: Instance, user: string, err: unknown, ctx: ErrorContext): VirtkitError {
  const mapped = mapLibvirtError(err, ctx);
  const cause = mapped.cause;
  switch (virErrorCode(err)) {
    case E.VIR_ERR_AGENT_UNRESPONSIVE:
      return new GuestAgentUnresponsiveError(instance.uuid, { cause });
    case E.VIR_ERR_OPERATION_INVALID:
      return new InstanceNotRunningError(instance.uuid, { cause });
    case E.VIR_ERR_NO_DOMAIN:
      return new InstanceNotFoundError(instance.uuid, { cause });
    case E.VIR_ERR_NO_SUPPORT:
    case E.VIR_ERR_OPERATION_UNSUPPORTED:
      return new AdminPasswordNotSupportedError(undefined, { cause });
    default:
      break;
  }
  if (mapped instanceof OperationTimeoutError || mapped instanceof OperationAbortedError) return mapped;
  if (mapped instanceof HypervisorUnavailableError || mapped instanceof UnsupportedOperationError) return mapped;
  const secrets = ctx.secrets;
  const reason = redact(
    `error from libvirt while setting the password for user "${user}": [Error Code ${virErrorCode(err) ?? "?"}] ${libvirtMessage(err, secrets)}`,
    secrets,
  );
  return new PasswordSetFailedError(instance.uuid, reason, { cause });
}
