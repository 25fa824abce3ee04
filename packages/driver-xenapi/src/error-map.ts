/**
 * XAPI failures as the contract's typed errors. The XapiError stays the `cause`, so its
 * `xapiCode` and (masked) `xapiParams` remain for diagnosis; nothing else about the call is kept.
 */
import {
  HypervisorUnavailableError,
  InstanceNotFoundError,
  InsufficientStorageError,
  InvalidInputError,
  InvalidStateError,
  OperationAbortedError,
  OperationTimeoutError,
  StorageUnavailableError,
  VirtkitError,
} from "@virtkit/core";
import { XapiError, XapiTransportError } from "./xapi-error.js";
import { XmlRpcParseError } from "./xml-rpc.js";

/** What the failing operation was about. */
export interface ErrorContext {
  /** The contract operation (`pause`, `spawn`, ...). */
  readonly operation: string;
  /** The instance uuid, when the operation is about one. */
  readonly instanceId?: string;
  /** The host (URL origin) the driver talks to. */
  readonly host?: string;
}

/** XAPI's lower-case power states as the contract's state names. */
const POWER_NAMES: Readonly<Record<string, string>> = {
  halted: "SHUTDOWN",
  running: "RUNNING",
  paused: "PAUSED",
  suspended: "SUSPENDED",
  crashed: "CRASHED",
};

/** Maps any failure of a XAPI call to a core error (core errors pass through unchanged). */
export function mapXapiError(err: unknown, ctx: ErrorContext): VirtkitError {
  if (err instanceof VirtkitError) return err;
  if (err instanceof OperationTimeoutError || err instanceof OperationAbortedError) return err;
  const host = ctx.host ?? "xapi";
  const id = ctx.instanceId ?? "unknown";
  if (err instanceof XapiTransportError) return new HypervisorUnavailableError(host, err.message, { cause: err });
  if (err instanceof XmlRpcParseError) return new HypervisorUnavailableError(host, `the host answered malformed XML-RPC: ${err.message}`, { cause: err });
  if (!(err instanceof XapiError)) {
    return new HypervisorUnavailableError(host, `${ctx.operation} failed unexpectedly`, { cause: err });
  }
  const p = err.xapiParams;
  switch (err.xapiCode) {
    case "VM_BAD_POWER_STATE": {
      const actual = (p[2] ?? "").toLowerCase();
      return new InvalidStateError(id, ctx.operation, POWER_NAMES[actual] ?? (actual || "in another state"), { cause: err });
    }
    case "OTHER_OPERATION_IN_PROGRESS":
    case "OPERATION_NOT_ALLOWED":
    case "VM_IS_TEMPLATE":
    case "VM_HAS_PCI_ATTACHED":
      return new InvalidStateError(id, ctx.operation, err.xapiCode.toLowerCase().replace(/_/g, " "), { cause: err });
    case "HANDLE_INVALID":
    case "UUID_INVALID":
      if ((p[0] ?? "").toUpperCase() === "VM" || p[0] === undefined) return new InstanceNotFoundError(id, { cause: err });
      return new HypervisorUnavailableError(host, `${ctx.operation}: a ${p[0]} vanished during the call`, { cause: err });
    case "SR_FULL":
      return new InsufficientStorageError(p[2] ?? "default SR", "the SR is full", { cause: err });
    case "SR_NOT_ATTACHED":
    case "SR_HAS_NO_PBDS":
    case "SR_BACKEND_FAILURE":
      return new StorageUnavailableError(p[0] ?? "default SR", err.xapiCode, { cause: err });
    case "HOST_OFFLINE":
    case "HOST_NOT_LIVE":
    case "HOST_STILL_BOOTING":
    case "SESSION_AUTHENTICATION_FAILED":
    case "SESSION_INVALID":
    case "RBAC_PERMISSION_DENIED":
      return new HypervisorUnavailableError(host, err.xapiCode, { cause: err });
    case "MESSAGE_PARAMETER_COUNT_MISMATCH":
    case "MESSAGE_METHOD_UNKNOWN":
      return new HypervisorUnavailableError(host, `the host does not speak ${err.method} as expected (${err.xapiCode})`, {
        cause: err,
      });
    case "VALUE_NOT_SUPPORTED":
    case "INVALID_VALUE":
    case "FIELD_TYPE_ERROR":
      return new InvalidInputError(ctx.operation, `XAPI refused a value (${err.xapiCode})`, { cause: err });
    default:
      return new HypervisorUnavailableError(host, `${ctx.operation} failed: ${err.xapiCode}`, { cause: err });
  }
}
