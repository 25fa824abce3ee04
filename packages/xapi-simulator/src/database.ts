// One pool's object database: a table per class (ref -> record, uuid -> ref), and the event log
// event.from reads. Records hold exactly the datamodel fields of schema.ts, so a record is put on
// the wire as is; the simulator's own state lives beside it, never in it.
import { randomUUID } from "node:crypto";
import { XapiError, handleInvalid } from "./errors.js";
import type { XapiClass } from "./schema.js";
import { XAPI_CLASSES, fieldTypes } from "./schema.js";
import { parseType } from "./wire/xapi-type.js";

/** A record as it goes on the wire: field name -> value. */
export type XapiRecord = Record<string, unknown>;

/** XAPI's null reference. */
export const NULL_REF = "OpaqueRef:NULL";

let memoSecond = Number.NaN;
let memoText = "";

/** XAPI's datetime form, e.g. 20261130T12:00:00Z (whole seconds: the last one formatted is kept). */
export function xapiDate(d: Date = new Date()): string {
  const second = Math.floor(d.getTime() / 1000);
  if (second !== memoSecond) {
    memoText = d.toISOString().replace(/-/g, "").replace(/\.\d+Z$/, "Z");
    memoSecond = second;
  }
  return memoText;
}

const EPOCH = "19700101T00:00:00Z";

/** One entry of the event log. */
export interface LoggedEvent {
  readonly id: number;
  readonly cls: XapiClass;
  readonly ref: string;
  readonly op: "add" | "mod" | "del";
  readonly timestamp: string;
  /** The record as it was when deleted (del events only). */
  readonly last?: XapiRecord;
}

interface Table {
  readonly records: Map<string, XapiRecord>;
  readonly byUuid: Map<string, string>;
  /** Event id at which each live record was created (add vs mod in event.from). */
  readonly createdAt: Map<string, number>;
}

function defaultFor(type: string): unknown {
  const t = parseType(type);
  switch (t.k) {
    case "string":
    case "enum":
      return "";
    case "int":
    case "float":
      return 0;
    case "bool":
      return false;
    case "datetime":
      return EPOCH;
    case "ref":
      return NULL_REF;
    case "set":
      return [];
    default:
      return {};
  }
}

/** Per class, each field with its empty value, or "set"/"map" for a fresh empty one each record. */
const blanks = new Map<string, readonly (readonly [string, unknown])[]>();
const FRESH_SET = Symbol("set");
const FRESH_MAP = Symbol("map");

function blankOf(cls: XapiClass): readonly (readonly [string, unknown])[] {
  let b = blanks.get(cls);
  if (!b) {
    b = Object.entries(fieldTypes(cls) ?? {}).map(([name, type]) => {
      const v = defaultFor(type);
      return [name, Array.isArray(v) ? FRESH_SET : typeof v === "object" ? FRESH_MAP : v] as const;
    });
    blanks.set(cls, b);
  }
  return b;
}

/** Keep at most this many events; a token older than the log is EVENTS_LOST, as in XAPI. */
const MAX_EVENTS = 200_000;

/** The tables and event log of one pool. */
export class Database {
  private readonly tables = new Map<XapiClass, Table>();
  private readonly log: LoggedEvent[] = [];
  private firstLogged = 1;
  private generation = 0;
  private readonly listeners = new Set<() => void>();
  private notifyScheduled = false;

  constructor() {
    for (const cls of XAPI_CLASSES) this.tables.set(cls, { records: new Map(), byUuid: new Map(), createdAt: new Map() });
  }

  private table(cls: XapiClass): Table {
    const t = this.tables.get(cls);
    if (!t) throw new Error(`no table ${cls}`);
    return t;
  }

  /** The newest event id. */
  get currentId(): number {
    return this.generation;
  }

