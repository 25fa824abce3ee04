// An in-memory libvirtd for unit tests: a `Dialer` whose streams are answered by handlers and
// byte fixtures, so framing, error and garbage handling can be tested without a daemon.

import { Duplex } from "node:stream";
import { MessageStatus, MessageType, PacketDecoder, REMOTE_PROGRAM, readHeader, type PacketHeader } from "../packet.js";
import { Proc } from "../procedures.js";
import type { Dialer } from "../transport/dialer.js";
import { writeRemoteError } from "../wire.js";
import { XdrReader, XdrWriter } from "../xdr.js";

/** A two-ended in-memory byte pipe. */
export function duplexPair(): [Duplex, Duplex] {
  const ends: { a?: Duplex; b?: Duplex } = {};
  const make = (peer: () => Duplex | undefined): Duplex =>
    new Duplex({
      read() {},
      write(chunk: Buffer, _enc, cb) {
        const p = peer();
        if (p && !p.destroyed) p.push(Buffer.from(chunk));
        cb();
      },
      final(cb) {
        peer()?.push(null);
        cb();
      },
      destroy(err, cb) {
        const p = peer();
        if (p && !p.destroyed) {
          p.push(null);
          p.destroy();
        }
        cb(err);
      },
    });
  const a = make(() => ends.b);
  const b = make(() => ends.a);
  ends.a = a;
  ends.b = b;
  return [a, b];
}

/** A call received by the mock. */
export interface MockCall {
  header: PacketHeader;
  /** Reader over the call's argument bytes. */
  args: XdrReader;
  /** The daemon side of this connection. */
  conn: MockConnection;
}

/** What a handler answers: a reply body, a libvirt error, or nothing (never reply). */
export type MockResponse =
  | { body?: (w: XdrWriter) => void }
  | { error: { code: number; domain?: number; message?: string } }
  | "no-reply";

/** Handles one procedure. */
export type MockHandler = (call: MockCall) => MockResponse | Promise<MockResponse>;

/** Encode a reply/message/stream packet the way libvirtd does. */
export function mockPacket(
  proc: number,
  type: number,
  serial: number,
  status: number,
  body?: (w: XdrWriter) => void,
  prog = REMOTE_PROGRAM,
): Buffer {
  const w = new XdrWriter();
  w.uint(0);
  w.uint(prog);
  w.uint(1);
  w.int(proc);
  w.int(type);
  w.uint(serial);
  w.int(status);
  body?.(w);
  w.buf.writeUInt32BE(w.length, 0);
  return w.toBuffer();
}

/** The daemon end of one mock connection. */
export class MockConnection {
  readonly calls: PacketHeader[] = [];
  readonly received: Buffer[] = [];
  private readonly decoder = new PacketDecoder(64 * 1024 * 1024);

  constructor(
    readonly socket: Duplex,
    private readonly daemon: MockLibvirtd,
  ) {
    socket.on("data", (chunk: Buffer) => {
      this.decoder.push(chunk, (packet) => {
        this.received.push(Buffer.from(packet));
        void this.onPacket(Buffer.from(packet));
      });
    });
    socket.on("error", () => undefined);
  }

  private async onPacket(packet: Buffer): Promise<void> {
    const header = readHeader(packet);
    this.daemon.onAnyPacket?.(header, packet, this);
    if (header.type !== MessageType.CALL) return;
    this.calls.push(header);
    const prog = header.prog;
    const handler =
      prog === REMOTE_PROGRAM ? this.daemon.handlers.get(header.proc) : this.daemon.programHandlers.get(`${prog}:${header.proc}`);
    if (!handler) {
      // What libvirtd does for a procedure it does not know.
      this.send(
        mockPacket(
          header.proc,
          MessageType.REPLY,
          header.serial,
          MessageStatus.ERROR,
          (w) => writeRemoteError(w, { code: 3, domain: 7, message: `unknown procedure: ${header.proc}` }),
          prog,
        ),
      );
      return;
    }
    const response = await handler({ header, args: new XdrReader(packet, 28), conn: this });
    if (response === "no-reply") return;
    if ("error" in response) {
      this.send(
        mockPacket(
          header.proc,
          MessageType.REPLY,
          header.serial,
          MessageStatus.ERROR,
          (w) => writeRemoteError(w, response.error),
          prog,
        ),
      );
    } else {
      this.send(mockPacket(header.proc, MessageType.REPLY, header.serial, MessageStatus.OK, response.body, prog));
    }
  }

  /** Write raw bytes to the client. */
  send(bytes: Uint8Array): void {
    if (!this.socket.destroyed) this.socket.write(bytes);
  }

  /** Drop the connection. */
  kill(): void {
    this.socket.destroy();
  }
}

/**
 * Mock libvirtd. Answers the open handshake (AUTH_LIST, CONNECT_OPEN, SUPPORTS_FEATURE,
 * CONNECT_CLOSE) by default; tests add handlers per procedure or push raw fixture bytes.
 */
export class MockLibvirtd implements Dialer {
  readonly description = "mock";
  readonly handlers = new Map<number, MockHandler>();
  /** Handlers of other programs' procedures (the QEMU program), keyed `program:procedure`. */
  readonly programHandlers = new Map<string, MockHandler>();
  readonly connections: MockConnection[] = [];
  /** Sees every packet, including keepalive and stream packets. */
  onAnyPacket: ((header: PacketHeader, packet: Buffer, conn: MockConnection) => void) | undefined;
  /** Make the next dials fail. */
  refuse = false;

