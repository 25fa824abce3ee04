/**
 * The subset of libvirt calls the driver uses. `LibvirtConnection` from `@virtkit/libvirt-rpc`
 * satisfies it as is (same method names and shapes); unit tests pass an in-memory stand-in.
 */
import type { InjectionToken } from "tsyringe";
import {
  LibvirtConnection,
  type CallOptions,
  type Domain,
  type DomainInfo,
  type DomainJobInfo,
  type DomainLifecycleListener,
  type DomainSnapshot,
  type DomainStateInfo,
  type EventSubscription,
  type LibvirtConnectOptions,
  type LibvirtVersion,
  type NodeInfo,
  type StoragePool,
  type StoragePoolInfo,
  type StorageVol,
  type StorageVolInfo,
  type StreamRange,
  type TypedParam,
} from "@virtkit/libvirt-rpc";

/** A readable byte stream (a storage volume download, a console); `destroy` aborts it. */
export type ByteStream = AsyncIterable<Uint8Array> & {
  destroy(error?: Error): unknown;
  /** Settles once the daemon has nothing more to send for the stream (an abort confirmed, its end). */
  readonly released?: Promise<void>;
};

/** What the driver needs from a libvirt connection. */
export interface LibvirtApi {
  close(opts?: CallOptions): Promise<void>;
  /** How often the link was re-opened: what was learnt about the daemon is valid for one value. */
  readonly reconnectCount?: number;

  connectGetHostname(opts?: CallOptions): Promise<string>;
  connectGetType(opts?: CallOptions): Promise<string>;
  connectGetVersion(opts?: CallOptions): Promise<LibvirtVersion>;
  connectGetLibVersion(opts?: CallOptions): Promise<LibvirtVersion>;
  connectGetCapabilities(opts?: CallOptions): Promise<string>;
  nodeGetInfo(opts?: CallOptions): Promise<NodeInfo>;

  connectListAllDomains(flags?: number, opts?: CallOptions): Promise<Domain[]>;
  domainLookupByUuid(uuid: string, opts?: CallOptions): Promise<Domain>;
  domainLookupByName(name: string, opts?: CallOptions): Promise<Domain>;
  domainDefineXml(xml: string, flags?: number, opts?: CallOptions): Promise<Domain>;
  domainCreateWithFlags(dom: Domain, flags?: number, opts?: CallOptions): Promise<Domain>;
  domainSuspend(dom: Domain, opts?: CallOptions): Promise<void>;
  domainResume(dom: Domain, opts?: CallOptions): Promise<void>;
  domainShutdown(dom: Domain, flags?: number, opts?: CallOptions): Promise<void>;
  domainReboot(dom: Domain, flags?: number, opts?: CallOptions): Promise<void>;
  domainReset(dom: Domain, flags?: number, opts?: CallOptions): Promise<void>;
  domainDestroy(dom: Domain, flags?: number, opts?: CallOptions): Promise<void>;
  domainUndefine(dom: Domain, flags?: number, opts?: CallOptions): Promise<void>;
  domainGetInfo(dom: Domain, opts?: CallOptions): Promise<DomainInfo>;
  domainGetState(dom: Domain, flags?: number, opts?: CallOptions): Promise<DomainStateInfo>;
  domainGetXmlDesc(dom: Domain, flags?: number, opts?: CallOptions): Promise<string>;
  domainManagedSave(dom: Domain, flags?: number, opts?: CallOptions): Promise<void>;
  domainHasManagedSaveImage(dom: Domain, flags?: number, opts?: CallOptions): Promise<boolean>;
  domainManagedSaveRemove(dom: Domain, flags?: number, opts?: CallOptions): Promise<void>;
  /** virDomainOpenConsole: the console's output as a read stream (`devName` null: the first console). */
  domainOpenConsole(dom: Domain, devName?: string | null, flags?: number, opts?: CallOptions): Promise<ByteStream>;
  domainSetUserPassword(dom: Domain, user: string, password: string, flags?: number, opts?: CallOptions): Promise<void>;

