// Fault switches of one simulator instance, consulted by the dispatcher and the HTTP endpoints.
import { XapiError } from "./errors.js";

/** The fault switches a test flips on a running simulator. */
export interface XapiFaults {
  /** Invalidate every open session: their next call answers SESSION_INVALID. */
  dropSessions(): void;
  /** The next `times` calls of `method` ("VM.start"; sync or Async) fail with this XAPI error. */
  failNext(method: string, code: string, params?: readonly string[], times?: number): void;
  /** The next Async call of `method` leaves its task pending until task.cancel (or releaseHungTasks). */
  hangNextTask(method: string, times?: number): void;
  /** Let every hung task go on. */
  releaseHungTasks(): void;
  /** Delay every RPC answer by this many milliseconds (0 to stop). */
  setLatency(ms: number): void;
  /** Make pool_migrate and migrate_send take at least this long. */
  setMigrationDuration(ms: number): void;
  /** The next `times` calls of `method` run, then the server destroys the socket instead of answering. */
  dropConnectionOnNext(method: string, times?: number): void;
  /** GET /vm_rrd answers 403 (a role without RRD access) while on. */
  refuseRrd(on: boolean): void;
  /** Every switch back off. */
  reset(): void;
}

function normalise(method: string): string {
  return method.startsWith("Async.") ? method.slice(6) : method;
}

/** The switches, as the simulator reads them. */
export class Faults implements XapiFaults {
  latencyMs = 0;
  rrdRefused = false;
  migrationMs: number;
  private readonly failures = new Map<string, { error: XapiError; times: number }[]>();
  private readonly hangs = new Map<string, number>();
  private readonly drops = new Map<string, number>();
  private readonly hangReleasers = new Set<() => void>();
  /** Set by the world: drops every session. */
  onDropSessions: () => void = () => undefined;

  constructor(private readonly defaultMigrationMs: number) {
    this.migrationMs = defaultMigrationMs;
  }

  dropSessions(): void {
    this.onDropSessions();
  }

  failNext(method: string, code: string, params: readonly string[] = [], times = 1): void {
    const key = normalise(method);
    const list = this.failures.get(key) ?? [];
    list.push({ error: new XapiError(code, params), times });
    this.failures.set(key, list);
  }

  hangNextTask(method: string, times = 1): void {
    this.hangs.set(normalise(method), (this.hangs.get(normalise(method)) ?? 0) + times);
  }

  releaseHungTasks(): void {
    for (const r of [...this.hangReleasers]) r();
    this.hangReleasers.clear();
  }

  setLatency(ms: number): void {
    this.latencyMs = Math.max(0, ms);
  }

  setMigrationDuration(ms: number): void {
    this.migrationMs = Math.max(0, ms);
  }

  dropConnectionOnNext(method: string, times = 1): void {
    this.drops.set(normalise(method), (this.drops.get(normalise(method)) ?? 0) + times);
  }

  refuseRrd(on: boolean): void {
    this.rrdRefused = on;
  }

  reset(): void {
    this.latencyMs = 0;
    this.rrdRefused = false;
    this.migrationMs = this.defaultMigrationMs;
    this.failures.clear();
    this.hangs.clear();
    this.drops.clear();
    this.releaseHungTasks();
  }

  /** The error the next call of `method` must fail with, consuming it. */
  takeFailure(method: string): XapiError | undefined {
    const list = this.failures.get(normalise(method));
    const first = list?.[0];
    if (!list || !first) return undefined;
    first.times--;
    if (first.times <= 0) list.shift();
    if (list.length === 0) this.failures.delete(normalise(method));
    return first.error;
  }

  takeHang(method: string): boolean {
    return this.take(this.hangs, method);
  }

  takeDrop(method: string): boolean {
    return this.take(this.drops, method);
  }

  private take(map: Map<string, number>, method: string): boolean {
    const key = normalise(method);
    const n = map.get(key) ?? 0;
    if (n <= 0) return false;
    if (n === 1) map.delete(key);
    else map.set(key, n - 1);
    return true;
  }

  /** Register the release of a hung task; returns the unregister function. */
  onRelease(release: () => void): () => void {
    this.hangReleasers.add(release);
    return () => this.hangReleasers.delete(release);
  }
}
