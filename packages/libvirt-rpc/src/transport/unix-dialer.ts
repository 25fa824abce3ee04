import { createConnection } from "node:net";
import type { Duplex } from "node:stream";
import type { Dialer } from "./dialer.js";
import { whenConnected } from "./net-connect.js";

/** libvirtd's read-write socket for privileged (system) connections. */
export const DEFAULT_SYSTEM_SOCKET = "/run/libvirt/libvirt-sock";

/** Options of `UnixDialer`. */
export interface UnixDialerOptions {
  /** Socket path (default `/run/libvirt/libvirt-sock`). */
  path?: string;
}

/** Connects to libvirtd's local UNIX socket. */
export class UnixDialer implements Dialer {
  readonly path: string;
  readonly description: string;

  constructor(options: UnixDialerOptions = {}) {
    this.path = options.path ?? DEFAULT_SYSTEM_SOCKET;
    this.description = `unix:${this.path}`;
  }

  async dial(signal?: AbortSignal): Promise<Duplex> {
    const socket = createConnection({ path: this.path });
    return whenConnected(socket, "connect", signal);
  }
}
