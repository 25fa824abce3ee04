// The typed libvirt API: one method per remote procedure, go-libvirt's shape (encode the args,
// call, decode the reply). Method names follow libvirt's C API without the `vir` prefix
// (virDomainLookupByName -> domainLookupByName).

import { RpcClient, timerDelay, type Decoder, type Encoder, type RpcProgram } from "./client.js";
import { QEMU_PROGRAM, REMOTE_PROGRAM } from "./packet.js";
import {
  type ConnectUriOptions,
  type ParsedConnectUri,
  forwardedQueryValues,
  parseConnectUri,
  resolveConnectUri,
} from "./connect-uri.js";
import {
  LibvirtAbortedError,
  LibvirtAuthUnsupportedError,
  LibvirtConnectionClosedError,
  LibvirtError,
  LibvirtTimeoutError,
  redactLibvirtError,
} from "./errors.js";
import { EventRegistry, type DomainLifecycleListener, type EventSubscription } from "./events.js";
import { DEFAULT_KEEPALIVE, type KeepaliveOptions } from "./keepalive.js";
import { DrvFeature, Limits, Proc, QemuProc, procName } from "./procedures.js";
import { ReconnectingClient, type ReconnectOptions } from "./reconnecting-client.js";
import { LibvirtReadStream, LibvirtWriteStream } from "./stream.js";
import type { Dialer } from "./transport/dialer.js";
import { AgentCommandTimeout } from "./types.js";
import type {
  CallOptions,
  Domain,
  DomainInfo,
  DomainJobInfo,
  DomainJobStats,
  DomainSnapshot,
  DomainStateInfo,
  LibvirtVersion,
  NodeInfo,
  StoragePool,
  StoragePoolInfo,
  StorageVol,
  StorageVolInfo,
  TypedParam,
} from "./types.js";
import {
  readDomain,
  readDomainInfo,
  readJobInfo,
  readNodeInfo,
  readPool,
  readPoolInfo,
  readSnapshot,
  readTypedParams,
  readVol,
  readVolInfo,
  uuidToBytes,
  writeDomain,
  writePool,
  writeSnapshot,
  writeTypedParams,
  writeVol,
} from "./wire.js";
import type { XdrReader, XdrWriter } from "./xdr.js";

/** Options of `LibvirtConnection.open`. */
export interface LibvirtConnectOptions extends ConnectUriOptions {
  /** Use this dialer instead of the one the URI implies (tests, custom transports). */
  dialer?: Dialer;
  /** Open read-only (VIR_CONNECT_RO). */
  readOnly?: boolean;
  /** Default timeout of every call (ms, default 60 000; 0 disables). */
  timeoutMs?: number;
  /**
   * Timeout for dialing and the open handshake together (ms, default 30 000; 0 disables). A dial
   * that runs out fails with `LibvirtConnectionClosedError`, a handshake with `LibvirtTimeoutError`.
   */
  connectTimeoutMs?: number;
  /** Cancels opening. */
  signal?: AbortSignal;
  /** Keepalive settings, or false to disable (default: interval 5 s, count 5). */
  keepalive?: KeepaliveOptions | false;
  /** Reopen the link on the next call after it dropped (default false). */
  reconnect?: boolean | ReconnectOptions;
  /** Largest packet accepted from the daemon (default 32 MiB). */
  maxPacketBytes?: number;
  /** Called when an event listener throws (default: ignored). */
  onListenerError?: (err: unknown) => void;
}

/** Range and flags for volume download/upload. */
export interface StreamRange {
  /** Start offset in bytes (default 0). */
  offset?: bigint | number;
  /** Bytes to transfer; 0 means to the end (default 0). */
  length?: bigint | number;
  flags?: number;
}

/** Result of `domainMigrateBegin3Params`. */
export interface MigrateBeginResult {
  cookieOut: Buffer;
  xml: string;
}

/** Result of `domainMigratePrepare3Params`. */
export interface MigratePrepareResult {
  cookieOut: Buffer;
  uriOut: string | null;
}

/** Result of `domainMigrateFinish3Params`. */
export interface MigrateFinishResult {
  domain: Domain;
  cookieOut: Buffer;
}

const VIR_CONNECT_RO = 1;
const REMOTE_AUTH_NONE = 0;

const readString: Decoder<string> = (r) => r.string(Limits.STRING_MAX);
const readBoolInt: Decoder<boolean> = (r) => r.int() !== 0;
const readVersion: Decoder<LibvirtVersion> = (r) => {
  const raw = r.uhyper();
  const n = Number(raw);
  return { major: Math.floor(n / 1_000_000), minor: Math.floor(n / 1000) % 1000, release: n % 1000, raw };
};
const readCookie = (r: XdrReader): Buffer => r.opaque(Limits.MIGRATE_COOKIE_MAX);

function domFlags(dom: Domain, flags: number): Encoder {
  return (w) => {
    writeDomain(w, dom);
    w.uint(flags);
  };
}

function domOnly(dom: Domain): Encoder {
  return (w) => writeDomain(w, dom);
}

function big(v: bigint | number | undefined): bigint {
  return v === undefined ? 0n : BigInt(v);
}

/**
 * A connection to libvirtd. Open with `LibvirtConnection.open(uri)`; close with `close()` or
 * `await using`. Every method takes `{ timeoutMs, signal }` as its last argument.
 */
export class LibvirtConnection implements AsyncDisposable {
  /** The parsed URI this connection was opened with. */
  readonly uri: ParsedConnectUri;
  private readonly dialer: Dialer;
  private readonly options: LibvirtConnectOptions;
  private readonly link: ReconnectingClient;
  private readonly events: EventRegistry;

