// Every error this package raises. Two families: `LibvirtError` is an error the daemon reported
// (it carries libvirt's own virErrorNumber/virErrorDomain); the others are the client's own
// failures, each with a stable `code`. Classes carry a `Symbol.for` brand so `instanceof`
// works across two installed copies of the package.

import { VirErrorNumber, virErrorDomainName, virErrorName } from "./error-codes.js";

/** Stable codes of every error class in this package. */
export type LibvirtRpcErrorCode =
  | "LIBVIRT_REMOTE_ERROR"
  | "LIBVIRT_PROTOCOL_ERROR"
  | "LIBVIRT_TIMEOUT"
  | "LIBVIRT_ABORTED"
  | "LIBVIRT_CONNECTION_CLOSED"
  | "LIBVIRT_VERSION_SKEW"
  | "LIBVIRT_INVALID_URI"
  | "LIBVIRT_AUTH_UNSUPPORTED";

const BRAND = Symbol.for("virtkit.libvirt-rpc.error");

function brandOf(code: LibvirtRpcErrorCode): symbol {
  return Symbol.for(`virtkit.libvirt-rpc.error.${code}`);
}

function hasBrand(value: unknown, brand: symbol): boolean {
  return typeof value === "object" && value !== null && (value as Record<symbol, unknown>)[brand] === true;
}

/** Base class of every error raised by `@virtkit/libvirt-rpc`. */
export abstract class LibvirtRpcError extends Error {
  /** Stable, machine-readable code. */
  abstract readonly code: LibvirtRpcErrorCode;

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    Object.defineProperty(this, BRAND, { value: true });
  }

  static override [Symbol.hasInstance](value: unknown): boolean {
    if (this === LibvirtRpcError) return hasBrand(value, BRAND);
    return Function.prototype[Symbol.hasInstance].call(this, value);
  }
}

function brand(target: LibvirtRpcError, code: LibvirtRpcErrorCode): void {
  Object.defineProperty(target, brandOf(code), { value: true });
}

/** Fields of libvirt's `remote_error` struct, as received from the daemon. */
export interface RemoteErrorFields {
  /** virErrorNumber, e.g. 42 (`VIR_ERR_NO_DOMAIN`). */
  code: number;
  /** virErrorDomain, e.g. 12 (`VIR_FROM_TEST`). */
  domain: number;
  /** Human-readable message (may be absent on the wire). */
  message: string | null;
  /** virErrorLevel: 1 warning, 2 error. */
  level: number;
  /** Extra strings and ints libvirt attaches to some errors. */
  str1: string | null;
  str2: string | null;
  str3: string | null;
  int1: number;
  int2: number;
}

/** An error reported by libvirtd: carries libvirt's real error number, domain and level. */
export class LibvirtError extends LibvirtRpcError {
  override readonly code = "LIBVIRT_REMOTE_ERROR" as const;
  override readonly name = "LibvirtError";
  /** virErrorNumber (e.g. 42). */
  readonly virErrorCode: number;
  /** Name of `virErrorCode` (e.g. `"VIR_ERR_NO_DOMAIN"`). */
  readonly virErrorName: string;
  /** virErrorDomain (e.g. 10 for QEMU). */
  readonly virErrorDomain: number;
  /** Name of `virErrorDomain` (e.g. `"VIR_FROM_QEMU"`). */
  readonly virErrorDomainName: string;
  /** virErrorLevel (2 = error). */
  readonly level: number;
  /** The raw remote_error fields. */
  readonly remote: RemoteErrorFields;
  /** Name of the procedure that failed (e.g. `"DOMAIN_LOOKUP_BY_NAME"`), when known. */
  readonly procedure: string | undefined;

  constructor(remote: RemoteErrorFields, procedure?: string) {
    super(remote.message ?? `libvirt error ${virErrorName(remote.code)}`);
    brand(this, this.code);
    this.remote = remote;
    this.virErrorCode = remote.code;
    this.virErrorName = virErrorName(remote.code);
    this.virErrorDomain = remote.domain;
    this.virErrorDomainName = virErrorDomainName(remote.domain);
    this.level = remote.level;
    this.procedure = procedure;
  }

  static override [Symbol.hasInstance](value: unknown): boolean {
    return hasBrand(value, brandOf("LIBVIRT_REMOTE_ERROR"));
  }
}

