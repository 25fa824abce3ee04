/**
 * An in-memory stand-in for a libvirt connection (the {@link LibvirtApi} subset), for unit tests
 * of the driver's logic: states, managed save, snapshots, a pool with volumes, and injectable
 * daemon errors (`failNext`). Not shipped (excluded from the build).
 */
import { randomUUID } from "node:crypto";
import { PassThrough } from "node:stream";
import {
  DomainState,
  LibvirtError,
  VirErrorNumber as E,
  type CallOptions,
  type Domain,
  type DomainInfo,
  type DomainJobInfo,
  type DomainLifecycleListener,
  type DomainSnapshot,
  type DomainStateInfo,
  type EventSubscription,
  type LibvirtVersion,
  type NodeInfo,
  type StoragePool,
  type StoragePoolInfo,
  type StorageVol,
  type StorageVolInfo,
  type TypedParam,
} from "@virtkit/libvirt-rpc";
import { readDomainXml } from "../domain-xml.js";
import type { ByteStream, LibvirtApi } from "../libvirt-connection.js";
import { child, parseXml } from "../xml.js";

/** A daemon error like the rpc client raises. */
export function daemonError(code: number, message: string, int1 = 0): LibvirtError {
  return new LibvirtError(
    { code, domain: 12, message, level: 2, str1: message, str2: null, str3: null, int1, int2: 0 },
    "FAKE",
  );
}

interface FakeDomain {
  dom: Domain;
  xml: string;
  state: number;
  managedSave: boolean;
  snapshots: Map<string, { xml: string; state: number }>;
}

/** Every call the fake received, by method name, for assertions. */
export type CallLog = { method: string; args: unknown[] }[];

/** The in-memory libvirt. */
export class FakeLibvirt implements LibvirtApi {
  readonly calls: CallLog = [];
  readonly domains = new Map<string, FakeDomain>();
  readonly volumes = new Map<string, { vol: StorageVol; path: string; data: Uint8Array; capacity: bigint }>();
  readonly pool: StoragePool = { name: "default", uuid: randomUUID() };
  /** What a domain's console prints when a console stream opens (by uuid; default none). */
  readonly consoleText = new Map<string, string>();
  /** Console streams opened, in order, with their domain's uuid. */
  readonly consoles: { uuid: string; flags: number; stream: PassThrough }[] = [];
  /** Errors to raise on the next call of a method (consumed in order). */
  readonly #failures = new Map<string, Error[]>();
  readonly #listeners = new Set<DomainLifecycleListener>();
  /** Set by the test to make `domainSuspend` of a paused domain succeed silently (like some drivers). */
  hostname = "fakehost";
  /** What `domainGetJobInfo` reports as the job type (0 = none, 2 = unbounded, as a migration). */
  jobType = 0;
  /** While set, `domainMigratePerform3Params` waits for it (a migration in progress). */
  migrationGate: Promise<void> | undefined;
  closed = false;
  /** Whether the pool is started (a stopped pool refuses volume creation, as libvirt does). */
  poolActive = true;
  #nextId = 1;

  /** Makes the next call of `method` reject with `err`. */
  failNext(method: keyof LibvirtApi, err: Error): void {
    const list = this.#failures.get(method) ?? [];
    list.push(err);
    this.#failures.set(method, list);
  }