  private constructor(uri: ParsedConnectUri, dialer: Dialer, options: LibvirtConnectOptions) {
    this.uri = uri;
    this.dialer = dialer;
    this.options = options;
    this.events = new EventRegistry(options.onListenerError);
    const reconnect: ReconnectOptions =
      typeof options.reconnect === "object" ? options.reconnect : { enabled: options.reconnect === true };
    this.link = new ReconnectingClient(
      () => this.openLink(),
      (client) => this.events.reregisterAll(client),
      reconnect,
      () => this.events.size > 0,
    );
  }

  /**
   * Connect to libvirtd. `uri` is a libvirt URI such as `qemu:///system`, `test:///default`,
   * `qemu+tcp://host/system`, `qemu+tls://host/system` or `qemu+ssh://user@host/system`.
   */
  static async open(uri = "qemu:///system", options: LibvirtConnectOptions = {}): Promise<LibvirtConnection> {
    const { parsed, dialer } = options.dialer
      ? { parsed: parseConnectUri(uri), dialer: options.dialer }
      : resolveConnectUri(uri, options);
    const conn = new LibvirtConnection(parsed, dialer, options);
    const client = await conn.openLink();
    conn.link.adopt(client);
    return conn;
  }

  /** Dial, then run the open handshake: auth list, CONNECT_OPEN, keepalive negotiation. */
  private async openLink(): Promise<RpcClient> {
    const o = this.options;
    const where = this.dialer.description ?? this.uri.uri;
    const timeoutMs = o.connectTimeoutMs ?? 30_000;
    // Our own deadline rather than AbortSignal.timeout: its firing must read as a timeout, while
    // only the caller's signal reads as an abort.
    const deadline = new AbortController();
    let step = "dial";
    const timer =
      timeoutMs > 0 && Number.isFinite(timeoutMs)
        ? setTimeout(() => {
            const message =
              step === "dial"
                ? `dialing ${where} timed out after ${timeoutMs} ms`
                : `libvirt open handshake with ${where} timed out after ${timeoutMs} ms (no answer to ${step})`;
            deadline.abort(new LibvirtTimeoutError(step, timeoutMs, { message }));
          }, timerDelay(timeoutMs))
        : undefined;
    const signal = o.signal ? AbortSignal.any([o.signal, deadline.signal]) : deadline.signal;
    // The caller aborting wins over a deadline that fired at the same moment.
    const timedOut = (): LibvirtTimeoutError | undefined =>
      !o.signal?.aborted && deadline.signal.reason instanceof LibvirtTimeoutError ? deadline.signal.reason : undefined;
    try {
      let socket;
      try {
        socket = await this.dialer.dial(signal);
      } catch (err) {
        const timeout = timedOut();
        throw new LibvirtConnectionClosedError(
          `cannot connect to libvirtd at ${where}: ${timeout ? `timed out after ${timeoutMs} ms` : (err as Error).message}`,
          { cause: timeout ?? err },
        );
      }
      const client = new RpcClient(socket, { defaultTimeoutMs: o.timeoutMs, maxPacketBytes: o.maxPacketBytes });
      this.events.attach(client);
      // The deadline bounds the whole handshake; without one, each call keeps the default timeout.
      const opts: CallOptions = timer ? { signal, timeoutMs: 0 } : { signal };
      try {
        step = procName(Proc.AUTH_LIST);
        const auth = await client.call(
          Proc.AUTH_LIST,
          null,
          (r) => r.array((rr) => rr.int(), Limits.AUTH_TYPE_LIST_MAX),
          opts,
        );
        if (auth.length > 0 && !auth.includes(REMOTE_AUTH_NONE)) throw new LibvirtAuthUnsupportedError(auth);
        step = procName(Proc.CONNECT_OPEN);
        await client.call(
          Proc.CONNECT_OPEN,
          (w) => {
            w.optString(this.uri.openName);
            w.uint(o.readOnly ? VIR_CONNECT_RO : 0);
          },
          null,
          opts,
        );
        if (o.keepalive !== false) {
          step = procName(Proc.CONNECT_SUPPORTS_FEATURE);
          // Advertising keepalive support also makes the daemon ping us.
          const supported = await client.call(
            Proc.CONNECT_SUPPORTS_FEATURE,
            (w) => w.int(DrvFeature.PROGRAM_KEEPALIVE),
            readBoolInt,
            opts,
          );
          if (supported) client.startKeepalive(o.keepalive ?? DEFAULT_KEEPALIVE);
        }
      } catch (err) {
        // A handshake call aborted by our deadline is a timeout; by the caller, an abort. A refused
        // open may echo the URI's query (a token someone put there): masked as the URI is.
        const raw = (err instanceof LibvirtAbortedError ? timedOut() : undefined) ?? err;
        const echoed = forwardedQueryValues(this.uri);
        const failure = raw instanceof LibvirtError && echoed.length > 0 ? redactLibvirtError(raw, echoed) : raw;
        client.destroy(failure instanceof Error ? failure : undefined);
        throw failure;
      }
      return client;
    } finally {
      if (timer) clearTimeout(timer);
    }
  }

  /** Issue one call on the current (or a re-opened) link. */
  private call<T>(
    proc: number,
    enc: Encoder | null,
    dec: Decoder<T> | null,
    opts?: CallOptions,
    program: RpcProgram = REMOTE_PROGRAM,
  ): Promise<T> {
    const c = this.link.get();
    if (c instanceof RpcClient) return c.call(proc, enc, dec, opts, program);
    return c.then((client) => client.call(proc, enc, dec, opts, program));
  }

  private async client(): Promise<RpcClient> {
    return this.link.get();
  }

