// A live migration cut short by its caller (signal or deadline), as libvirt 9 does it: the abort is
// accepted at once, the perform call answers "canceled by client" only once the move is torn down
// (a second and more with disks to copy on TCG), and meanwhile the destination lists the incoming
// domain, paused for the migration, until the source's cancelled call removes it.
import {
  DEFAULT_MIGRATION_POLICY,
  LiveMigrationFailedError,
  OperationAbortedError,
  OperationTimeoutError,
  type Instance,
  type MigrationPolicy,
} from "@virtkit/core";
import { DomainJobType, DomainPausedReason, DomainState, VirErrorNumber as E, type CallOptions, type Domain, type DomainStateInfo, type TypedParam } from "@virtkit/libvirt-rpc";
import { describe, expect, it } from "vitest";
import type { LibvirtDriver } from "./libvirt-driver.js";
import { ABORT_SETTLE_MS } from "./live-migration.js";
import { FakeLibvirt, daemonError } from "./testing/fake-libvirt.js";
import { twoHosts } from "./testing/two-hosts.js";

class MovingLibvirt extends FakeLibvirt {
  /** How long libvirt takes from an accepted abort to the perform call's answer. */
  teardownMs = 100;
  /** Aborts refused (the job not abortable yet) before one is accepted. */
  refuseAborts = 0;
  /** Aborts refused until this time (ms since epoch), whatever `refuseAborts` says. */
  refuseAbortsUntil = 0;
  /** How long reading the definition takes (the move's preparation). */
  xmlDelayMs = 0;
  /** Whether libvirt lists the job while the perform call is under way (else it ended by itself). */
  jobListed = true;
  performEndedAt: number | undefined;
  /** Ends the perform call with libvirt's answer `err` (the move failed by itself). */
  failPerform: (err: Error) => void = () => undefined;
  #onAbort: (() => void) | undefined;

  override async domainMigratePerform3Params(
    dom: Domain,
    dconnuri: string | null,
    params: readonly TypedParam[],
    cookie?: Uint8Array,
    flags = 0,
    opts?: CallOptions,
  ): Promise<Uint8Array> {
    this.calls.push({ method: "domainMigratePerform3Params", args: [dom, dconnuri, params, flags] });
    if (this.jobListed) this.jobType = DomainJobType.UNBOUNDED;
    return new Promise<Uint8Array>((resolve, reject) => {
      const end = (err: Error) => {
        this.performEndedAt ??= Date.now();
        this.jobType = DomainJobType.NONE;
        reject(err);
      };
      this.failPerform = end;
      // libvirt's answer once the aborted move is torn down.
      this.#onAbort = () => setTimeout(() => end(new Error("operation aborted: migration out: canceled by client")), this.teardownMs);
      // The rpc client gives up on its own when the call's signal fires (the daemon goes on).
      opts?.signal?.addEventListener("abort", () => reject(new Error("libvirt call DOMAIN_MIGRATE_PERFORM3_PARAMS was aborted")), { once: true });
      void resolve;
    });
  }

  override async domainGetXmlDesc(dom: Domain): Promise<string> {
    if (this.xmlDelayMs > 0) await new Promise((r) => setTimeout(r, this.xmlDelayMs));
    return super.domainGetXmlDesc(dom);
  }

  override async domainAbortJob(dom: Domain): Promise<void> {
    this.calls.push({ method: "domainAbortJob", args: [dom] });
    if (Date.now() < this.refuseAbortsUntil || this.refuseAborts > 0) {
      this.refuseAborts--;
      throw daemonError(E.VIR_ERR_OPERATION_INVALID, "Requested operation is not valid: no job is active on the domain");
    }
    this.#onAbort?.();
  }
}

/** A destination whose domain for `uuid` is the incoming side of a move until `gone()`. */
class IncomingLibvirt extends FakeLibvirt {
  readonly incoming = new Set<string>();
  /** Destroys sent while libvirt was still tearing the incoming domain down (the race). */
  destroyedWhileIncoming = 0;
  override async domainDestroy(dom: Domain): Promise<void> {
    if (this.incoming.has(dom.uuid)) this.destroyedWhileIncoming++;
    return super.domainDestroy(dom);
  }
  override async domainGetState(dom: Domain): Promise<DomainStateInfo> {
    const s = await super.domainGetState(dom);
    return this.incoming.has(dom.uuid) ? { state: DomainState.PAUSED, reason: DomainPausedReason.MIGRATION } : s;
  }
  /** libvirt's own teardown of the incoming domain. */
  gone(uuid: string): void {
    this.incoming.delete(uuid);
    this.domains.delete(uuid);
  }
}

