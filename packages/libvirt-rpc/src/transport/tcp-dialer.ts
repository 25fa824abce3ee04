import { createConnection } from "node:net";
import type { Duplex } from "node:stream";
import type { Dialer } from "./dialer.js";
import { whenConnected } from "./net-connect.js";

/** libvirtd's default plain-TCP port (`tcp_port`). */
export const DEFAULT_TCP_PORT = 16509;

/** Options of `TcpDialer`. */
export interface TcpDialerOptions {
  host: string;
  /** Default 16509. */
  port?: number;
}

/** Connects to libvirtd over plain TCP (`listen_tcp`); no encryption. */
export class TcpDialer implements Dialer {
  readonly host: string;
  readonly port: number;
  readonly description: string;

  constructor(options: TcpDialerOptions) {
    this.host = options.host;
    this.port = options.port ?? DEFAULT_TCP_PORT;
    this.description = `tcp:${this.host}:${this.port}`;
  }

  async dial(signal?: AbortSignal): Promise<Duplex> {
    const socket = createConnection({ host: this.host, port: this.port });
    // Small RPC packets: don't let Nagle delay them.
    socket.setNoDelay(true);
    return whenConnected(socket, "connect", signal);
  }
}