  /** True while the current link is open. */
  get isOpen(): boolean {
    const l = this.link.link;
    return l !== undefined && !l.closed;
  }

  /** How many times the link was re-opened after dropping. */
  get reconnectCount(): number {
    return this.link.reconnects;
  }

  /** Calls currently awaiting a reply. */
  get inFlight(): number {
    return this.link.link?.inFlight ?? 0;
  }

  /** Run `fn` when the current link closes (for monitoring; reconnecting connections reopen later). */
  onLinkClose(fn: (err: Error) => void): void {
    this.link.link?.onClose(fn);
  }

  /** Close: CONNECT_CLOSE (best effort, short timeout), then drop the link. */
  async close(options?: CallOptions): Promise<void> {
    const c = this.link.link;
    if (c && !c.closed) {
      try {
        await c.call(Proc.CONNECT_CLOSE, null, null, { timeoutMs: 5000, ...options });
      } catch {
        // Closing anyway.
      }
    }
    this.link.close();
  }

  /** `await using conn = await LibvirtConnection.open(...)`. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /** Simulate a dropped link (tests, forced failover): the next call reconnects if enabled. */
  dropLink(reason = "link dropped by the client"): void {
    this.link.link?.destroy(new LibvirtConnectionClosedError(reason));
  }

  // ---- Connection / host -------------------------------------------------------------------

  /** virConnectGetVersion: hypervisor version. */
  connectGetVersion(opts?: CallOptions): Promise<LibvirtVersion> {
    return this.call(Proc.CONNECT_GET_VERSION, null, readVersion, opts);
  }

  /** virConnectGetLibVersion: libvirt version of the daemon. */
  connectGetLibVersion(opts?: CallOptions): Promise<LibvirtVersion> {
    return this.call(Proc.CONNECT_GET_LIB_VERSION, null, readVersion, opts);
  }

  /** virConnectGetHostname. */
  connectGetHostname(opts?: CallOptions): Promise<string> {
    return this.call(Proc.CONNECT_GET_HOSTNAME, null, readString, opts);
  }

  /** virConnectGetCapabilities: capabilities XML. */
  connectGetCapabilities(opts?: CallOptions): Promise<string> {
    return this.call(Proc.CONNECT_GET_CAPABILITIES, null, readString, opts);
  }

  /** virConnectGetType: driver name, e.g. `QEMU` or `TEST`. */
  connectGetType(opts?: CallOptions): Promise<string> {
    return this.call(Proc.CONNECT_GET_TYPE, null, readString, opts);
  }

  /** virConnectGetURI: the canonical URI the daemon opened. */
  connectGetUri(opts?: CallOptions): Promise<string> {
    return this.call(Proc.CONNECT_GET_URI, null, readString, opts);
  }

  /** virConnectSupportsFeature (virDrvFeature number). */
  connectSupportsFeature(feature: number, opts?: CallOptions): Promise<boolean> {
    return this.call(Proc.CONNECT_SUPPORTS_FEATURE, (w) => w.int(feature), readBoolInt, opts);
  }

  /** virNodeGetInfo. */
  nodeGetInfo(opts?: CallOptions): Promise<NodeInfo> {
    return this.call(Proc.NODE_GET_INFO, null, readNodeInfo, opts);
  }

  // ---- Domains -----------------------------------------------------------------------------

  /** virConnectListAllDomains (flags: `Flags.LIST_DOMAINS_*`). */
  connectListAllDomains(flags = 0, opts?: CallOptions): Promise<Domain[]> {
    return this.call(
      Proc.CONNECT_LIST_ALL_DOMAINS,
      (w) => {
        w.int(1);
        w.uint(flags);
      },
      (r) => {
        const doms = r.array(readDomain, Limits.DOMAIN_LIST_MAX);
        r.uint();
        return doms;
      },
      opts,
    );
  }

  /** virDomainLookupByName; rejects with VIR_ERR_NO_DOMAIN when absent (see `isNoDomain`). */
  domainLookupByName(name: string, opts?: CallOptions): Promise<Domain> {
    return this.call(Proc.DOMAIN_LOOKUP_BY_NAME, (w) => w.string(name), readDomain, opts);
  }

  /** virDomainLookupByUUIDString. */
  domainLookupByUuid(uuid: string, opts?: CallOptions): Promise<Domain> {
    const bytes = uuidToBytes(uuid);
    return this.call(Proc.DOMAIN_LOOKUP_BY_UUID, (w) => w.opaqueFixed(bytes, 16), readDomain, opts);
  }

  /** virDomainLookupByID. */
  domainLookupById(id: number, opts?: CallOptions): Promise<Domain> {
    return this.call(Proc.DOMAIN_LOOKUP_BY_ID, (w) => w.int(id), readDomain, opts);
  }

  /** virDomainDefineXMLFlags. */
  domainDefineXml(xml: string, flags = 0, opts?: CallOptions): Promise<Domain> {
    return this.call(
      Proc.DOMAIN_DEFINE_XML_FLAGS,
      (w) => {
        w.string(xml);
        w.uint(flags);
      },
      readDomain,
      opts,
    );
  }

  /** virDomainCreateXML: start a transient domain. */
  domainCreateXml(xml: string, flags = 0, opts?: CallOptions): Promise<Domain> {
    return this.call(
      Proc.DOMAIN_CREATE_XML,
      (w) => {
        w.string(xml);
        w.uint(flags);
      },
      readDomain,
      opts,
    );
  }

  /** virDomainCreateWithFlags: start a defined domain; returns it with its new id. */
  domainCreateWithFlags(dom: Domain, flags = 0, opts?: CallOptions): Promise<Domain> {
    return this.call(Proc.DOMAIN_CREATE_WITH_FLAGS, domFlags(dom, flags), readDomain, opts);
  }

