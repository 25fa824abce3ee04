// Encoders and decoders for the remote_protocol.x structs this client uses. Internal.

import { LibvirtProtocolError, type RemoteErrorFields } from "./errors.js";
import { Limits } from "./procedures.js";
import type {
  Domain,
  DomainInfo,
  DomainJobInfo,
  DomainSnapshot,
  NodeInfo,
  StoragePool,
  StoragePoolInfo,
  StorageVol,
  StorageVolInfo,
  TypedParam,
} from "./types.js";
import type { XdrReader, XdrWriter } from "./xdr.js";

const S = Limits.STRING_MAX;
const HEX: string[] = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));

/** 16 raw bytes to `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`. */
export function uuidToString(b: Uint8Array, at = 0): string {
  let s = "";
  for (let i = 0; i < 16; i++) {
    if (i === 4 || i === 6 || i === 8 || i === 10) s += "-";
    s += HEX[b[at + i] as number];
  }
  return s;
}

/** The value of one hex digit's char code, or -1. */
function hexDigit(c: number): number {
  if (c >= 48 && c <= 57) return c - 48; // 0-9
  if (c >= 97 && c <= 102) return c - 87; // a-f
  if (c >= 65 && c <= 70) return c - 55; // A-F
  return -1;
}

/**
 * Parses a UUID string (dashes optional, anywhere) into `out`; false when malformed. Every call
 * that names a domain encodes one, so this allocates nothing (no regex, no intermediate string).
 */
function parseUuidInto(uuid: string, out: Uint8Array): boolean {
  let n = 0;
  let high = -1;
  for (let i = 0; i < uuid.length; i++) {
    const c = uuid.charCodeAt(i);
    if (c === 45) continue; // "-"
    const v = hexDigit(c);
    if (v < 0 || n === 16) return false;
    if (high < 0) high = v;
    else {
      out[n++] = (high << 4) | v;
      high = -1;
    }
  }
  return n === 16 && high < 0;
}

/** A UUID string (dashes optional) to 16 bytes; throws RangeError when malformed. */
export function uuidToBytes(uuid: string): Buffer {
  const out = Buffer.alloc(16);
  if (!parseUuidInto(uuid, out)) throw new RangeError(`invalid UUID ${JSON.stringify(uuid)}`);
  return out;
}

/** Scratch space for {@link writeUuid}: the writer copies it at once. */
const uuidScratch = new Uint8Array(16);

function writeUuid(w: XdrWriter, uuid: string): void {
  if (!parseUuidInto(uuid, uuidScratch)) throw new RangeError(`invalid UUID ${JSON.stringify(uuid)}`);
  w.opaqueFixed(uuidScratch, 16);
}

function readUuid(r: XdrReader): string {
  if (r.remaining < 16) throw new LibvirtProtocolError("truncated XDR data reading uuid");
  const s = uuidToString(r.buf, r.pos);
  r.pos += 16;
  return s;
}

/** remote_nonnull_domain. */
export function writeDomain(w: XdrWriter, d: Domain): void {
  w.string(d.name);
  writeUuid(w, d.uuid);
  w.int(d.id);
}

/** remote_nonnull_domain. */
export function readDomain(r: XdrReader): Domain {
  const name = r.string(S);
  const uuid = readUuid(r);
  const id = r.int();
  return { name, uuid, id };
}

/** remote_nonnull_storage_pool. */
export function writePool(w: XdrWriter, p: StoragePool): void {
  w.string(p.name);
  writeUuid(w, p.uuid);
}

/** remote_nonnull_storage_pool. */
export function readPool(r: XdrReader): StoragePool {
  const name = r.string(S);
  return { name, uuid: readUuid(r) };
}

/** remote_nonnull_storage_vol. */
export function writeVol(w: XdrWriter, v: StorageVol): void {
  w.string(v.pool);
  w.string(v.name);
  w.string(v.key);
}

/** remote_nonnull_storage_vol. */
export function readVol(r: XdrReader): StorageVol {
  const pool = r.string(S);
  const name = r.string(S);
  return { pool, name, key: r.string(S) };
}

/** remote_nonnull_domain_snapshot. */
export function writeSnapshot(w: XdrWriter, s: DomainSnapshot): void {
  w.string(s.name);
  writeDomain(w, s.domain);
}

/** remote_nonnull_domain_snapshot. */
export function readSnapshot(r: XdrReader): DomainSnapshot {
  const name = r.string(S);
  return { name, domain: readDomain(r) };
}

/** remote_error. */
export function readRemoteError(r: XdrReader): RemoteErrorFields {
  const code = r.int();
  const domain = r.int();
  const message = r.optString(Limits.ERROR_STRING_MAX);
  const level = r.int();
  r.optional(readDomain); // dom: unused by libvirt
  const str1 = r.optString(Limits.ERROR_STRING_MAX);
  const str2 = r.optString(Limits.ERROR_STRING_MAX);
  const str3 = r.optString(Limits.ERROR_STRING_MAX);
  const int1 = r.int();
  const int2 = r.int();
  r.optional((rr) => {
    // net: remote_nonnull_network {name, uuid}, unused
    rr.string(S);
    return rr.opaqueFixed(16);
  });
  return { code, domain, message, level, str1, str2, str3, int1, int2 };
}

