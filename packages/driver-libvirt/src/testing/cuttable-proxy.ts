/**
 * A loopback TCP proxy in front of a real libvirtd that can "kill the daemon" at an exact point:
 * after the N-th request frame reached the daemon, both sides are cut and new connections are
 * refused until `restore()`. From the driver's side this is the daemon dying mid-operation (the
 * request ran, its reply never came), the worst kill point there is. It can also answer one
 * procedure with a daemon error without passing it on (`refuse`): a call that fails on the daemon
 * while every other call runs for real. Not shipped.
 */
import { createServer, connect, type Server, type Socket } from "node:net";
import { XdrWriter } from "@virtkit/libvirt-rpc";

/** A daemon error the proxy answers in the daemon's place. */
export interface RefusedCall {
  readonly code: number;
  readonly message: string;
}

/** The proxy; `port` is where the driver connects. */
export class CuttableProxy {
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();
  #down = false;
  /** Request frames forwarded since `cutAfter` was armed. */
  #frames = 0;
  #cutAt = Number.POSITIVE_INFINITY;
  /** Procedures answered with an error instead of forwarded, and how many more times. */
  readonly #refused = new Map<number, { error: RefusedCall; left: number }>();
  /** How many calls `refuse` has answered. */
  refusedCalls = 0;
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

  /** Answers the next `times` calls of procedure `proc` with `error`; the daemon never sees them. */
  refuse(proc: number, error: RefusedCall, times = 1): void {
    this.#refused.set(proc, { error, left: times });
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
        const frame = pending.subarray(0, len);
        pending = pending.subarray(len);
        const refusal = len >= 28 ? this.#refused.get(frame.readInt32BE(12)) : undefined;
        // Only calls (type 0) are refused; stream data of the same procedure passes.
        if (refusal && refusal.left > 0 && frame.readInt32BE(16) === 0) {
          refusal.left--;
          this.refusedCalls++;
          client.write(errorReply(frame, refusal.error));
          continue;
        }
        upstream.write(frame);
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

/** A REPLY with status ERROR to the call `frame`, carrying `remote_error` (remote_protocol.x). */
function errorReply(frame: Buffer, error: RefusedCall): Buffer {
  const w = new XdrWriter(256);
  w.uint(0); // length, patched below
  w.uint(frame.readUInt32BE(4)); // program
  w.uint(frame.readUInt32BE(8)); // version
  w.int(frame.readInt32BE(12)); // procedure
  w.int(1); // type: REPLY
  w.uint(frame.readUInt32BE(20)); // serial
  w.int(1); // status: ERROR
  w.int(error.code);
  w.int(10); // domain: VIR_FROM_QEMU
  w.optString(error.message);
  w.int(2); // level: VIR_ERR_ERROR
  w.int(0); // dom: none
  w.optString(null);
  w.optString(null);
  w.optString(null);
  w.int(0);
  w.int(0);
  w.int(0); // net: none
  const out = w.toBuffer();
  out.writeUInt32BE(out.length, 0);
  return out;
}
