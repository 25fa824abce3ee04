// Keepalive (virkeepaliveprotocol): after `intervalMs` without a complete message from the daemon
// we send a PING; after `intervalMs * count` without one the peer is declared dead. Like libvirt,
// only whole messages count: a peer stuck mid-frame (or trickling bytes) is not alive.

/** Keepalive settings; libvirt's client defaults are 5 s and 5. */
export interface KeepaliveOptions {
  /** Idle time before a PING is sent (ms). */
  intervalMs: number;
  /** Number of intervals without a complete message after which the connection is closed. */
  count: number;
}

/** Default keepalive settings (libvirt's: interval 5 s, count 5). */
export const DEFAULT_KEEPALIVE: KeepaliveOptions = { intervalMs: 5000, count: 5 };

/** Tracks inbound activity and decides when to ping and when the peer is dead. */
export class Keepalive {
  private lastRx: number;
  private timer: NodeJS.Timeout | undefined;
  private suspended = 0;

  constructor(
    private readonly options: KeepaliveOptions,
    private readonly sendPing: () => void,
    private readonly onDead: (idleMs: number) => void,
    private readonly now: () => number = Date.now,
  ) {
    this.lastRx = now();
  }

  /** Start the periodic check. */
  start(): void {
    if (this.timer) return;
    this.lastRx = this.now();
    // Check a few times per interval so detection is not late by a whole interval.
    const tick = Math.max(10, Math.floor(this.options.intervalMs / 4));
    this.timer = setInterval(() => this.check(), tick);
    this.timer.unref();
  }

  /** Stop checking. */
  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Record a complete inbound message. */
  touch(): void {
    this.lastRx = this.now();
  }

  /**
   * Stop counting idle time while we deliberately stop reading (stream back-pressure): silence
   * is then our doing, not the peer's.
   */
  suspend(): void {
    this.suspended++;
  }

  /** Undo one `suspend`. */
  resume(): void {
    if (this.suspended > 0 && --this.suspended === 0) this.lastRx = this.now();
  }

  private lastPing = 0;

  /** One check (exposed for tests). */
  check(): void {
    if (this.suspended > 0) return;
    const now = this.now();
    const idle = now - this.lastRx;
    if (idle >= this.options.intervalMs * this.options.count) {
      this.stop();
      this.onDead(idle);
      return;
    }
    if (idle >= this.options.intervalMs && now - this.lastPing >= this.options.intervalMs) {
      this.lastPing = now;
      this.sendPing();
    }
  }
}