/**
 * The daemon sent bytes that are not valid libvirt RPC: garbage, a truncated or malformed reply,
 * or a packet over the size limit. The connection is closed and all pending calls are rejected.
 */
export class LibvirtProtocolError extends LibvirtRpcError {
  override readonly code = "LIBVIRT_PROTOCOL_ERROR" as const;
  override readonly name = "LibvirtProtocolError";
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    brand(this, this.code);
  }
  static override [Symbol.hasInstance](value: unknown): boolean {
    return hasBrand(value, brandOf("LIBVIRT_PROTOCOL_ERROR"));
  }
}

/**
 * A call, or the dial-and-handshake of opening a connection, did not complete within its timeout.
 * A late reply is discarded.
 */
export class LibvirtTimeoutError extends LibvirtRpcError {
  override readonly code = "LIBVIRT_TIMEOUT" as const;
  override readonly name = "LibvirtTimeoutError";
  /** Procedure that timed out (for an open: the handshake call that got no answer). */
  readonly procedure: string;
  /** The timeout that elapsed. */
  readonly timeoutMs: number;
  /** `message` replaces the default "libvirt call X timed out after N ms". */
  constructor(procedure: string, timeoutMs: number, options?: { message?: string }) {
    super(options?.message ?? `libvirt call ${procedure} timed out after ${timeoutMs} ms`);
    brand(this, this.code);
    this.procedure = procedure;
    this.timeoutMs = timeoutMs;
  }
  static override [Symbol.hasInstance](value: unknown): boolean {
    return hasBrand(value, brandOf("LIBVIRT_TIMEOUT"));
  }
}

/** A call was cancelled through its AbortSignal. A late reply is discarded. */
export class LibvirtAbortedError extends LibvirtRpcError {
  override readonly code = "LIBVIRT_ABORTED" as const;
  override readonly name = "LibvirtAbortedError";
  /** Procedure that was aborted. */
  readonly procedure: string;
  constructor(procedure: string, reason?: unknown) {
    super(`libvirt call ${procedure} was aborted`, reason === undefined ? undefined : { cause: reason });
    brand(this, this.code);
    this.procedure = procedure;
  }
  static override [Symbol.hasInstance](value: unknown): boolean {
    return hasBrand(value, brandOf("LIBVIRT_ABORTED"));
  }
}

/** The connection is closed (by us, by the daemon, by a dead-peer keepalive, or after a protocol error). */
export class LibvirtConnectionClosedError extends LibvirtRpcError {
  override readonly code = "LIBVIRT_CONNECTION_CLOSED" as const;
  override readonly name = "LibvirtConnectionClosedError";
  constructor(message = "libvirt connection is closed", options?: { cause?: unknown }) {
    super(message, options);
    brand(this, this.code);
  }
  static override [Symbol.hasInstance](value: unknown): boolean {
    return hasBrand(value, brandOf("LIBVIRT_CONNECTION_CLOSED"));
  }
}

/**
 * The daemon does not support a procedure this client called (`VIR_ERR_NO_SUPPORT`): either the
 * daemon is older than the client (unknown procedure) or its driver lacks the API.
 * The daemon's `LibvirtError` is the `cause`.
 */
export class LibvirtVersionSkewError extends LibvirtRpcError {
  override readonly code = "LIBVIRT_VERSION_SKEW" as const;
  override readonly name = "LibvirtVersionSkewError";
  /** Procedure the daemon rejected, e.g. `"DOMAIN_MIGRATE_PERFORM3_PARAMS"`. */
  readonly procedure: string;
  /** True when the daemon does not know the procedure number at all. */
  readonly unknownProcedure: boolean;
  declare readonly cause: LibvirtError;
  constructor(procedure: string, cause: LibvirtError) {
    const unknownProcedure = /unknown procedure/i.test(cause.message);
    super(
      unknownProcedure
        ? `libvirtd does not know procedure ${procedure} (daemon older than client?): ${cause.message}`
        : `libvirtd does not support ${procedure}: ${cause.message}`,
      { cause },
    );
    brand(this, this.code);
    this.procedure = procedure;
    this.unknownProcedure = unknownProcedure;
  }
  static override [Symbol.hasInstance](value: unknown): boolean {
    return hasBrand(value, brandOf("LIBVIRT_VERSION_SKEW"));
  }
}