  domainSnapshotCreateXml(dom: Domain, xml: string, flags?: number, opts?: CallOptions): Promise<DomainSnapshot>;
  domainListAllSnapshots(dom: Domain, flags?: number, opts?: CallOptions): Promise<DomainSnapshot[]>;
  domainSnapshotLookupByName(dom: Domain, name: string, flags?: number, opts?: CallOptions): Promise<DomainSnapshot>;
  domainRevertToSnapshot(snap: DomainSnapshot, flags?: number, opts?: CallOptions): Promise<void>;
  domainSnapshotDelete(snap: DomainSnapshot, flags?: number, opts?: CallOptions): Promise<void>;
  domainSnapshotGetXmlDesc(snap: DomainSnapshot, flags?: number, opts?: CallOptions): Promise<string>;

  domainMigratePerform3Params(
    dom: Domain,
    dconnuri: string | null,
    params: readonly TypedParam[],
    cookieIn?: Uint8Array,
    flags?: number,
    opts?: CallOptions,
  ): Promise<Uint8Array>;
  domainMigrateSetMaxDowntime(
    dom: Domain,
    downtimeMs: bigint | number,
    flags?: number,
    opts?: CallOptions,
  ): Promise<void>;
  domainMigrateSetMaxSpeed(dom: Domain, bandwidth: bigint | number, flags?: number, opts?: CallOptions): Promise<void>;
  domainGetJobInfo(dom: Domain, opts?: CallOptions): Promise<DomainJobInfo>;
  domainAbortJob(dom: Domain, opts?: CallOptions): Promise<void>;
  /** virDomainMigrateStartPostCopy: switch a migration started with VIR_MIGRATE_POSTCOPY to post-copy. */
  domainMigrateStartPostCopy(dom: Domain, flags?: number, opts?: CallOptions): Promise<void>;

  domainEventLifecycleRegister(
    listener: DomainLifecycleListener,
    options?: CallOptions & { domain?: Domain },
  ): Promise<EventSubscription>;

  storagePoolLookupByName(name: string, opts?: CallOptions): Promise<StoragePool>;
  storagePoolDefineXml(xml: string, flags?: number, opts?: CallOptions): Promise<StoragePool>;
  storagePoolBuild(pool: StoragePool, flags?: number, opts?: CallOptions): Promise<void>;
  storagePoolCreate(pool: StoragePool, flags?: number, opts?: CallOptions): Promise<void>;
  storagePoolRefresh(pool: StoragePool, flags?: number, opts?: CallOptions): Promise<void>;
  storagePoolListAllVolumes(pool: StoragePool, flags?: number, opts?: CallOptions): Promise<StorageVol[]>;
  storagePoolGetInfo(pool: StoragePool, opts?: CallOptions): Promise<StoragePoolInfo>;
  storagePoolGetXmlDesc(pool: StoragePool, flags?: number, opts?: CallOptions): Promise<string>;
  storageVolCreateXml(pool: StoragePool, xml: string, flags?: number, opts?: CallOptions): Promise<StorageVol>;
  storageVolCreateXmlFrom(
    pool: StoragePool,
    xml: string,
    clone: StorageVol,
    flags?: number,
    opts?: CallOptions,
  ): Promise<StorageVol>;
  storageVolLookupByName(pool: StoragePool, name: string, opts?: CallOptions): Promise<StorageVol>;
  storageVolLookupByPath(path: string, opts?: CallOptions): Promise<StorageVol>;
  storageVolGetPath(vol: StorageVol, opts?: CallOptions): Promise<string>;
  storageVolGetInfo(vol: StorageVol, opts?: CallOptions): Promise<StorageVolInfo>;
  storageVolDelete(vol: StorageVol, flags?: number, opts?: CallOptions): Promise<void>;
  storageVolGetXmlDesc(vol: StorageVol, flags?: number, opts?: CallOptions): Promise<string>;
  storageVolDownload(vol: StorageVol, range?: StreamRange, opts?: CallOptions): Promise<ByteStream>;
}

/** Opens a connection for the driver. */
export type LibvirtConnector = (uri: string, options: LibvirtConnectOptions) => Promise<LibvirtApi>;

/** Opens a real connection through `@virtkit/libvirt-rpc`. */
export const openRpcConnection: LibvirtConnector = async (uri, options) => {
  const conn: LibvirtApi = await LibvirtConnection.open(uri, options);
  return conn;
};

/**
 * The token under which a service (or the conformance kit) may register a {@link LibvirtConnector}
 * for the plugin's `register` to use instead of opening plain connections (to instrument them).
 */
export const LIBVIRT_CONNECTOR: InjectionToken<LibvirtConnector> = Symbol.for("virtkit.libvirt.Connector");