  constructor() {
    this.handlers.set(Proc.AUTH_LIST, () => ({ body: (w) => w.array([0], (ww, v) => ww.int(v)) }));
    this.handlers.set(Proc.CONNECT_OPEN, () => ({}));
    this.handlers.set(Proc.CONNECT_CLOSE, () => ({}));
    this.handlers.set(Proc.CONNECT_SUPPORTS_FEATURE, () => ({ body: (w) => w.int(1) }));
  }

  /** Register a handler for a procedure number. */
  on(proc: number, handler: MockHandler): this {
    this.handlers.set(proc, handler);
    return this;
  }

  /** Register a handler for a procedure of another program than the remote one. */
  onProgram(program: number, proc: number, handler: MockHandler): this {
    this.programHandlers.set(`${program}:${proc}`, handler);
    return this;
  }

  /** The latest connection. */
  get last(): MockConnection {
    const c = this.connections[this.connections.length - 1];
    if (!c) throw new Error("no mock connection yet");
    return c;
  }

  async dial(): Promise<Duplex> {
    if (this.refuse) throw new Error("connection refused (mock)");
    const [client, server] = duplexPair();
    this.connections.push(new MockConnection(server, this));
    return client;
  }
}

/**
 * Byte fixtures, commented field by field as libvirtd 9.0 sends them. Serial numbers are
 * parameters because the client picks them.
 */
export const fixtures = {
  /** REPLY to CONNECT_GET_HOSTNAME (59) with the string "hv". */
  hostnameReply(serial: number): Buffer {
    return Buffer.from([
      0x00, 0x00, 0x00, 0x24, // length: 36 = 4 (length) + 24 (header) + 8 (body)
      0x20, 0x00, 0x80, 0x86, // program: REMOTE_PROGRAM 0x20008086
      0x00, 0x00, 0x00, 0x01, // version: 1
      0x00, 0x00, 0x00, 0x3b, // procedure: 59 CONNECT_GET_HOSTNAME
      0x00, 0x00, 0x00, 0x01, // type: VIR_NET_REPLY
      ...u32(serial), //         serial: matches the call
      0x00, 0x00, 0x00, 0x00, // status: VIR_NET_OK
      0x00, 0x00, 0x00, 0x02, // remote_nonnull_string length: 2
      0x68, 0x76, 0x00, 0x00, // "hv" + 2 bytes of XDR padding
    ]);
  },
  /** REPLY with status ERROR to DOMAIN_LOOKUP_BY_NAME (23): VIR_ERR_NO_DOMAIN from the test driver. */
  noDomainReply(serial: number): Buffer {
    return Buffer.from([
      0x00, 0x00, 0x00, 0x5c, // length: 92 = 4 + 24 + 64
      0x20, 0x00, 0x80, 0x86, // program: REMOTE_PROGRAM
      0x00, 0x00, 0x00, 0x01, // version: 1
      0x00, 0x00, 0x00, 0x17, // procedure: 23 DOMAIN_LOOKUP_BY_NAME
      0x00, 0x00, 0x00, 0x01, // type: VIR_NET_REPLY
      ...u32(serial), //         serial
      0x00, 0x00, 0x00, 0x01, // status: VIR_NET_ERROR -> body is remote_error
      0x00, 0x00, 0x00, 0x2a, // code: 42 VIR_ERR_NO_DOMAIN
      0x00, 0x00, 0x00, 0x0c, // domain: 12 VIR_FROM_TEST
      0x00, 0x00, 0x00, 0x01, // message: present
      0x00, 0x00, 0x00, 0x10, //   length 16
      ...Buffer.from("Domain not found"), // 16 bytes, no padding needed
      0x00, 0x00, 0x00, 0x02, // level: VIR_ERR_ERROR
      0x00, 0x00, 0x00, 0x00, // dom: absent
      0x00, 0x00, 0x00, 0x00, // str1: absent
      0x00, 0x00, 0x00, 0x00, // str2: absent
      0x00, 0x00, 0x00, 0x00, // str3: absent
      0x00, 0x00, 0x00, 0x00, // int1: 0
      0x00, 0x00, 0x00, 0x00, // int2: 0
      0x00, 0x00, 0x00, 0x00, // net: absent
    ]);
  },
  /** A keepalive PING from the daemon. */
  keepalivePing(): Buffer {
    return Buffer.from([
      0x00, 0x00, 0x00, 0x1c, // length: 28, header only
      0x6b, 0x65, 0x65, 0x70, // program: KEEPALIVE_PROGRAM "keep"
      0x00, 0x00, 0x00, 0x01, // version: 1
      0x00, 0x00, 0x00, 0x01, // procedure: KEEPALIVE_PROC_PING
      0x00, 0x00, 0x00, 0x02, // type: VIR_NET_MESSAGE
      0x00, 0x00, 0x00, 0x00, // serial: 0
      0x00, 0x00, 0x00, 0x00, // status: VIR_NET_OK
    ]);
  },
  /** A length word claiming a 64 MiB packet: over libvirt's 32 MiB limit. */
  oversizedLength(): Buffer {
    return Buffer.from([0x04, 0x00, 0x00, 0x00]);
  },
};

function u32(v: number): number[] {
  return [(v >>> 24) & 0xff, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff];
}