  /** virDomainSuspend. */
  domainSuspend(dom: Domain, opts?: CallOptions): Promise<void> {
    return this.call(Proc.DOMAIN_SUSPEND, domOnly(dom), null, opts);
  }

  /** virDomainResume. */
  domainResume(dom: Domain, opts?: CallOptions): Promise<void> {
    return this.call(Proc.DOMAIN_RESUME, domOnly(dom), null, opts);
  }

  /** virDomainShutdownFlags (`Flags.SHUTDOWN_*`). */
  domainShutdown(dom: Domain, flags = 0, opts?: CallOptions): Promise<void> {
    return this.call(Proc.DOMAIN_SHUTDOWN_FLAGS, domFlags(dom, flags), null, opts);
  }

  /** virDomainReboot. */
  domainReboot(dom: Domain, flags = 0, opts?: CallOptions): Promise<void> {
    return this.call(Proc.DOMAIN_REBOOT, domFlags(dom, flags), null, opts);
  }

  /** virDomainReset. */
  domainReset(dom: Domain, flags = 0, opts?: CallOptions): Promise<void> {
    return this.call(Proc.DOMAIN_RESET, domFlags(dom, flags), null, opts);
  }

  /** virDomainDestroyFlags (`Flags.DESTROY_*`). */
  domainDestroy(dom: Domain, flags = 0, opts?: CallOptions): Promise<void> {
    return this.call(Proc.DOMAIN_DESTROY_FLAGS, domFlags(dom, flags), null, opts);
  }

  /** virDomainUndefineFlags (`Flags.UNDEFINE_*`). */
  domainUndefine(dom: Domain, flags = 0, opts?: CallOptions): Promise<void> {
    return this.call(Proc.DOMAIN_UNDEFINE_FLAGS, domFlags(dom, flags), null, opts);
  }

  /** virDomainGetInfo. */
  domainGetInfo(dom: Domain, opts?: CallOptions): Promise<DomainInfo> {
    return this.call(Proc.DOMAIN_GET_INFO, domOnly(dom), readDomainInfo, opts);
  }

  /** virDomainGetState: state (`DomainState`) and reason. */
  domainGetState(dom: Domain, flags = 0, opts?: CallOptions): Promise<DomainStateInfo> {
    return this.call(Proc.DOMAIN_GET_STATE, domFlags(dom, flags), (r) => ({ state: r.int(), reason: r.int() }), opts);
  }

  /** virDomainGetXMLDesc (`Flags.XML_*`). */
  domainGetXmlDesc(dom: Domain, flags = 0, opts?: CallOptions): Promise<string> {
    return this.call(Proc.DOMAIN_GET_XML_DESC, domFlags(dom, flags), readString, opts);
  }

  /** virDomainIsActive. */
  domainIsActive(dom: Domain, opts?: CallOptions): Promise<boolean> {
    return this.call(Proc.DOMAIN_IS_ACTIVE, domOnly(dom), readBoolInt, opts);
  }

  /** virDomainIsPersistent. */
  domainIsPersistent(dom: Domain, opts?: CallOptions): Promise<boolean> {
    return this.call(Proc.DOMAIN_IS_PERSISTENT, domOnly(dom), readBoolInt, opts);
  }

  /** virDomainManagedSave. */
  domainManagedSave(dom: Domain, flags = 0, opts?: CallOptions): Promise<void> {
    return this.call(Proc.DOMAIN_MANAGED_SAVE, domFlags(dom, flags), null, opts);
  }

  /** virDomainHasManagedSaveImage. */
  domainHasManagedSaveImage(dom: Domain, flags = 0, opts?: CallOptions): Promise<boolean> {
    return this.call(Proc.DOMAIN_HAS_MANAGED_SAVE_IMAGE, domFlags(dom, flags), readBoolInt, opts);
  }

  /** virDomainManagedSaveRemove. */
  domainManagedSaveRemove(dom: Domain, flags = 0, opts?: CallOptions): Promise<void> {
    return this.call(Proc.DOMAIN_MANAGED_SAVE_REMOVE, domFlags(dom, flags), null, opts);
  }

  /** virDomainSetUserPassword (through the guest agent; `Flags.PASSWORD_ENCRYPTED`). */
  domainSetUserPassword(dom: Domain, user: string, password: string, flags = 0, opts?: CallOptions): Promise<void> {
    return this.call(
      Proc.DOMAIN_SET_USER_PASSWORD,
      (w) => {
        writeDomain(w, dom);
        w.optString(user);
        w.optString(password);
        w.uint(flags);
      },
      null,
      opts,
    );
  }