  #enter(method: string, args: unknown[]): void {
    this.calls.push({ method, args });
    const err = this.#failures.get(method)?.shift();
    if (err) throw err;
  }

  #get(dom: Domain): FakeDomain {
    const d = this.domains.get(dom.uuid);
    if (!d) throw daemonError(E.VIR_ERR_NO_DOMAIN, `Domain not found: no domain with matching uuid '${dom.uuid}'`);
    return d;
  }

  #emit(d: FakeDomain, event: number, detail = 0): void {
    for (const l of this.#listeners) l({ domain: d.dom, event, eventName: String(event), detail });
  }

  #running(d: FakeDomain): void {
    if (d.state !== DomainState.RUNNING && d.state !== DomainState.PAUSED) {
      throw daemonError(E.VIR_ERR_OPERATION_INVALID, "Requested operation is not valid: domain is not running");
    }
  }

  async close(): Promise<void> {
    this.closed = true;
  }
  async connectGetHostname(): Promise<string> {
    this.#enter("connectGetHostname", []);
    return this.hostname;
  }
  async connectGetType(): Promise<string> {
    this.#enter("connectGetType", []);
    return "QEMU";
  }
  async connectGetVersion(): Promise<LibvirtVersion> {
    this.#enter("connectGetVersion", []);
    return { major: 7, minor: 2, release: 0, raw: 7002000n };
  }
  async connectGetLibVersion(): Promise<LibvirtVersion> {
    return { major: 9, minor: 0, release: 0, raw: 9000000n };
  }
  async connectGetCapabilities(): Promise<string> {
    return "<capabilities/>";
  }
  async nodeGetInfo(): Promise<NodeInfo> {
    this.#enter("nodeGetInfo", []);
    return {
      model: "x86_64",
      memoryKiB: 8n * 1024n * 1024n,
      cpus: 4,
      mhz: 2000,
      nodes: 1,
      sockets: 1,
      cores: 4,
      threads: 1,
    };
  }

  async connectListAllDomains(): Promise<Domain[]> {
    this.#enter("connectListAllDomains", []);
    return [...this.domains.values()].map((d) => d.dom);
  }
  async domainLookupByUuid(uuid: string): Promise<Domain> {
    this.#enter("domainLookupByUuid", [uuid]);
    const d = this.domains.get(uuid);
    if (!d) throw daemonError(E.VIR_ERR_NO_DOMAIN, `Domain not found: no domain with matching uuid '${uuid}'`);
    return d.dom;
  }
  async domainLookupByName(name: string): Promise<Domain> {
    const d = [...this.domains.values()].find((x) => x.dom.name === name);
    if (!d) throw daemonError(E.VIR_ERR_NO_DOMAIN, `Domain not found: '${name}'`);
    return d.dom;
  }
  async domainDefineXml(xml: string): Promise<Domain> {
    this.#enter("domainDefineXml", [xml]);
    const facts = readDomainXml(xml);
    const existing = this.domains.get(facts.uuid);
    if (existing) {
      existing.xml = xml;
      this.#emit(existing, 0, 1); // VIR_DOMAIN_EVENT_DEFINED_UPDATED
      return existing.dom;
    }
    const d: FakeDomain = {
      dom: { name: facts.name, uuid: facts.uuid, id: -1 },
      xml,
      state: DomainState.SHUTOFF,
      managedSave: false,
      snapshots: new Map(),
    };
    this.domains.set(facts.uuid, d);
    this.#emit(d, 0, 0); // VIR_DOMAIN_EVENT_DEFINED_ADDED
    return d.dom;
  }
  async domainCreateWithFlags(dom: Domain, flags = 0): Promise<Domain> {
    this.#enter("domainCreateWithFlags", [dom, flags]);
    const d = this.#get(dom);
    if (d.state !== DomainState.SHUTOFF) throw daemonError(E.VIR_ERR_OPERATION_INVALID, "domain is already running");
    d.dom = { ...d.dom, id: this.#nextId++ };
    d.state = flags & 1 ? DomainState.PAUSED : DomainState.RUNNING;
    d.managedSave = false;
    this.#emit(d, 2);
    return d.dom;
  }
  async domainSuspend(dom: Domain): Promise<void> {
    this.#enter("domainSuspend", [dom]);
    const d = this.#get(dom);
    this.#running(d);
    // Like QEMU: suspending a paused domain succeeds silently.
    d.state = DomainState.PAUSED;
    this.#emit(d, 3);
  }
  async domainResume(dom: Domain): Promise<void> {
    this.#enter("domainResume", [dom]);
    const d = this.#get(dom);
    if (d.state !== DomainState.PAUSED) throw daemonError(E.VIR_ERR_OPERATION_INVALID, "domain is not paused");
    d.state = DomainState.RUNNING;
    this.#emit(d, 4);
  }
  async domainShutdown(dom: Domain): Promise<void> {
    this.#enter("domainShutdown", [dom]);
    const d = this.#get(dom);
    this.#running(d);
    d.state = DomainState.SHUTOFF;
    d.dom = { ...d.dom, id: -1 };
    this.#emit(d, 5);
  }
  async domainReboot(dom: Domain): Promise<void> {
    this.#enter("domainReboot", [dom]);
    this.#running(this.#get(dom));
  }
  async domainReset(dom: Domain): Promise<void> {
    this.#enter("domainReset", [dom]);
    this.#running(this.#get(dom));
  }
  async domainOpenConsole(dom: Domain, devName: string | null = null, flags = 0): Promise<ByteStream> {
    this.#enter("domainOpenConsole", [dom, devName, flags]);
    const d = this.#get(dom);
    if (d.state !== DomainState.RUNNING && d.state !== DomainState.PAUSED) {
      throw daemonError(E.VIR_ERR_OPERATION_INVALID, "domain is not running");
    }
    const uuid = d.dom.uuid;
    const busy = this.consoles.find((c) => c.uuid === uuid && !c.stream.destroyed && !c.stream.writableEnded);
    if (busy && !(flags & 1))
      throw daemonError(E.VIR_ERR_OPERATION_FAILED, "Active console session exists for this domain");
    busy?.stream.end();
    const stream = new PassThrough();
    this.consoles.push({ uuid, flags, stream });
    const text = this.consoleText.get(uuid);
    if (text) stream.write(text);
    return stream;
  }
  #endConsoles(uuid: string): void {
    for (const c of this.consoles) if (c.uuid === uuid && !c.stream.writableEnded) c.stream.end();
  }
  async domainDestroy(dom: Domain): Promise<void> {
    this.#enter("domainDestroy", [dom]);
    const d = this.#get(dom);
    this.#running(d);
    this.#endConsoles(d.dom.uuid);
    d.state = DomainState.SHUTOFF;
    d.dom = { ...d.dom, id: -1 };
    this.#emit(d, 5, 1);
  }
  async domainUndefine(dom: Domain, flags = 0): Promise<void> {
    this.#enter("domainUndefine", [dom, flags]);
    const d = this.#get(dom);
    if (d.managedSave && !(flags & 1))
      throw daemonError(E.VIR_ERR_OPERATION_INVALID, "domain has a managed save image");
    if (d.snapshots.size > 0 && !(flags & 2)) throw daemonError(E.VIR_ERR_OPERATION_INVALID, "domain has snapshots");
    this.domains.delete(dom.uuid);
    this.#emit(d, 1); // VIR_DOMAIN_EVENT_UNDEFINED
  }
  async domainGetInfo(dom: Domain): Promise<DomainInfo> {
    this.#enter("domainGetInfo", [dom]);
    const d = this.#get(dom);
    return { state: d.state, maxMemKiB: 65536n, memoryKiB: 65536n, nrVirtCpu: 1, cpuTimeNs: 123n };
  }
  async domainGetState(dom: Domain): Promise<DomainStateInfo> {
    this.#enter("domainGetState", [dom]);
    return { state: this.#get(dom).state, reason: 0 };
  }
  async domainGetXmlDesc(dom: Domain): Promise<string> {
    this.#enter("domainGetXmlDesc", [dom]);
    return this.#get(dom).xml;
  }
  async domainManagedSave(dom: Domain): Promise<void> {
    this.#enter("domainManagedSave", [dom]);
    const d = this.#get(dom);
    this.#running(d);
    d.state = DomainState.SHUTOFF;
    d.managedSave = true;
    this.#emit(d, 5, 4);
  }
  async domainHasManagedSaveImage(dom: Domain): Promise<boolean> {
    return this.#get(dom).managedSave;
  }
  async domainManagedSaveRemove(dom: Domain): Promise<void> {
    this.#get(dom).managedSave = false;
  }
  async domainSetUserPassword(dom: Domain, user: string, password: string): Promise<void> {
    this.#enter("domainSetUserPassword", [dom, user, password]);
    this.#running(this.#get(dom));
  }

  async domainSnapshotCreateXml(dom: Domain, xml: string): Promise<DomainSnapshot> {
    this.#enter("domainSnapshotCreateXml", [dom, xml]);
    const d = this.#get(dom);
    const name = child(parseXml(xml), "name")?.text ?? randomUUID();
    d.snapshots.set(name, { xml, state: d.state });
    return { name, domain: d.dom };
  }
  async domainListAllSnapshots(dom: Domain): Promise<DomainSnapshot[]> {
    const d = this.#get(dom);
    return [...d.snapshots.keys()].map((name) => ({ name, domain: d.dom }));
  }
  async domainSnapshotLookupByName(dom: Domain, name: string): Promise<DomainSnapshot> {
    const d = this.#get(dom);
    if (!d.snapshots.has(name)) throw daemonError(E.VIR_ERR_NO_DOMAIN_SNAPSHOT, `no snapshot '${name}'`);
    return { name, domain: d.dom };
  }
  async domainRevertToSnapshot(snap: DomainSnapshot): Promise<void> {
    const d = this.#get(snap.domain);
    const s = d.snapshots.get(snap.name);
    if (!s) throw daemonError(E.VIR_ERR_NO_DOMAIN_SNAPSHOT, "no snapshot");
    d.state = s.state;
  }
  async domainSnapshotDelete(snap: DomainSnapshot): Promise<void> {
    this.#get(snap.domain).snapshots.delete(snap.name);
  }
  async domainSnapshotGetXmlDesc(snap: DomainSnapshot): Promise<string> {
    const s = this.#get(snap.domain).snapshots.get(snap.name);
    if (!s) throw daemonError(E.VIR_ERR_NO_DOMAIN_SNAPSHOT, "no snapshot");
    const states: Record<number, string> = { 1: "running", 3: "paused", 5: "shutoff" };
    return s.xml.replace(
      "</domainsnapshot>",
      `<state>${states[s.state] ?? "nostate"}</state><creationTime>1</creationTime></domainsnapshot>`,
    );
  }

  async domainMigratePerform3Params(
    dom: Domain,
    dconnuri: string | null,
    params: readonly TypedParam[],
    _cookie?: Uint8Array,
    flags = 0,
  ): Promise<Uint8Array> {
    this.#enter("domainMigratePerform3Params", [dom, dconnuri, params, flags]);
    this.#running(this.#get(dom));
    if (this.migrationGate) await this.migrationGate;
    return new Uint8Array(0);
  }
  async domainMigrateSetMaxDowntime(dom: Domain, ms: bigint | number): Promise<void> {
    this.#enter("domainMigrateSetMaxDowntime", [dom, ms]);
  }
  async domainMigrateSetMaxSpeed(dom: Domain, bw: bigint | number): Promise<void> {
    this.#enter("domainMigrateSetMaxSpeed", [dom, bw]);
  }
  async domainGetJobInfo(dom: Domain): Promise<DomainJobInfo> {
    this.#enter("domainGetJobInfo", [dom]);
    return {
      type: this.jobType,
      timeElapsed: 0n,
      timeRemaining: 0n,
      dataTotal: 0n,
      dataProcessed: 0n,
      dataRemaining: 0n,
      memTotal: 0n,
      memProcessed: 0n,
      memRemaining: 0n,
      fileTotal: 0n,
      fileProcessed: 0n,
      fileRemaining: 0n,
    };
  }
  async domainAbortJob(dom: Domain): Promise<void> {
    this.#enter("domainAbortJob", [dom]);
  }
  async domainMigrateStartPostCopy(dom: Domain, flags = 0): Promise<void> {
    this.#enter("domainMigrateStartPostCopy", [dom, flags]);
    this.#running(this.#get(dom));
  }

  async domainEventLifecycleRegister(
    listener: DomainLifecycleListener,
    _options?: CallOptions & { domain?: Domain },
  ): Promise<EventSubscription> {
    this.#listeners.add(listener);
    return {
      callbackId: 1,
      unsubscribe: async () => {
        this.#listeners.delete(listener);
      },
    };
  }

  async storagePoolLookupByName(name: string): Promise<StoragePool> {
    this.#enter("storagePoolLookupByName", [name]);
    if (name !== this.pool.name) throw daemonError(E.VIR_ERR_NO_STORAGE_POOL, `no pool '${name}'`);
    return this.pool;
  }
  async storagePoolDefineXml(): Promise<StoragePool> {
    return this.pool;
  }
  async storagePoolBuild(): Promise<void> {}
  async storagePoolCreate(): Promise<void> {
    this.#enter("storagePoolCreate", []);
    this.poolActive = true;
  }
  async storagePoolGetInfo(): Promise<StoragePoolInfo> {
    this.#enter("storagePoolGetInfo", []);
    return { state: this.poolActive ? 2 : 0, capacity: 100n * 2n ** 30n, allocation: 0n, available: 100n * 2n ** 30n };
  }
  async storagePoolRefresh(): Promise<void> {}
  async storagePoolListAllVolumes(): Promise<StorageVol[]> {
    this.#enter("storagePoolListAllVolumes", []);
    return [...this.volumes.values()].map((v) => v.vol);
  }
  async storagePoolGetXmlDesc(): Promise<string> {
    return "<pool type='dir'><target><path>/pool</path></target></pool>";
  }
  async storageVolCreateXml(_pool: StoragePool, xml: string): Promise<StorageVol> {
    this.#enter("storageVolCreateXml", [xml]);
    const v = parseXml(xml);
    const name = child(v, "name")?.text ?? "";
    if (!this.poolActive)
      throw daemonError(E.VIR_ERR_OPERATION_INVALID, `storage pool '${this.pool.name}' is not active`);
    if (this.volumes.has(name)) throw daemonError(E.VIR_ERR_STORAGE_VOL_EXIST, "exists");
    const vol = { pool: this.pool.name, name, key: `/pool/${name}` };
    this.volumes.set(name, {
      vol,
      path: `/pool/${name}`,
      data: new Uint8Array(0),
      capacity: BigInt(child(v, "capacity")?.text ?? "0"),
    });
    return vol;
  }
  async storageVolCreateXmlFrom(pool: StoragePool, xml: string, clone: StorageVol): Promise<StorageVol> {
    const vol = await this.storageVolCreateXml(pool, xml);
    const src = this.volumes.get(clone.name);
    const dst = this.volumes.get(vol.name);
    if (src && dst) dst.data = src.data;
    return vol;
  }
  async storageVolLookupByName(_pool: StoragePool, name: string): Promise<StorageVol> {
    const v = this.volumes.get(name);
    if (!v) throw daemonError(E.VIR_ERR_NO_STORAGE_VOL, `no volume '${name}'`);
    return v.vol;
  }
  async storageVolLookupByPath(path: string): Promise<StorageVol> {
    const v = [...this.volumes.values()].find((x) => x.path === path);
    if (!v) throw daemonError(E.VIR_ERR_NO_STORAGE_VOL, `no volume at '${path}'`);
    return v.vol;
  }
  async storageVolGetPath(vol: StorageVol): Promise<string> {
    return `/pool/${vol.name}`;
  }
  async storageVolGetInfo(vol: StorageVol): Promise<StorageVolInfo> {
    return { type: 0, capacity: this.volumes.get(vol.name)?.capacity ?? 0n, allocation: 0n };
  }
  async storageVolGetXmlDesc(vol: StorageVol): Promise<string> {
    return `<volume><name>${vol.name}</name></volume>`;
  }
  async storageVolDelete(vol: StorageVol): Promise<void> {
    this.#enter("storageVolDelete", [vol]);
    if (!this.volumes.delete(vol.name)) throw daemonError(E.VIR_ERR_NO_STORAGE_VOL, "no volume");
  }
  async storageVolDownload(vol: StorageVol): Promise<ByteStream> {
    this.#enter("storageVolDownload", [vol]);
    const data = this.volumes.get(vol.name)?.data ?? new Uint8Array(0);
    let destroyed = false;
    return {
      destroy: () => {
        destroyed = true;
      },
      async *[Symbol.asyncIterator]() {
        if (!destroyed) yield data;
      },
    };
  }
}
