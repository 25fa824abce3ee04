/**
 * libvirt failures -> virtkit's typed errors. The original error stays as `cause` (redacted when
 * a secret could be in it), so nothing but core's errors crosses the package boundary.
 */
import {
  GuestAgentUnresponsiveError,
  HypervisorUnavailableError,
  InstanceExistsError,
  InstanceNotFoundError,
  InvalidInputError,
  InvalidStateError,
  OperationAbortedError,
  OperationTimeoutError,
  SnapshotNotFoundError,
  UnsupportedOperationError,
  VirtkitError,
} from "@virtkit/core";
import {
  LibvirtAbortedError,
  LibvirtAuthUnsupportedError,
  LibvirtConnectionClosedError,
  LibvirtProtocolError,
  LibvirtTimeoutError,
  LibvirtUriError,
  LibvirtVersionSkewError,
  VirErrorNumber as E,
  findLibvirtError,
  redact,
  redactLibvirtError,
} from "@virtkit/libvirt-rpc";
import { XmlParseError } from "./xml.js";

/** Where an error happened, for the typed error's fields. */
export interface ErrorContext {
  /** The instance uuid (or name) the call was about. */
  readonly instanceId?: string;
  /** What was attempted, e.g. `pause`. */
  readonly operation: string;
  /** Capability name for `UnsupportedOperationError` (default: `operation`). */
  readonly capability?: string;
  /** The power state name, for `InvalidStateError` (the driver reads it before mapping). */
  readonly stateName?: string;
  /** The host (libvirt URI) the driver talks to. */
  readonly host?: string;
  /** The snapshot the call was about, for `SnapshotNotFoundError`. */
  readonly snapshotId?: string;
  /** Strings that must not appear in any message (passwords). */
  readonly secrets?: readonly string[];
}

const DRIVER = "libvirt";

// One redaction for the client and the driver: libvirt-rpc's (the driver's secrets, the URI's query).
export { redact, redactLibvirtError };

/** The daemon's message without secrets (or a generic one). */
export function libvirtMessage(err: unknown, secrets?: readonly string[]): string {
  const lv = findLibvirtError(err);
  const msg = lv ? lv.message : err instanceof Error ? err.message : String(err);
  return redact(msg, secrets);
}

/** The daemon's error number, if `err` (or a cause) is a daemon error. */
export function virErrorCode(err: unknown): number | undefined {
  return findLibvirtError(err)?.virErrorCode;
}

/**
 * Translates `err` into a virtkit error. Virtkit errors pass through unchanged. The result's
 * `cause` is the original error, or a redacted copy when `ctx.secrets` is given.
 */
export function mapLibvirtError(err: unknown, ctx: ErrorContext): VirtkitError {
  if (err instanceof VirtkitError) return err;
  const secrets = ctx.secrets;
  const lv = findLibvirtError(err);
  const cause = secrets && secrets.length > 0 ? (lv ? redactLibvirtError(lv, secrets) : undefined) : err;
  const options = { cause };
  const id = ctx.instanceId ?? "unknown";
  const host = ctx.host ?? DRIVER;
  const message = libvirtMessage(err, secrets);
  const capability = ctx.capability ?? ctx.operation;

  if (err instanceof LibvirtVersionSkewError) {
    return new UnsupportedOperationError(capability, DRIVER, { ...options, detail: message });
  }
  if (lv) {
    switch (lv.virErrorCode) {
      case E.VIR_ERR_NO_DOMAIN:
        return new InstanceNotFoundError(id, options);
      case E.VIR_ERR_OPERATION_INVALID:
        return new InvalidStateError(id, ctx.operation, ctx.stateName ?? "UNKNOWN", options);
      case E.VIR_ERR_NO_SUPPORT:
      case E.VIR_ERR_OPERATION_UNSUPPORTED:
      case E.VIR_ERR_ARGUMENT_UNSUPPORTED:
        return new UnsupportedOperationError(capability, DRIVER, { ...options, detail: message });
      case E.VIR_ERR_DOM_EXIST:
        return new InstanceExistsError(id, options);
      case E.VIR_ERR_NO_DOMAIN_SNAPSHOT:
        return new SnapshotNotFoundError(id, ctx.snapshotId ?? "unknown", options);
      case E.VIR_ERR_AGENT_UNRESPONSIVE:
        return new GuestAgentUnresponsiveError(id, options);
      case E.VIR_ERR_OPERATION_TIMEOUT:
        return new OperationTimeoutError(ctx.operation, 0, options);
      case E.VIR_ERR_OPERATION_ABORTED:
        return new OperationAbortedError(ctx.operation, options);
      case E.VIR_ERR_INVALID_ARG:
      case E.VIR_ERR_XML_ERROR:
      case E.VIR_ERR_XML_DETAIL:
      case E.VIR_ERR_CONFIG_UNSUPPORTED:
      case E.VIR_ERR_XML_INVALID_SCHEMA:
        return new InvalidInputError(ctx.operation, message, options);
      case E.VIR_ERR_NO_CONNECT:
      case E.VIR_ERR_INVALID_CONN:
      case E.VIR_ERR_RPC:
      case E.VIR_ERR_AUTH_FAILED:
      case E.VIR_ERR_AUTH_CANCELLED:
      case E.VIR_ERR_AUTH_UNAVAILABLE:
      case E.VIR_ERR_NO_SERVER:
        return new HypervisorUnavailableError(host, message, options);
      default:
        return new VirtkitError(`libvirt ${ctx.operation} failed on ${id}: ${message}`, options);
    }
  }
  if (err instanceof LibvirtTimeoutError) return new OperationTimeoutError(ctx.operation, err.timeoutMs, options);
  if (err instanceof LibvirtAbortedError) return new OperationAbortedError(ctx.operation, options);
  if (
    err instanceof LibvirtConnectionClosedError ||
    err instanceof LibvirtProtocolError ||
    err instanceof LibvirtAuthUnsupportedError
  ) {
    return new HypervisorUnavailableError(host, message, options);
  }
  if (err instanceof LibvirtUriError) return new InvalidInputError("uri", message, options);
  // The daemon's XML (a domain, a snapshot, capabilities) that does not parse: the daemon is not answering as libvirt does.
  if (err instanceof XmlParseError)
    return new HypervisorUnavailableError(host, `libvirtd answered XML that does not parse: ${message}`, options);
  return new VirtkitError(`libvirt ${ctx.operation} failed on ${id}: ${message}`, options);
}