  /**
   * virDomainQemuAgentCommand (libvirt-qemu): sends `command`, one JSON guest-agent command, to the
   * domain's agent and resolves with the agent's JSON reply (null when the agent sent none).
   * `timeoutSec`: seconds libvirtd waits for the agent (positive), or one of
   * {@link AgentCommandTimeout}. Outside the stable API: for tools and tests that inspect a guest.
   */
  qemuDomainAgentCommand(
    dom: Domain,
    command: string,
    timeoutSec: number = AgentCommandTimeout.DEFAULT,
    flags = 0,
    opts?: CallOptions,
  ): Promise<string | null> {
    if (!Number.isInteger(timeoutSec) || timeoutSec < AgentCommandTimeout.BLOCK || timeoutSec > 2_147_483_647) {
      return Promise.reject(
        new RangeError(`agent command timeout must be a whole number of seconds or -2..0, not ${timeoutSec}`),
      );
    }
    if (typeof command !== "string") {
      return Promise.reject(new TypeError(`agent command must be a JSON string, not ${typeof command}`));
    }
    // libvirt's own limit (REMOTE_STRING_MAX): refused here rather than sent and refused by the daemon.
    if (Buffer.byteLength(command) > Limits.STRING_MAX) {
      return Promise.reject(new RangeError(`agent command is over ${Limits.STRING_MAX} bytes`));
    }
    if (!Number.isInteger(flags) || flags < 0 || flags > 0xffffffff) {
      return Promise.reject(new RangeError(`agent command flags must be an unsigned 32-bit integer, not ${flags}`));
    }
    // The agent may take timeoutSec to answer: without a call deadline of its own, wait that long
    // and a margin rather than the connection's default, which would cut it short.
    if (timeoutSec > 0 && opts?.timeoutMs === undefined) opts = { ...opts, timeoutMs: timeoutSec * 1000 + 5_000 };
    const enc: Encoder = (w) => {
      writeDomain(w, dom);
      w.string(command);
      w.int(timeoutSec);
      w.uint(flags);
    };
    const dec: Decoder<string | null> = (r) => r.optString(Limits.STRING_MAX);
    return this.call(QemuProc.DOMAIN_AGENT_COMMAND, enc, dec, opts, QEMU_PROGRAM);
  }

  // ---- Snapshots ---------------------------------------------------------------------------

  /** virDomainSnapshotCreateXML. */
  domainSnapshotCreateXml(dom: Domain, xml: string, flags = 0, opts?: CallOptions): Promise<DomainSnapshot> {
    return this.call(
      Proc.DOMAIN_SNAPSHOT_CREATE_XML,
      (w) => {
        writeDomain(w, dom);
        w.string(xml);
        w.uint(flags);
      },
      readSnapshot,
      opts,
    );
  }

  /** virDomainListAllSnapshots. */
  domainListAllSnapshots(dom: Domain, flags = 0, opts?: CallOptions): Promise<DomainSnapshot[]> {
    return this.call(
      Proc.DOMAIN_LIST_ALL_SNAPSHOTS,
      (w) => {
        writeDomain(w, dom);
        w.int(1);
        w.uint(flags);
      },
      (r) => {
        const snaps = r.array(readSnapshot, Limits.SNAPSHOT_LIST_MAX);
        r.int();
        return snaps;
      },
      opts,
    );
  }

  /** virDomainSnapshotLookupByName; VIR_ERR_NO_DOMAIN_SNAPSHOT when absent. */
  domainSnapshotLookupByName(dom: Domain, name: string, flags = 0, opts?: CallOptions): Promise<DomainSnapshot> {
    return this.call(
      Proc.DOMAIN_SNAPSHOT_LOOKUP_BY_NAME,
      (w) => {
        writeDomain(w, dom);
        w.string(name);
        w.uint(flags);
      },
      readSnapshot,
      opts,
    );
  }

  /** virDomainSnapshotCurrent. */
  domainSnapshotCurrent(dom: Domain, flags = 0, opts?: CallOptions): Promise<DomainSnapshot> {
    return this.call(Proc.DOMAIN_SNAPSHOT_CURRENT, domFlags(dom, flags), readSnapshot, opts);
  }

  /** virDomainHasCurrentSnapshot. */
  domainHasCurrentSnapshot(dom: Domain, flags = 0, opts?: CallOptions): Promise<boolean> {
    return this.call(Proc.DOMAIN_HAS_CURRENT_SNAPSHOT, domFlags(dom, flags), readBoolInt, opts);
  }

  /** virDomainRevertToSnapshot. */
  domainRevertToSnapshot(snap: DomainSnapshot, flags = 0, opts?: CallOptions): Promise<void> {
    return this.call(
      Proc.DOMAIN_REVERT_TO_SNAPSHOT,
      (w) => {
        writeSnapshot(w, snap);
        w.uint(flags);
      },
      null,
      opts,
    );
  }

  /** virDomainSnapshotDelete. */
  domainSnapshotDelete(snap: DomainSnapshot, flags = 0, opts?: CallOptions): Promise<void> {
    return this.call(
      Proc.DOMAIN_SNAPSHOT_DELETE,
      (w) => {
        writeSnapshot(w, snap);
        w.uint(flags);
      },
      null,
      opts,
    );
  }

  /** virDomainSnapshotGetXMLDesc. */
  domainSnapshotGetXmlDesc(snap: DomainSnapshot, flags = 0, opts?: CallOptions): Promise<string> {
    return this.call(
      Proc.DOMAIN_SNAPSHOT_GET_XML_DESC,
      (w) => {
        writeSnapshot(w, snap);
        w.uint(flags);
      },
      readString,
      opts,
    );
  }

  // ---- Migration and jobs ------------------------------------------------------------------

  /** REMOTE_PROC_DOMAIN_MIGRATE_BEGIN3_PARAMS (source side, first step). */
  domainMigrateBegin3Params(
    dom: Domain,
    params: readonly TypedParam[],
    flags = 0,
    opts?: CallOptions,
  ): Promise<MigrateBeginResult> {
    return this.call(
      Proc.DOMAIN_MIGRATE_BEGIN3_PARAMS,
      (w) => {
        writeDomain(w, dom);
        writeTypedParams(w, params);
        w.uint(flags);
      },
      (r) => ({ cookieOut: readCookie(r), xml: r.string(Limits.STRING_MAX) }),
      opts,
    );
  }

