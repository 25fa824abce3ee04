/**
 * Serial console capture over libvirt console streams (qemu/kvm without a console log directory):
 * a domain is started paused, its console attached, then resumed, so nothing from the firmware on
 * is lost; the PAUSED/RESUMED events of that step are internal and not reported.
 */
import { Flags, type CallOptions, type Domain } from "@virtkit/libvirt-rpc";
import { ConsoleCapture } from "./console-capture.js";
import { libvirtMessage } from "./error-map.js";
import type { LibvirtApi } from "./libvirt-connection.js";

/** How long after a boot a read waits for the console's first whole line. */
const CONSOLE_BOOT_WAIT_MS = 3000;
/** How long after the resume of a paused start its PAUSED/RESUMED events are still swallowed. */
const QUIET_START_MS = 5000;

/** Console captures by instance uuid, and the starts whose pause/resume events are internal. */
export class GuestConsoles {
  readonly #captures = new Map<string, ConsoleCapture>();
  readonly #quietStarts = new Map<string, number>();
  #closed = false;

  constructor(private readonly log: (message: string, fields: Record<string, unknown>) => void) {}

  /**
   * Starts a defined domain running, with its console attached from the first byte. Returns the
   * started domain's handle (it carries the new id).
   */
  async startRunning(api: LibvirtApi, uuid: string, dom: Domain, call: CallOptions): Promise<Domain> {
    this.#quietStarts.set(uuid, Number.POSITIVE_INFINITY);
    try {
      const started = await api.domainCreateWithFlags(dom, Flags.START_PAUSED, call);
      try {
        await this.attach(api, uuid, started, true, call);
        await api.domainResume(started, call);
      } catch (err) {
        // Never leave the guest paused by our own doing: resume it under a deadline of its own (the
        // caller's may be what failed). A link that is gone cannot, and the error says so.
        await api.domainResume(started, { timeoutMs: 10_000 }).catch(() => undefined);
        throw err;
      }
      return started;
    } finally {
      if (this.#quietStarts.has(uuid)) this.#quietStarts.set(uuid, Date.now() + QUIET_START_MS);
    }
  }

  /**
   * Opens the domain's first console into a new capture (replacing an older one). `force` takes the
   * console over from another session. A failure is logged, not thrown: the console is a convenience
   * and must never fail a lifecycle operation.
   */
  async attach(
    api: LibvirtApi,
    uuid: string,
    dom: Domain,
    force: boolean,
    call: CallOptions,
  ): Promise<ConsoleCapture | undefined> {
    void this.#captures.get(uuid)?.close();
    try {
      const stream = await api.domainOpenConsole(dom, null, force ? Flags.CONSOLE_FORCE : 0, call);
      if (this.#closed) {
        stream.destroy();
        return undefined;
      }
      const capture = new ConsoleCapture(stream);
      this.#captures.set(uuid, capture);
      return capture;
    } catch (err) {
      this.log("console stream unavailable", { instance: uuid, err: libvirtMessage(err) });
      return undefined;
    }
  }

  /** The open capture of a domain, if any. */
  get(uuid: string): ConsoleCapture | undefined {
    return this.#captures.get(uuid);
  }

  /** Right after a boot the firmware's first line may still be on its way: wait for it a little. */
  async settle(capture: ConsoleCapture, signal: AbortSignal | undefined): Promise<void> {
    const age = Date.now() - capture.openedAt;
    if (age < CONSOLE_BOOT_WAIT_MS) await capture.waitForLine(CONSOLE_BOOT_WAIT_MS - age, signal);
  }

  /** Ends the capture (what it captured stays readable unless `forget`). */
  close(uuid: string, forget = false): void {
    void this.#captures.get(uuid)?.close();
    if (forget) this.#captures.delete(uuid);
  }

  /**
   * Ends the capture and waits, at most `waitMs`, until the daemon confirmed it: a console stream
   * still open when QEMU is killed races libvirtd's own teardown of it (its log then says "stream
   * is not open", and the destroy that killed QEMU was seen never to answer).
   */
  async closeAndWait(uuid: string, waitMs: number, signal?: AbortSignal): Promise<void> {
    const closing = this.#captures.get(uuid)?.close();
    if (!closing || signal?.aborted) return;
    let timer: NodeJS.Timeout | undefined;
    let onAbort: (() => void) | undefined;
    // Bounded, and no longer than the caller waits: the operation's own call then reports the abort.
    await Promise.race([
      closing,
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, waitMs);
        onAbort = resolve;
        signal?.addEventListener("abort", onAbort, { once: true });
      }),
    ]);
    clearTimeout(timer);
    if (onAbort) signal?.removeEventListener("abort", onAbort);
  }

  /** True when a PAUSED/RESUMED event of `uuid` belongs to a start's internal pause. */
  isInternal(uuid: string, transition: "PAUSED" | "RESUMED"): boolean {
    const quietUntil = this.#quietStarts.get(uuid);
    if (quietUntil === undefined) return false;
    if (transition === "RESUMED" || Date.now() > quietUntil) this.#quietStarts.delete(uuid);
    return Date.now() <= quietUntil;
  }

  /** Closes every capture; later attaches are refused. */
  closeAll(): void {
    this.#closed = true;
    for (const capture of this.#captures.values()) void capture.close();
    this.#captures.clear();
    this.#quietStarts.clear();
  }
}