  /** Insert a record: unset fields take their type's empty value; returns the new ref. */
  create(cls: XapiClass, fields: XapiRecord, ref = `OpaqueRef:${randomUUID()}`): string {
    const record: XapiRecord = {};
    for (const [name, blank] of blankOf(cls)) {
      const v = fields[name];
      record[name] = v ?? (blank === FRESH_SET ? [] : blank === FRESH_MAP ? {} : blank);
    }
    if (!record.uuid) record.uuid = randomUUID();
    const t = this.table(cls);
    t.records.set(ref, record);
    t.byUuid.set(String(record.uuid), ref);
    this.emit(cls, ref, "add");
    t.createdAt.set(ref, this.generation);
    return ref;
  }

  /** The live record, or HANDLE_INVALID [class, ref]. */
  get(cls: XapiClass, ref: string): XapiRecord {
    const r = this.table(cls).records.get(ref);
    if (!r) handleInvalid(cls, ref);
    return r;
  }

  /** The live record or undefined. */
  find(cls: XapiClass, ref: string): XapiRecord | undefined {
    return this.table(cls).records.get(ref);
  }

  has(cls: XapiClass, ref: string): boolean {
    return this.table(cls).records.has(ref);
  }

  /** Change fields of a record and log one mod event. */
  update(cls: XapiClass, ref: string, patch: XapiRecord): XapiRecord {
    const r = this.get(cls, ref);
    Object.assign(r, patch);
    this.emit(cls, ref, "mod");
    return r;
  }

  /** Remove a record (no-op if gone) and log a del event carrying its last state. */
  destroy(cls: XapiClass, ref: string): void {
    const t = this.table(cls);
    const r = t.records.get(ref);
    if (!r) return;
    t.records.delete(ref);
    t.byUuid.delete(String(r.uuid));
    t.createdAt.delete(ref);
    this.emit(cls, ref, "del", r);
  }

  /** Ref of the record with this uuid, or UUID_INVALID [class, uuid]. */
  byUuid(cls: XapiClass, uuid: string): string {
    const ref = this.table(cls).byUuid.get(uuid);
    if (!ref) throw new XapiError("UUID_INVALID", [cls, uuid]);
    return ref;
  }

  findByUuid(cls: XapiClass, uuid: string): string | undefined {
    return this.table(cls).byUuid.get(uuid);
  }

  /** Every live record of a class. */
  all(cls: XapiClass): ReadonlyMap<string, XapiRecord> {
    return this.table(cls).records;
  }

  createdAt(cls: XapiClass, ref: string): number | undefined {
    return this.table(cls).createdAt.get(ref);
  }

  private emit(cls: XapiClass, ref: string, op: LoggedEvent["op"], last?: XapiRecord): void {
    this.generation++;
    const ev: LoggedEvent = last
      ? { id: this.generation, cls, ref, op, timestamp: xapiDate(), last: { ...last } }
      : { id: this.generation, cls, ref, op, timestamp: xapiDate() };
    this.log.push(ev);
    if (this.log.length > MAX_EVENTS) {
      const drop = this.log.length - MAX_EVENTS / 2;
      this.log.splice(0, drop);
      this.firstLogged = this.log[0]?.id ?? this.generation + 1;
    }
    if (!this.notifyScheduled && this.listeners.size > 0) {
      this.notifyScheduled = true;
      // Coalesce a burst of changes into one wake-up of event.from waiters.
      setImmediate(() => {
        this.notifyScheduled = false;
        for (const l of [...this.listeners]) l();
      });
    }
  }

  /** Events with id > since, or EVENTS_LOST when the log no longer reaches back that far. */
  eventsSince(since: number): LoggedEvent[] {
    if (since + 1 < this.firstLogged) throw new XapiError("EVENTS_LOST", []);
    // The log is ordered by id with no gaps: index arithmetic instead of a scan.
    const start = Math.max(0, since + 1 - this.firstLogged);
    return this.log.slice(start);
  }

  /** Call back on the next batch of changes; returns an unsubscribe function. */
  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}