  /** REMOTE_PROC_DOMAIN_MIGRATE_PREPARE3_PARAMS (destination side). */
  domainMigratePrepare3Params(
    params: readonly TypedParam[],
    cookieIn: Uint8Array,
    flags = 0,
    opts?: CallOptions,
  ): Promise<MigratePrepareResult> {
    return this.call(
      Proc.DOMAIN_MIGRATE_PREPARE3_PARAMS,
      (w) => {
        writeTypedParams(w, params);
        w.opaque(cookieIn);
        w.uint(flags);
      },
      (r) => ({ cookieOut: readCookie(r), uriOut: r.optString(Limits.STRING_MAX) }),
      opts,
    );
  }

  /**
   * REMOTE_PROC_DOMAIN_MIGRATE_PERFORM3_PARAMS. For peer-to-peer migration (`MigrateFlags.PEER2PEER`)
   * pass the destination's URI as `dconnuri`; the source daemon then drives the whole migration.
   */
  domainMigratePerform3Params(
    dom: Domain,
    dconnuri: string | null,
    params: readonly TypedParam[],
    cookieIn: Uint8Array = Buffer.alloc(0),
    flags = 0,
    opts?: CallOptions,
  ): Promise<Buffer> {
    return this.call(
      Proc.DOMAIN_MIGRATE_PERFORM3_PARAMS,
      (w) => {
        writeDomain(w, dom);
        w.optString(dconnuri);
        writeTypedParams(w, params);
        w.opaque(cookieIn);
        w.uint(flags);
      },
      readCookie,
      { timeoutMs: 0, ...opts },
    );
  }

  /** REMOTE_PROC_DOMAIN_MIGRATE_FINISH3_PARAMS (destination side). */
  domainMigrateFinish3Params(
    params: readonly TypedParam[],
    cookieIn: Uint8Array,
    flags: number,
    cancelled: boolean,
    opts?: CallOptions,
  ): Promise<MigrateFinishResult> {
    return this.call(
      Proc.DOMAIN_MIGRATE_FINISH3_PARAMS,
      (w) => {
        writeTypedParams(w, params);
        w.opaque(cookieIn);
        w.uint(flags);
        w.int(cancelled ? 1 : 0);
      },
      (r) => ({ domain: readDomain(r), cookieOut: readCookie(r) }),
      opts,
    );
  }

  /** REMOTE_PROC_DOMAIN_MIGRATE_CONFIRM3_PARAMS (source side, last step). */
  domainMigrateConfirm3Params(
    dom: Domain,
    params: readonly TypedParam[],
    cookieIn: Uint8Array,
    flags: number,
    cancelled: boolean,
    opts?: CallOptions,
  ): Promise<void> {
    return this.call(
      Proc.DOMAIN_MIGRATE_CONFIRM3_PARAMS,
      (w) => {
        writeDomain(w, dom);
        writeTypedParams(w, params);
        w.opaque(cookieIn);
        w.uint(flags);
        w.int(cancelled ? 1 : 0);
      },
      null,
      opts,
    );
  }

  /** virDomainMigrateSetMaxDowntime (ms). */
  domainMigrateSetMaxDowntime(dom: Domain, downtimeMs: bigint | number, flags = 0, opts?: CallOptions): Promise<void> {
    return this.call(
      Proc.DOMAIN_MIGRATE_SET_MAX_DOWNTIME,
      (w) => {
        writeDomain(w, dom);
        w.uhyper(BigInt(downtimeMs));
        w.uint(flags);
      },
      null,
      opts,
    );
  }

  /** virDomainMigrateSetMaxSpeed (MiB/s). */
  domainMigrateSetMaxSpeed(dom: Domain, bandwidth: bigint | number, flags = 0, opts?: CallOptions): Promise<void> {
    return this.call(
      Proc.DOMAIN_MIGRATE_SET_MAX_SPEED,
      (w) => {
        writeDomain(w, dom);
        w.uhyper(BigInt(bandwidth));
        w.uint(flags);
      },
      null,
      opts,
    );
  }

  /** virDomainMigrateGetMaxSpeed (MiB/s). */
  domainMigrateGetMaxSpeed(dom: Domain, flags = 0, opts?: CallOptions): Promise<bigint> {
    return this.call(Proc.DOMAIN_MIGRATE_GET_MAX_SPEED, domFlags(dom, flags), (r) => r.uhyper(), opts);
  }

  /** virDomainGetJobInfo. */
  domainGetJobInfo(dom: Domain, opts?: CallOptions): Promise<DomainJobInfo> {
    return this.call(Proc.DOMAIN_GET_JOB_INFO, domOnly(dom), readJobInfo, opts);
  }

  /** virDomainGetJobStats. */
  domainGetJobStats(dom: Domain, flags = 0, opts?: CallOptions): Promise<DomainJobStats> {
    return this.call(
      Proc.DOMAIN_GET_JOB_STATS,
      domFlags(dom, flags),
      (r) => ({ type: r.int(), params: readTypedParams(r) }),
      opts,
    );
  }

  /**
   * virDomainMigrateStartPostCopy: switches a running migration started with
   * `VIR_MIGRATE_POSTCOPY` to post-copy mode (the guest then runs on the destination).
   */
  domainMigrateStartPostCopy(dom: Domain, flags = 0, opts?: CallOptions): Promise<void> {
    return this.call(Proc.DOMAIN_MIGRATE_START_POST_COPY, domFlags(dom, flags), null, opts);
  }

  /** virDomainAbortJob. */
  domainAbortJob(dom: Domain, opts?: CallOptions): Promise<void> {
    return this.call(Proc.DOMAIN_ABORT_JOB, domOnly(dom), null, opts);
  }

  // ---- Events ------------------------------------------------------------------------------

