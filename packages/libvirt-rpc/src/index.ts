// Public surface of @virtkit/libvirt-rpc. Procedure numbers and wire codecs stay internal.

export { LibvirtConnection } from "./connection.js";
export type {
  LibvirtConnectOptions,
  MigrateBeginResult,
  MigrateFinishResult,
  MigratePrepareResult,
  StreamRange,
} from "./connection.js";
export { RpcClient, DEFAULT_CALL_TIMEOUT_MS } from "./client.js";
export type { Decoder, Encoder, MessageHandler, RpcClientOptions, StreamSink } from "./client.js";
export { ReconnectingClient } from "./reconnecting-client.js";
export type { ReconnectOptions } from "./reconnecting-client.js";
export { Keepalive, DEFAULT_KEEPALIVE } from "./keepalive.js";
export type { KeepaliveOptions } from "./keepalive.js";
export { LibvirtReadStream, LibvirtWriteStream } from "./stream.js";
export type { DomainLifecycleListener, EventSubscription } from "./events.js";
export { parseConnectUri, dialerForUri, resolveConnectUri } from "./connect-uri.js";
export type { ConnectUriOptions, LibvirtTransport, ParsedConnectUri } from "./connect-uri.js";
export type { Dialer } from "./transport/dialer.js";
export { UnixDialer, DEFAULT_SYSTEM_SOCKET } from "./transport/unix-dialer.js";
export type { UnixDialerOptions } from "./transport/unix-dialer.js";
export { TcpDialer, DEFAULT_TCP_PORT } from "./transport/tcp-dialer.js";
export type { TcpDialerOptions } from "./transport/tcp-dialer.js";
export { TlsDialer, DEFAULT_TLS_PORT, DEFAULT_TLS_PATHS } from "./transport/tls-dialer.js";
export type { TlsDialerOptions } from "./transport/tls-dialer.js";
export { SshDialer, sshRemoteCommand } from "./transport/ssh-dialer.js";
export type { SshDialerOptions } from "./transport/ssh-dialer.js";
export {
  LibvirtRpcError,
  LibvirtError,
  LibvirtProtocolError,
  LibvirtTimeoutError,
  LibvirtAbortedError,
  LibvirtConnectionClosedError,
  LibvirtVersionSkewError,
  LibvirtUriError,
  maskUri,
  LibvirtAuthUnsupportedError,
  findLibvirtError,
  hasVirErrorCode,
  isNoDomain,
  isOperationInvalid,
  isNoSupport,
  isOperationUnsupported,
  isOperationTimeout,
  isAgentUnresponsive,
  isAgentUnsynced,
  isNoDomainSnapshot,
  isNoStoragePool,
  isNoStorageVol,
  isDomainExists,
  isOperationFailed,
  isOperationAborted,
  isInvalidArg,
  isMigrateUnsafe,
  isConnectionClosed,
  redact,
  redactLibvirtError,
} from "./errors.js";
export type { LibvirtRpcErrorCode, RemoteErrorFields } from "./errors.js";
export { VirErrorNumber, VirErrorDomain, VirErrorLevel, virErrorName, virErrorDomainName } from "./error-codes.js";
export type { VirErrorName, VirErrorDomainName } from "./error-codes.js";
export {
  AgentCommandTimeout,
  DomainState,
  DomainPausedReason,
  DomainEventType,
  DomainEventId,
  DomainJobType,
  Flags,
  MigrateFlags,
  migrateParams,
} from "./types.js";
export type {
  CallOptions,
  Domain,
  DomainInfo,
  DomainJobInfo,
  DomainJobStats,
  DomainLifecycleEvent,
  DomainSnapshot,
  DomainStateInfo,
  DomainStateValue,
  LibvirtVersion,
  MigrateParamsInput,
  NodeInfo,
  StoragePool,
  StoragePoolInfo,
  StorageVol,
  StorageVolInfo,
  TypedParam,
} from "./types.js";
export { XdrReader, XdrWriter } from "./xdr.js";
export { uuidToBytes, uuidToString } from "./wire.js";