/** remote_error, for the mock daemon and tests. */
export function writeRemoteError(w: XdrWriter, e: Partial<RemoteErrorFields> & { code: number }): void {
  w.int(e.code);
  w.int(e.domain ?? 0);
  w.optString(e.message ?? null);
  w.int(e.level ?? 2);
  w.int(0); // dom
  w.optString(e.str1 ?? null);
  w.optString(e.str2 ?? null);
  w.optString(e.str3 ?? null);
  w.int(e.int1 ?? 0);
  w.int(e.int2 ?? 0);
  w.int(0); // net
}

// remote_typed_param_value discriminants (virTypedParameterType).
const TP_INT = 1;
const TP_UINT = 2;
const TP_LLONG = 3;
const TP_ULLONG = 4;
const TP_DOUBLE = 5;
const TP_BOOLEAN = 6;
const TP_STRING = 7;

/** remote_typed_param. */
export function writeTypedParam(w: XdrWriter, p: TypedParam): void {
  w.string(p.field);
  switch (p.type) {
    case "int":
      w.int(TP_INT);
      w.int(p.value);
      break;
    case "uint":
      w.int(TP_UINT);
      w.uint(p.value);
      break;
    case "llong":
      w.int(TP_LLONG);
      w.hyper(p.value);
      break;
    case "ullong":
      w.int(TP_ULLONG);
      w.uhyper(p.value);
      break;
    case "double":
      w.int(TP_DOUBLE);
      w.double(p.value);
      break;
    case "boolean":
      w.int(TP_BOOLEAN);
      w.int(p.value ? 1 : 0);
      break;
    case "string":
      w.int(TP_STRING);
      w.string(p.value);
      break;
  }
}

/** remote_typed_param. */
export function readTypedParam(r: XdrReader): TypedParam {
  const field = r.string(S);
  const type = r.int();
  switch (type) {
    case TP_INT:
      return { field, type: "int", value: r.int() };
    case TP_UINT:
      return { field, type: "uint", value: r.uint() };
    case TP_LLONG:
      return { field, type: "llong", value: r.hyper() };
    case TP_ULLONG:
      return { field, type: "ullong", value: r.uhyper() };
    case TP_DOUBLE:
      return { field, type: "double", value: r.double() };
    case TP_BOOLEAN:
      return { field, type: "boolean", value: r.int() !== 0 };
    case TP_STRING:
      return { field, type: "string", value: r.string(S) };
    default:
      throw new LibvirtProtocolError(`unknown typed parameter type ${type} for field ${JSON.stringify(field)}`);
  }
}

/** remote_typed_param list. */
export function writeTypedParams(w: XdrWriter, params: readonly TypedParam[]): void {
  w.array(params, writeTypedParam);
}

/** remote_typed_param list. */
export function readTypedParams(r: XdrReader): TypedParam[] {
  return r.array(readTypedParam, Limits.TYPED_PARAM_LIST_MAX);
}

/** remote_domain_get_info_ret. */
export function readDomainInfo(r: XdrReader): DomainInfo {
  return {
    state: r.uint(),
    maxMemKiB: r.uhyper(),
    memoryKiB: r.uhyper(),
    nrVirtCpu: r.uint(),
    cpuTimeNs: r.uhyper(),
  };
}

/** remote_node_get_info_ret; `char model[32]` is 32 XDR ints. */
export function readNodeInfo(r: XdrReader): NodeInfo {
  const bytes: number[] = [];
  for (let i = 0; i < 32; i++) {
    const c = r.int() & 0xff;
    bytes.push(c);
  }
  const nul = bytes.indexOf(0);
  const model = Buffer.from(nul === -1 ? bytes : bytes.slice(0, nul)).toString("utf8");
  return {
    model,
    memoryKiB: r.uhyper(),
    cpus: r.int(),
    mhz: r.int(),
    nodes: r.int(),
    sockets: r.int(),
    cores: r.int(),
    threads: r.int(),
  };
}

/** remote_storage_pool_get_info_ret. */
export function readPoolInfo(r: XdrReader): StoragePoolInfo {
  return { state: r.uint(), capacity: r.uhyper(), allocation: r.uhyper(), available: r.uhyper() };
}

/** remote_storage_vol_get_info_ret (`char type` is an XDR int). */
export function readVolInfo(r: XdrReader): StorageVolInfo {
  return { type: r.int(), capacity: r.uhyper(), allocation: r.uhyper() };
}

/** remote_domain_get_job_info_ret. */
export function readJobInfo(r: XdrReader): DomainJobInfo {
  return {
    type: r.int(),
    timeElapsed: r.uhyper(),
    timeRemaining: r.uhyper(),
    dataTotal: r.uhyper(),
    dataProcessed: r.uhyper(),
    dataRemaining: r.uhyper(),
    memTotal: r.uhyper(),
    memProcessed: r.uhyper(),
    memRemaining: r.uhyper(),
    fileTotal: r.uhyper(),
    fileProcessed: r.uhyper(),
    fileRemaining: r.uhyper(),
  };
}
