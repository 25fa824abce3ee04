// Transparent reconnect: hands out the current RpcClient, and when the link has dropped, dials and
// opens a new one on the next call (like Nova's `_test_connection` + reopen), then lets the owner
// restore per-link state such as event callbacks.

import type { RpcClient } from "./client.js";
import { LibvirtConnectionClosedError } from "./errors.js";

/** Reconnect settings. */
export interface ReconnectOptions {
  /** Reopen the link after it drops (default false: calls fail with `LibvirtConnectionClosedError`). */
  enabled: boolean;
  /** Attempts per reconnect before giving up on this call (default 3). */
  attempts?: number;
  /** Delay between attempts in ms, doubled each time (default 200). */
  backoffMs?: number;
  /** Reconnect in the background as soon as the link drops while event subscriptions exist (default true). */
  eagerWhenSubscribed?: boolean;
}

/** Holds the current link and replaces it when it dies. */
export class ReconnectingClient {
  private current: RpcClient | undefined;
  private connecting: Promise<RpcClient> | undefined;
  private closedByUser = false;
  /** How many times a new link was opened after the first. */
  reconnects = 0;

  constructor(
    private readonly open: () => Promise<RpcClient>,
    private readonly afterReconnect: (client: RpcClient) => Promise<void>,
    private readonly options: ReconnectOptions,
    private readonly wantsEagerReconnect: () => boolean = () => false,
  ) {}

  /** The first link, opened by the caller. */
  adopt(client: RpcClient): void {
    this.current = client;
    this.watch(client);
  }

  /** The link, if one is open now. */
  get link(): RpcClient | undefined {
    return this.current;
  }

  /** An open link: the current one, or a new one when reconnecting is enabled. */
  get(): RpcClient | Promise<RpcClient> {
    const c = this.current;
    if (c && !c.closed) return c;
    if (this.closedByUser || !this.options.enabled || !c) {
      return Promise.reject(
        new LibvirtConnectionClosedError(
          this.closedByUser ? "libvirt connection was closed" : `libvirt connection lost: ${c?.closeReason?.message ?? "not open"}`,
          { cause: c?.closeReason },
        ),
      );
    }
    return this.reconnect();
  }

  private watch(client: RpcClient): void {
    client.onClose(() => {
      if (this.closedByUser || !this.options.enabled) return;
      if ((this.options.eagerWhenSubscribed ?? true) && this.wantsEagerReconnect()) {
        this.reconnect().catch(() => undefined); // the next call retries and reports the error
      }
    });
  }

  /** Open a replacement link (single flight). */
  reconnect(): Promise<RpcClient> {
    if (this.connecting) return this.connecting;
    const attempts = this.options.attempts ?? 3;
    const backoff = this.options.backoffMs ?? 200;
    this.connecting = (async () => {
      let lastError: unknown;
      for (let i = 0; i < attempts; i++) {
        if (this.closedByUser) break;
        if (i > 0) await new Promise((r) => setTimeout(r, backoff * 2 ** (i - 1)));
        try {
          const client = await this.open();
          if (this.closedByUser) {
            client.destroy();
            break;
          }
          // Per-link state (event callbacks) is restored before the link is handed to any caller,
          // so a call that sees the new reconnect count also sees events flowing on its link.
          try {
            await this.afterReconnect(client);
          } catch (err) {
            client.destroy();
            throw err;
          }
          if (this.closedByUser) {
            client.destroy();
            break;
          }
          this.current = client;
          this.reconnects++;
          this.watch(client);
          return client;
        } catch (err) {
          lastError = err;
        }
      }
      throw new LibvirtConnectionClosedError(
        `libvirt connection lost and reconnecting failed${lastError instanceof Error ? `: ${lastError.message}` : ""}`,
        { cause: lastError },
      );
    })().finally(() => {
      this.connecting = undefined;
    });
    return this.connecting;
  }

  /** Stop reconnecting and close the current link. */
  close(): void {
    this.closedByUser = true;
    this.current?.destroy();
  }
}