  /**
   * Subscribe to domain lifecycle events (VIR_DOMAIN_EVENT_ID_LIFECYCLE), for all domains or one.
   * Subscriptions survive reconnects (they are registered again on the new link).
   */
  async domainEventLifecycleRegister(
    listener: DomainLifecycleListener,
    options: CallOptions & { domain?: Domain } = {},
  ): Promise<EventSubscription> {
    const client = await this.client();
    return this.events.subscribeLifecycle(client, listener, options.domain ?? null, options);
  }

  // ---- Storage pools -----------------------------------------------------------------------

  /** virConnectListAllStoragePools. */
  connectListAllStoragePools(flags = 0, opts?: CallOptions): Promise<StoragePool[]> {
    return this.call(
      Proc.CONNECT_LIST_ALL_STORAGE_POOLS,
      (w) => {
        w.int(1);
        w.uint(flags);
      },
      (r) => {
        const pools = r.array(readPool, Limits.STORAGE_POOL_LIST_MAX);
        r.uint();
        return pools;
      },
      opts,
    );
  }

  /** virStoragePoolLookupByName; VIR_ERR_NO_STORAGE_POOL when absent. */
  storagePoolLookupByName(name: string, opts?: CallOptions): Promise<StoragePool> {
    return this.call(Proc.STORAGE_POOL_LOOKUP_BY_NAME, (w) => w.string(name), readPool, opts);
  }

  /** virStoragePoolLookupByUUIDString. */
  storagePoolLookupByUuid(uuid: string, opts?: CallOptions): Promise<StoragePool> {
    const bytes = uuidToBytes(uuid);
    return this.call(Proc.STORAGE_POOL_LOOKUP_BY_UUID, (w) => w.opaqueFixed(bytes, 16), readPool, opts);
  }

  /** virStoragePoolDefineXML. */
  storagePoolDefineXml(xml: string, flags = 0, opts?: CallOptions): Promise<StoragePool> {
    return this.call(
      Proc.STORAGE_POOL_DEFINE_XML,
      (w) => {
        w.string(xml);
        w.uint(flags);
      },
      readPool,
      opts,
    );
  }

  /** virStoragePoolCreateXML: create and start a transient pool. */
  storagePoolCreateXml(xml: string, flags = 0, opts?: CallOptions): Promise<StoragePool> {
    return this.call(
      Proc.STORAGE_POOL_CREATE_XML,
      (w) => {
        w.string(xml);
        w.uint(flags);
      },
      readPool,
      opts,
    );
  }

  private poolFlags(proc: number, pool: StoragePool, flags: number, opts?: CallOptions): Promise<void> {
    return this.call(
      proc,
      (w) => {
        writePool(w, pool);
        w.uint(flags);
      },
      null,
      opts,
    );
  }

  /** virStoragePoolCreate: start a defined pool. */
  storagePoolCreate(pool: StoragePool, flags = 0, opts?: CallOptions): Promise<void> {
    return this.poolFlags(Proc.STORAGE_POOL_CREATE, pool, flags, opts);
  }

  /** virStoragePoolBuild. */
  storagePoolBuild(pool: StoragePool, flags = 0, opts?: CallOptions): Promise<void> {
    return this.poolFlags(Proc.STORAGE_POOL_BUILD, pool, flags, opts);
  }

  /** virStoragePoolRefresh. */
  storagePoolRefresh(pool: StoragePool, flags = 0, opts?: CallOptions): Promise<void> {
    return this.poolFlags(Proc.STORAGE_POOL_REFRESH, pool, flags, opts);
  }

  /** virStoragePoolDelete (deletes the underlying storage). */
  storagePoolDelete(pool: StoragePool, flags = 0, opts?: CallOptions): Promise<void> {
    return this.poolFlags(Proc.STORAGE_POOL_DELETE, pool, flags, opts);
  }

  /** virStoragePoolDestroy: stop the pool. */
  storagePoolDestroy(pool: StoragePool, opts?: CallOptions): Promise<void> {
    return this.call(Proc.STORAGE_POOL_DESTROY, (w) => writePool(w, pool), null, opts);
  }

  /** virStoragePoolUndefine. */
  storagePoolUndefine(pool: StoragePool, opts?: CallOptions): Promise<void> {
    return this.call(Proc.STORAGE_POOL_UNDEFINE, (w) => writePool(w, pool), null, opts);
  }

  /** virStoragePoolGetInfo. */
  storagePoolGetInfo(pool: StoragePool, opts?: CallOptions): Promise<StoragePoolInfo> {
    return this.call(Proc.STORAGE_POOL_GET_INFO, (w) => writePool(w, pool), readPoolInfo, opts);
  }

  /** virStoragePoolGetXMLDesc. */
  storagePoolGetXmlDesc(pool: StoragePool, flags = 0, opts?: CallOptions): Promise<string> {
    return this.call(
      Proc.STORAGE_POOL_GET_XML_DESC,
      (w) => {
        writePool(w, pool);
        w.uint(flags);
      },
      readString,
      opts,
    );
  }

  /** virStoragePoolListAllVolumes. */
  storagePoolListAllVolumes(pool: StoragePool, flags = 0, opts?: CallOptions): Promise<StorageVol[]> {
    return this.call(
      Proc.STORAGE_POOL_LIST_ALL_VOLUMES,
      (w) => {
        writePool(w, pool);
        w.int(1);
        w.uint(flags);
      },
      (r) => {
        const vols = r.array(readVol, Limits.STORAGE_VOL_LIST_MAX);
        r.uint();
        return vols;
      },
      opts,
    );
  }

  // ---- Storage volumes ---------------------------------------------------------------------

