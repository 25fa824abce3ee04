/**
 * A loopback TCP proxy in front of a real libvirtd that can "kill the daemon" at an exact point:
 * after the N-th request frame reached the daemon, both sides are cut and new connections are
 * refused until `restore()`. From the driver's side this is the daemon dying mid-operation (the
 * request ran, its reply never came), the worst kill point there is. Not shipped.
 */
import { createServer, connect, type Server, type Socket } from "node:net";

/** The proxy; `port` is where the driver connects. */
export class CuttableProxy {
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();
  #down = false;
  /** Request frames forwarded since `cutAfter` was armed. */
  #frames = 0;
  #cutAt = Number.POSITIVE_INFINITY;
  port = 0;

  private constructor(private readonly target: { host: string; port: number }) {
    this.#server = createServer((client) => this.#accept(client));
  }

  /** Starts a proxy to `host:port` on 127.0.0.1 and a free port. */
  static async start(target: { host: string; port: number }): Promise<CuttableProxy> {
    const p = new CuttableProxy(target);
    await new Promise<void>((resolve) => p.#server.listen(0, "127.0.0.1", resolve));
    const addr = p.#server.address();
    p.port = typeof addr === "object" && addr ? addr.port : 0;
    return p;
  }

  /** True while the "daemon" is dead. */
  get down(): boolean {
    return this.#down;
  }

  /** Request frames forwarded since the last `cutAfter`. */
  get frames(): number {
    return this.#frames;
  }

  /** Cut everything right after the `n`-th request frame from now has been forwarded. */
  cutAfter(n: number): void {
    this.#frames = 0;
    this.#cutAt = n;
  }

  /** Cut now. */
  cut(): void {
    this.#down = true;
    this.#cutAt = Number.POSITIVE_INFINITY;
    for (const s of this.#sockets) s.destroy();
    this.#sockets.clear();
  }

  /** The "daemon" is back: new connections go through again. */
  restore(): void {
    this.#down = false;
    this.#cutAt = Number.POSITIVE_INFINITY;
  }

  #accept(client: Socket): void {
    if (this.#down) {
      client.destroy();
      return;
    }
    const upstream = connect(this.target.port, this.target.host);
    this.#sockets.add(client).add(upstream);
    const forget = () => {
      this.#sockets.delete(client);
      this.#sockets.delete(upstream);
      client.destroy();
      upstream.destroy();
    };
    client.on("close", forget).on("error", forget);
    upstream.on("close", forget).on("error", forget);
    upstream.on("data", (b: Buffer) => {
      if (!this.#down) client.write(b);
    });
    // Split the client's bytes into frames (4-byte big-endian length, length included).
    let pending: Buffer = Buffer.alloc(0);
    client.on("data", (b: Buffer) => {
      if (this.#down) return;
      pending = pending.length === 0 ? b : Buffer.concat([pending, b]);
      while (pending.length >= 4) {
        const len = pending.readUInt32BE(0);
        if (len < 4 || pending.length < len) break;
        upstream.write(pending.subarray(0, len));
        pending = pending.subarray(len);
        this.#frames++;
        if (this.#frames >= this.#cutAt) {
          // Give the daemon the request (let it flush), never the caller the reply.
          this.#down = true;
          this.#cutAt = Number.POSITIVE_INFINITY;
          setTimeout(() => this.cut(), 20);
          return;
        }
      }
    });
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}