const inst = (): Instance => ({
  uuid: "3f0b8c1e-6d2a-4e5b-9c7d-8a1f2e3d4c5b",
  name: "vm-cut",
  projectId: "proj",
  flavor: { name: "m1", memoryMb: 64, vcpus: 1, rootGb: 1 },
  imageMeta: { properties: {} },
});
const block: MigrationPolicy = { ...DEFAULT_MIGRATION_POLICY, block: true };

async function prepared() {
  const { src, dest, srcFake, dstFake } = await twoHosts(new MovingLibvirt(), new IncomingLibvirt());
  const i = inst();
  await src.spawn({ instance: i });
  const data = await dest.checkCanLiveMigrateDestination(i, { ...(await src.getHostInfo()), hostname: "src" }, block);
  const pre = await dest.preLiveMigration(i, await src.checkCanLiveMigrateSource(i, data));
  return { src, dest, srcFake, dstFake, i, pre };
}

/** Starts the move, cuts it `afterMs` in; resolves with the rejection and when it came. */
async function cutShort(src: LibvirtDriver, i: Instance, pre: Awaited<ReturnType<typeof prepared>>["pre"], how: "signal" | "deadline") {
  const caller = new AbortController();
  const started = Date.now();
  const moving = src.liveMigration(i, pre, how === "signal" ? { signal: caller.signal } : { timeoutMs: 30 });
  if (how === "signal") setTimeout(() => caller.abort(new Error("the caller gave up")), 30);
  const err = await moving.then(
    () => undefined,
    (e: unknown) => e,
  );
  return { err, rejectedAt: Date.now(), cutAt: started + 30 };
}

describe("a live migration cut short by its caller", () => {
  for (const how of ["signal", "deadline"] as const) {
    it(`(${how}) aborts the move and rejects once libvirt has ended it, so the caller finds it on the source only`, async () => {
      const { src, srcFake, i, pre } = await prepared();
      srcFake.teardownMs = 150;
      const { err, rejectedAt, cutAt } = await cutShort(src, i, pre, how);
      expect(err).toBeInstanceOf(how === "signal" ? OperationAbortedError : OperationTimeoutError);
      expect(srcFake.calls.filter((c) => c.method === "domainAbortJob")).toHaveLength(1);
      // Not before libvirt answered the perform call, and not much after.
      expect(srcFake.performEndedAt).toBeDefined();
      expect(rejectedAt).toBeGreaterThanOrEqual(srcFake.performEndedAt!);
      expect(rejectedAt - cutAt).toBeLessThan(ABORT_SETTLE_MS);
    });
  }

  it("still rejects promptly when libvirt's teardown takes longer than the settle bound", async () => {
    const { src, srcFake, i, pre } = await prepared();
    srcFake.teardownMs = 10_000;
    const { err, rejectedAt, cutAt } = await cutShort(src, i, pre, "signal");
    expect(err).toBeInstanceOf(OperationAbortedError);
    expect(srcFake.performEndedAt).toBeUndefined();
    expect(rejectedAt - cutAt).toBeGreaterThanOrEqual(ABORT_SETTLE_MS - 20);
    expect(rejectedAt - cutAt).toBeLessThan(ABORT_SETTLE_MS + 400);
  });

  it("asks again when libvirt refuses the abort (the job not abortable yet), until it is accepted", async () => {
    const { src, srcFake, i, pre } = await prepared();
    srcFake.refuseAborts = 2;
    const { err } = await cutShort(src, i, pre, "signal");
    expect(err).toBeInstanceOf(OperationAbortedError);
    expect(srcFake.calls.filter((c) => c.method === "domainAbortJob")).toHaveLength(3);
    expect(srcFake.performEndedAt).toBeDefined();
  });
});