  /** virStorageVolCreateXML. */
  storageVolCreateXml(pool: StoragePool, xml: string, flags = 0, opts?: CallOptions): Promise<StorageVol> {
    return this.call(
      Proc.STORAGE_VOL_CREATE_XML,
      (w) => {
        writePool(w, pool);
        w.string(xml);
        w.uint(flags);
      },
      readVol,
      opts,
    );
  }

  /** virStorageVolCreateXMLFrom: create a volume as a copy of `clone`. */
  storageVolCreateXmlFrom(
    pool: StoragePool,
    xml: string,
    clone: StorageVol,
    flags = 0,
    opts?: CallOptions,
  ): Promise<StorageVol> {
    return this.call(
      Proc.STORAGE_VOL_CREATE_XML_FROM,
      (w) => {
        writePool(w, pool);
        w.string(xml);
        writeVol(w, clone);
        w.uint(flags);
      },
      readVol,
      opts,
    );
  }

  /** virStorageVolLookupByName; VIR_ERR_NO_STORAGE_VOL when absent. */
  storageVolLookupByName(pool: StoragePool, name: string, opts?: CallOptions): Promise<StorageVol> {
    return this.call(
      Proc.STORAGE_VOL_LOOKUP_BY_NAME,
      (w) => {
        writePool(w, pool);
        w.string(name);
      },
      readVol,
      opts,
    );
  }

  /** virStorageVolLookupByPath. */
  storageVolLookupByPath(path: string, opts?: CallOptions): Promise<StorageVol> {
    return this.call(Proc.STORAGE_VOL_LOOKUP_BY_PATH, (w) => w.string(path), readVol, opts);
  }

  /** virStorageVolLookupByKey. */
  storageVolLookupByKey(key: string, opts?: CallOptions): Promise<StorageVol> {
    return this.call(Proc.STORAGE_VOL_LOOKUP_BY_KEY, (w) => w.string(key), readVol, opts);
  }

  /** virStorageVolGetPath. */
  storageVolGetPath(vol: StorageVol, opts?: CallOptions): Promise<string> {
    return this.call(Proc.STORAGE_VOL_GET_PATH, (w) => writeVol(w, vol), readString, opts);
  }

  /** virStorageVolGetInfo. */
  storageVolGetInfo(vol: StorageVol, opts?: CallOptions): Promise<StorageVolInfo> {
    return this.call(Proc.STORAGE_VOL_GET_INFO, (w) => writeVol(w, vol), readVolInfo, opts);
  }

  /** virStorageVolGetXMLDesc. */
  storageVolGetXmlDesc(vol: StorageVol, flags = 0, opts?: CallOptions): Promise<string> {
    return this.call(
      Proc.STORAGE_VOL_GET_XML_DESC,
      (w) => {
        writeVol(w, vol);
        w.uint(flags);
      },
      readString,
      opts,
    );
  }

  /** virStorageVolDelete. */
  storageVolDelete(vol: StorageVol, flags = 0, opts?: CallOptions): Promise<void> {
    return this.call(
      Proc.STORAGE_VOL_DELETE,
      (w) => {
        writeVol(w, vol);
        w.uint(flags);
      },
      null,
      opts,
    );
  }

  private streamArgs(vol: StorageVol, range: StreamRange): Encoder {
    return (w: XdrWriter) => {
      writeVol(w, vol);
      w.uhyper(big(range.offset));
      w.uhyper(big(range.length));
      w.uint(range.flags ?? 0);
    };
  }

  /**
   * virDomainOpenConsole: the guest's console (`devName`, or the first console when null) as a
   * Readable of what the guest writes. Destroying it closes the console stream on the daemon.
   * `flags`: VIR_DOMAIN_CONSOLE_FORCE (1), VIR_DOMAIN_CONSOLE_SAFE (2).
   */
  async domainOpenConsole(
    dom: Domain,
    devName: string | null = null,
    flags = 0,
    opts?: CallOptions,
  ): Promise<LibvirtReadStream> {
    const client = await this.client();
    const stream = new LibvirtReadStream(client, Proc.DOMAIN_OPEN_CONSOLE);
    const args: Encoder = (w) => {
      writeDomain(w, dom);
      w.optString(devName);
      w.uint(flags);
    };
    try {
      await client.callWithStream(Proc.DOMAIN_OPEN_CONSOLE, args, stream, opts);
    } catch (err) {
      stream.destroy();
      throw err;
    }
    return stream;
  }

  /**
   * virStorageVolDownload: a Readable (also an async iterable) of the volume's bytes. Destroying it
   * early aborts the transfer on the daemon.
   */
  async storageVolDownload(vol: StorageVol, range: StreamRange = {}, opts?: CallOptions): Promise<LibvirtReadStream> {
    const client = await this.client();
    const stream = new LibvirtReadStream(client, Proc.STORAGE_VOL_DOWNLOAD);
    try {
      await client.callWithStream(Proc.STORAGE_VOL_DOWNLOAD, this.streamArgs(vol, range), stream, opts);
    } catch (err) {
      stream.destroy();
      throw err;
    }
    return stream;
  }

  /**
   * virStorageVolUpload: a Writable; `end()` completes the upload (the finish handshake) and its
   * 'finish' event fires once libvirtd confirmed. Destroying it aborts the transfer.
   */
  async storageVolUpload(vol: StorageVol, range: StreamRange = {}, opts?: CallOptions): Promise<LibvirtWriteStream> {
    const client = await this.client();
    const stream = new LibvirtWriteStream(client, Proc.STORAGE_VOL_UPLOAD);
    try {
      await client.callWithStream(Proc.STORAGE_VOL_UPLOAD, this.streamArgs(vol, range), stream, opts);
    } catch (err) {
      stream.destroy();
      throw err;
    }
    return stream;
  }
}
