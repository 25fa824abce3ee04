// The CPU time of each simulated domain, as Xen keeps it per vCPU (`xc_vcpuinfo.cputime`) and XAPI's
// RRD daemon reads it: data sources `cpu<N>` (and `cpu_usage` for the whole domain) of type DERIVE,
// whose last raw value (`last_ds` in GET /vm_rrd) is the cumulative seconds and whose rate
// (VM.query_data_source) is the utilisation, 0..1. Source: xapi-project/xen-api
// ocaml/xcp-rrdd/bin/rrdp-cpu/rrdp_cpu.ml and ocaml/libs/xapi-rrd/lib/rrd.ml.
//
// A simulated vCPU burns `utilisation` of wall-clock time while the domain runs and nothing while
// it is paused, suspended or halted. A new domain (start, reboot, resume, migration: a new domid)
// starts counting from zero, as Xen's counter does; a halted VM keeps its last values (XAPI
// archives a VM's RRD when its domain goes away).

/** Fraction of wall-clock time each simulated vCPU is busy while the domain runs. */
export const DEFAULT_VCPU_UTILISATION = 0.25;

interface Counter {
  /** Seconds burnt per vCPU up to `since` (or for good, when not running). */
  seconds: number[];
  /** performance.now() when the domain last started running; undefined when it does not run. */
  since: number | undefined;
}

/** What the RRD of one VM holds for its CPU. */
export interface CpuSample {
  /** Cumulative CPU seconds per vCPU. */
  readonly perVcpu: readonly number[];
  /** The current rate of each vCPU (0..1): what VM.query_data_source("cpu<N>") answers. */
  readonly rate: number;
  /** Whether the domain runs now. */
  readonly running: boolean;
}

/** Per-VM counters of one pool, keyed by VM ref. */
export class DomainCpu {
  readonly #counters = new Map<string, Counter>();

  constructor(
    readonly utilisation = DEFAULT_VCPU_UTILISATION,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /**
   * Follows a VM's power state: called with its state before and after every change. `domid`
   * changing to a live one means a new domain, whose counters start at zero.
   */
  transition(ref: string, before: { power: unknown; domid: unknown }, after: { power: unknown; domid: unknown; vcpus: number }): void {
    const t = this.now();
    let c = this.#counters.get(ref);
    if (c && c.since !== undefined && before.power === "Running") {
      const dt = (t - c.since) / 1000;
      c.seconds = c.seconds.map((s) => s + dt * this.utilisation);
      c.since = undefined;
    }
    const live = typeof after.domid === "number" && after.domid >= 0;
    if (live && after.domid !== before.domid) {
      c = { seconds: Array.from({ length: Math.max(1, after.vcpus) }, () => 0), since: undefined };
      this.#counters.set(ref, c);
    }
    if (c && after.power === "Running" && live) c.since = t;
  }

  /** The counters now; undefined for a VM that never had a domain. */
  sample(ref: string): CpuSample | undefined {
    const c = this.#counters.get(ref);
    if (!c) return undefined;
    const running = c.since !== undefined;
    const dt = running ? (this.now() - (c.since as number)) / 1000 : 0;
    return { perVcpu: c.seconds.map((s) => s + dt * this.utilisation), rate: running ? this.utilisation : 0, running };
  }

  forget(ref: string): void {
    this.#counters.delete(ref);
  }
}