describe("a live migration cut short by its caller, harder cases", () => {
  const aborts = (f: MovingLibvirt) => f.calls.filter((c) => c.method === "domainAbortJob").length;
  const performs = (f: MovingLibvirt) => f.calls.filter((c) => c.method === "domainMigratePerform3Params").length;

  it("sends no perform call when the caller's signal fired while the move was being prepared", async () => {
    const { src, srcFake, i, pre } = await prepared();
    srcFake.xmlDelayMs = 100;
    const { err } = await cutShort(src, i, pre, "signal");
    expect(err).toBeInstanceOf(OperationAbortedError);
    // The preparation goes on past the rejection: give it time to reach the perform call.
    await new Promise((r) => setTimeout(r, 300));
    expect(performs(srcFake)).toBe(0);
    expect(await src.instanceExists(i)).toBe(true);
  });

  it("keeps asking for the abort while libvirt still runs the job after the perform call was given up on", async () => {
    const { src, srcFake, i, pre } = await prepared();
    srcFake.teardownMs = 50;
    // Refused past the settle bound: the caller has its rejection before any abort is accepted.
    srcFake.refuseAbortsUntil = Date.now() + ABORT_SETTLE_MS + 400;
    const { err, rejectedAt } = await cutShort(src, i, pre, "signal");
    expect(err).toBeInstanceOf(OperationAbortedError);
    expect(srcFake.performEndedAt).toBeUndefined();
    // Asked again, backing off to one try a second, until accepted.
    const by = srcFake.refuseAbortsUntil + 1_500;
    while (srcFake.performEndedAt === undefined && Date.now() < by) await new Promise((r) => setTimeout(r, 50));
    expect(srcFake.performEndedAt).toBeDefined();
    expect(srcFake.performEndedAt!).toBeGreaterThan(rejectedAt);
  });

  it("asks libvirt no more once it answered the perform call, even with every abort refused", async () => {
    const { src, srcFake, i, pre } = await prepared();
    srcFake.refuseAbortsUntil = Number.POSITIVE_INFINITY;
    // The move fails by itself just after the cut; libvirt then lists another job (the caller's next one).
    const caller = new AbortController();
    const moving = src.liveMigration(i, pre, { signal: caller.signal });
    setTimeout(() => caller.abort(new Error("the caller gave up")), 30);
    setTimeout(() => srcFake.failPerform(new Error("migration failed by itself")), 60);
    await expect(moving).rejects.toBeInstanceOf(OperationAbortedError);
    srcFake.jobType = DomainJobType.UNBOUNDED;
    const asked = aborts(srcFake);
    await new Promise((r) => setTimeout(r, 500));
    expect(aborts(srcFake)).toBe(asked);
  });

  it("stops asking for the abort once libvirt runs no job any more", async () => {
    const { src, srcFake, i, pre } = await prepared();
    srcFake.jobListed = false;
    srcFake.refuseAbortsUntil = Number.POSITIVE_INFINITY;
    const { err } = await cutShort(src, i, pre, "signal");
    expect(err).toBeInstanceOf(OperationAbortedError);
    await new Promise((r) => setTimeout(r, 200));
    const asked = aborts(srcFake);
    await new Promise((r) => setTimeout(r, 400));
    expect(aborts(srcFake)).toBe(asked);
  });
});

describe("rollback at the destination after a cut-short move", () => {
  // The move lands: libvirt resumes the guest here, or (moved paused) leaves it paused for the user.
  for (const landed of ["running", "paused"] as const) {
    it(`does not destroy the guest when the move it waits on lands there ${landed} instead (the abort came too late)`, async () => {
      const { dest, dstFake, i, pre } = await prepared();
      await dstFake.domainDefineXml(`<domain type='qemu'><name>${i.name}</name><uuid>${i.uuid}</uuid></domain>`);
      await dstFake.domainCreateWithFlags(dstFake.domains.get(i.uuid)!.dom, 0);
      if (landed === "paused") dstFake.domains.get(i.uuid)!.state = DomainState.PAUSED;
      dstFake.incoming.add(i.uuid);
      setTimeout(() => dstFake.incoming.delete(i.uuid), 250);
      await expect(dest.rollbackLiveMigrationAtDestination(i, pre)).rejects.toBeInstanceOf(LiveMigrationFailedError);
      expect(dstFake.calls.some((c) => c.method === "domainDestroy")).toBe(false);
      expect(await dest.instanceExists(i)).toBe(true);
    });
  }

  it("leaves the incoming domain to libvirt's own teardown instead of destroying it meanwhile", async () => {
    const { dest, dstFake, i, pre } = await prepared();
    // The incoming side, as libvirt lists it during the move.
    await dstFake.domainDefineXml(`<domain type='qemu'><name>${i.name}</name><uuid>${i.uuid}</uuid></domain>`);
    dstFake.domains.get(i.uuid)!.state = DomainState.PAUSED;
    dstFake.incoming.add(i.uuid);
    setTimeout(() => dstFake.gone(i.uuid), 250);
    const t0 = Date.now();
    await dest.rollbackLiveMigrationAtDestination(i, pre);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(200);
    expect(dstFake.destroyedWhileIncoming).toBe(0);
    expect(await dest.instanceExists(i)).toBe(false);
  });

  it("removes at once a domain that is not an incoming move (paused for another reason)", async () => {
    const { dest, dstFake, i, pre } = await prepared();
    await dstFake.domainDefineXml(`<domain type='qemu'><name>${i.name}</name><uuid>${i.uuid}</uuid></domain>`);
    await dstFake.domainCreateWithFlags(dstFake.domains.get(i.uuid)!.dom, 0);
    const t0 = Date.now();
    await dest.rollbackLiveMigrationAtDestination(i, pre);
    expect(Date.now() - t0).toBeLessThan(200);
    expect(dstFake.calls.some((c) => c.method === "domainDestroy")).toBe(true);
    expect(await dest.instanceExists(i)).toBe(false);
  });
});