/** A connection URI that this client cannot parse or does not support. */
/**
 * A URI fit for a message: the password of `user:password@` and every query value (key files,
 * auth parameters) replaced by `***`. Works on malformed URIs too, which is when it is needed.
 */
export function maskUri(uri: string): string {
  const maskQuery = (t: string): string => t.replace(/([?&][^=&#]*)=[^&#]*/g, "$1=***");
  const start = uri.indexOf("//");
  if (start < 0) return maskQuery(uri);
  const rest = uri.slice(start + 2);
  // User info with a password: a ':' before any '/', '?', '#' or '@' of the authority, followed by
  // something other than a port. It runs to the LAST '@' (a password may hold '@', '/', '?' or
  // '#' unescaped); masking too much there only hides more.
  const stop = rest.search(/[:/?#@]/);
  const at = rest.lastIndexOf("@");
  if (stop >= 0 && rest[stop] === ":" && at > stop) {
    const seg = /^[^/?#@]*/.exec(rest.slice(stop + 1))?.[0] ?? "";
    const isPort = /^\d*$/.test(seg) && rest[stop + 1 + seg.length] !== "@";
    if (!isPort) return `${uri.slice(0, start + 2)}${rest.slice(0, stop)}:***${maskQuery(rest.slice(at))}`;
  }
  return maskQuery(uri);
}

/** Replaces every occurrence of every secret in `text`. */
export function redact(text: string, secrets: readonly string[] | undefined): string {
  let out = text;
  for (const s of secrets ?? []) if (s !== "") out = out.split(s).join("***");
  return out;
}

/** A copy of a daemon error with every secret replaced in its message and strings (libvirtd may echo what it was given). */
export function redactLibvirtError(err: LibvirtError, secrets: readonly string[] | undefined): LibvirtError {
  const r = (v: string | null): string | null => (v === null ? null : redact(v, secrets));
  const remote: RemoteErrorFields = {
    ...err.remote,
    message: r(err.remote.message),
    str1: r(err.remote.str1),
    str2: r(err.remote.str2),
    str3: r(err.remote.str3),
  };
  return new LibvirtError(remote, err.procedure);
}

export class LibvirtUriError extends LibvirtRpcError {
  override readonly code = "LIBVIRT_INVALID_URI" as const;
  override readonly name = "LibvirtUriError";
  /** The offending URI, with any password and every query value masked (it can carry secrets). */
  readonly uri: string;
  constructor(uri: string, reason: string) {
    const masked = maskUri(uri);
    super(`invalid libvirt URI ${JSON.stringify(masked)}: ${reason}`);
    brand(this, this.code);
    this.uri = masked;
  }
  static override [Symbol.hasInstance](value: unknown): boolean {
    return hasBrand(value, brandOf("LIBVIRT_INVALID_URI"));
  }
}

/** The daemon requires an authentication scheme (SASL, polkit) this client does not implement. */
export class LibvirtAuthUnsupportedError extends LibvirtRpcError {
  override readonly code = "LIBVIRT_AUTH_UNSUPPORTED" as const;
  override readonly name = "LibvirtAuthUnsupportedError";
  /** Auth types the daemon offered (remote_auth_type: 1 SASL, 2 polkit). */
  readonly offered: readonly number[];
  constructor(offered: readonly number[]) {
    super(`libvirtd requires authentication this client does not support (offered: ${offered.join(", ")})`);
    brand(this, this.code);
    this.offered = offered;
  }
  static override [Symbol.hasInstance](value: unknown): boolean {
    return hasBrand(value, brandOf("LIBVIRT_AUTH_UNSUPPORTED"));
  }
}

/** Walk `err` and its `cause` chain for a daemon error. */
export function findLibvirtError(err: unknown): LibvirtError | undefined {
  let cur: unknown = err;
  for (let depth = 0; depth < 16 && cur !== null && typeof cur === "object"; depth++) {
    if (cur instanceof LibvirtError) return cur;
    cur = (cur as { cause?: unknown }).cause;
  }
  return undefined;
}

/** True when `err` (or its cause chain) is a daemon error with this virErrorNumber. */
export function hasVirErrorCode(err: unknown, code: number): boolean {
  return findLibvirtError(err)?.virErrorCode === code;
}

/** `VIR_ERR_NO_DOMAIN`: no domain with that name/uuid/id. */
export const isNoDomain = (err: unknown): boolean => hasVirErrorCode(err, VirErrorNumber.VIR_ERR_NO_DOMAIN);
/** `VIR_ERR_OPERATION_INVALID`: not valid in the domain's current state. */
export const isOperationInvalid = (err: unknown): boolean =>
  hasVirErrorCode(err, VirErrorNumber.VIR_ERR_OPERATION_INVALID);
/** `VIR_ERR_NO_SUPPORT`: the driver or daemon does not support the call. */
export const isNoSupport = (err: unknown): boolean => hasVirErrorCode(err, VirErrorNumber.VIR_ERR_NO_SUPPORT);
/** `VIR_ERR_OPERATION_UNSUPPORTED`. */
export const isOperationUnsupported = (err: unknown): boolean =>
  hasVirErrorCode(err, VirErrorNumber.VIR_ERR_OPERATION_UNSUPPORTED);
/** `VIR_ERR_OPERATION_TIMEOUT`: the daemon (e.g. its job lock) timed out. */
export const isOperationTimeout = (err: unknown): boolean =>
  hasVirErrorCode(err, VirErrorNumber.VIR_ERR_OPERATION_TIMEOUT);
/** `VIR_ERR_AGENT_UNRESPONSIVE`: the guest agent did not answer. */
export const isAgentUnresponsive = (err: unknown): boolean =>
  hasVirErrorCode(err, VirErrorNumber.VIR_ERR_AGENT_UNRESPONSIVE);
/** `VIR_ERR_NO_DOMAIN_SNAPSHOT`. */
export const isNoDomainSnapshot = (err: unknown): boolean =>
  hasVirErrorCode(err, VirErrorNumber.VIR_ERR_NO_DOMAIN_SNAPSHOT);
/** `VIR_ERR_NO_STORAGE_POOL`. */
export const isNoStoragePool = (err: unknown): boolean => hasVirErrorCode(err, VirErrorNumber.VIR_ERR_NO_STORAGE_POOL);
/** `VIR_ERR_NO_STORAGE_VOL`. */
export const isNoStorageVol = (err: unknown): boolean => hasVirErrorCode(err, VirErrorNumber.VIR_ERR_NO_STORAGE_VOL);
/** `VIR_ERR_DOM_EXIST`: a domain with that name or uuid already exists. */
export const isDomainExists = (err: unknown): boolean => hasVirErrorCode(err, VirErrorNumber.VIR_ERR_DOM_EXIST);
/** `VIR_ERR_OPERATION_FAILED`. */
export const isOperationFailed = (err: unknown): boolean =>
  hasVirErrorCode(err, VirErrorNumber.VIR_ERR_OPERATION_FAILED);
/** `VIR_ERR_INVALID_ARG`. */
export const isInvalidArg = (err: unknown): boolean => hasVirErrorCode(err, VirErrorNumber.VIR_ERR_INVALID_ARG);
/** `VIR_ERR_AGENT_UNSYNCED`. */
export const isAgentUnsynced = (err: unknown): boolean => hasVirErrorCode(err, VirErrorNumber.VIR_ERR_AGENT_UNSYNCED);
/** `VIR_ERR_MIGRATE_UNSAFE`. */
export const isMigrateUnsafe = (err: unknown): boolean => hasVirErrorCode(err, VirErrorNumber.VIR_ERR_MIGRATE_UNSAFE);
/** `VIR_ERR_OPERATION_ABORTED`. */
export const isOperationAborted = (err: unknown): boolean =>
  hasVirErrorCode(err, VirErrorNumber.VIR_ERR_OPERATION_ABORTED);

/** True when `err` (or its cause chain) means the link is unusable and a reconnect may help. */
export function isConnectionClosed(err: unknown): boolean {
  let cur: unknown = err;
  for (let depth = 0; depth < 16 && cur !== null && typeof cur === "object"; depth++) {
    if (cur instanceof LibvirtConnectionClosedError || cur instanceof LibvirtProtocolError) return true;
    cur = (cur as { cause?: unknown }).cause;
  }
  return false;
}
