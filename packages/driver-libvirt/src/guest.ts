/**
 * One domain and what can be done to it (Nova's `nova/virt/libvirt/guest.py`). A `Guest` carries
 * the domain handle through an operation, so no step looks the domain up again.
 */
import { PowerOffFailureError, sleep, type PowerState } from "@virtkit/core";
import {
  DomainState,
  Flags,
  VirErrorNumber as E,
  isNoDomain,
  type CallOptions,
  type Domain,
} from "@virtkit/libvirt-rpc";
import { libvirtMessage, virErrorCode } from "./error-map.js";
import type { LibvirtApi } from "./libvirt-connection.js";
import type { DaemonFacts } from "./libvirt-host.js";
import { toPowerState } from "./power-state-map.js";

/** The domain's state as libvirt reports it and as the contract names it. */
export interface DomainStatus {
  readonly domainState: number;
  /** libvirt's reason for the state (e.g. a virDomainPausedReason while PAUSED). */
  readonly reason: number;
  readonly power: PowerState;
  readonly managedSave: boolean;
}

/** VIR_DOMAIN_SNAPSHOT_DELETE_METADATA_ONLY. */
const SNAPSHOT_DELETE_METADATA_ONLY = 2;
/** EBUSY, as libvirt reports a process that would not die (int1 of VIR_ERR_SYSTEM_ERROR). */
const EBUSY = 16;
/** How often Nova's `_destroy` retries a process stuck in uninterruptible I/O. */
const DESTROY_ATTEMPTS = 6;

/** The unsupported bits a daemon names in "unsupported flags (0x4) in function ...". */
function unsupportedFlagBits(err: unknown): number {
  const m = /unsupported flags \(0x([0-9a-f]+)\)/i.exec(libvirtMessage(err));
  return m ? Number.parseInt(m[1]!, 16) : 0;
}

/**
 * A domain handle on one connection, used for the length of one operation. The handle may be
 * built from the instance without a look-up: libvirtd finds a domain by the handle's uuid, and a
 * domain that is gone answers VIR_ERR_NO_DOMAIN to the first call.
 */
export class Guest {
  constructor(
    readonly api: LibvirtApi,
    public dom: Domain,
    readonly call: CallOptions,
  ) {}

  /** State and managed-save image (the latter only asked when it can matter: shut off). */
  async status(): Promise<DomainStatus> {
    const { state, reason } = await this.api.domainGetState(this.dom, 0, this.call);
    const managedSave =
      state === DomainState.SHUTOFF ? await this.api.domainHasManagedSaveImage(this.dom, 0, this.call) : false;
    return { domainState: state, reason, power: toPowerState(state, managedSave), managedSave };
  }

  /** Polls until `accept(status)`; undefined when `maxMs` passed first. */
  async waitFor(
    accept: (s: DomainStatus) => boolean,
    pollMs: number,
    maxMs = Number.POSITIVE_INFINITY,
  ): Promise<DomainStatus | undefined> {
    const started = Date.now();
    for (;;) {
      const s = await this.status();
      if (accept(s)) return s;
      if (Date.now() - started >= maxMs) return undefined;
      await sleep(pollMs, this.call.signal, "wait for domain state");
    }
  }

  /**
   * Nova's `_destroy`: tolerant of a missing or already stopped domain, retries a process stuck in
   * I/O, and reports a daemon that gave up as a power-off failure. Other errors are thrown as they are.
   * Resolves false when there was no such domain.
   */
  async destroy(instanceUuid: string): Promise<boolean> {
    for (let attempt = 1; ; attempt++) {
      try {
        await this.api.domainDestroy(this.dom, 0, this.call);
        return true;
      } catch (err) {
        const code = virErrorCode(err);
        if (code === E.VIR_ERR_NO_DOMAIN) return false;
        if (code === E.VIR_ERR_OPERATION_INVALID) {
          // "domain is not running": fine when it is indeed shut off.
          const s = await this.status().catch(() => undefined);
          if (s === undefined || s.domainState === DomainState.SHUTOFF) return true;
        }
        // libvirt's own timeout killing QEMU is Nova's InstancePowerOffFailure; the caller's
        // deadline passing (LibvirtTimeoutError) stays a timeout.
        if (code === E.VIR_ERR_OPERATION_TIMEOUT) {
          throw new PowerOffFailureError(instanceUuid, "operation time out", { cause: err });
        }
        if (code === E.VIR_ERR_SYSTEM_ERROR && (err as { remote?: { int1?: number } }).remote?.int1 === EBUSY) {
          if (attempt < DESTROY_ATTEMPTS) continue;
        }
        throw err;
      }
    }
  }

  /**
   * Nova's `_undefine_domain`: with managed save, snapshot metadata and (where the daemon takes it)
   * NVRAM in one call; by hand on hypervisors that take none of these flags. Whether the daemon takes
   * the NVRAM flag is learnt once per connection, so no call fails every time.
   */
  async undefine(facts: DaemonFacts): Promise<void> {
    const base = Flags.UNDEFINE_MANAGED_SAVE | Flags.UNDEFINE_SNAPSHOTS_METADATA;
    const attempts = facts.undefineNvram === false ? [base] : [base | Flags.UNDEFINE_NVRAM, base];
    for (const flags of attempts) {
      try {
        await this.api.domainUndefine(this.dom, flags, this.call);
        if ((flags & Flags.UNDEFINE_NVRAM) !== 0) facts.undefineNvram = true;
        return;
      } catch (err) {
        if (isNoDomain(err)) return;
        if ((flags & Flags.UNDEFINE_NVRAM) !== 0 && (unsupportedFlagBits(err) & Flags.UNDEFINE_NVRAM) !== 0) {
          facts.undefineNvram = false;
        }
      }
    }
    // Old hypervisor drivers: remove what the flags would have removed, then undefine plainly.
    try {
      await this.removeManagedSave();
      for (const snap of await this.api.domainListAllSnapshots(this.dom, 0, this.call).catch(() => [])) {
        await this.api.domainSnapshotDelete(snap, SNAPSHOT_DELETE_METADATA_ONLY, this.call).catch(() => undefined);
      }
      await this.api.domainUndefine(this.dom, 0, this.call);
    } catch (err) {
      if (!isNoDomain(err)) throw err;
    }
  }

  /** Drops a managed-save image, so the next start is a fresh boot rather than a restore. */
  async removeManagedSave(): Promise<void> {
    if (await this.api.domainHasManagedSaveImage(this.dom, 0, this.call)) {
      await this.api.domainManagedSaveRemove(this.dom, 0, this.call);
    }
  }
}
