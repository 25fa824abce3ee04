// Wire encoding of DOMAIN_MIGRATE_START_POST_COPY (364) and DOMAIN_OPEN_CONSOLE (201, a read
// stream), checked byte for byte against the mock daemon.
import { describe, expect, it } from "vitest";
import { LibvirtConnection } from "./connection.js";
import { LibvirtError } from "./errors.js";
import { MessageStatus, MessageType, type PacketHeader } from "./packet.js";
import { Proc } from "./procedures.js";
import { MockLibvirtd, mockPacket } from "./testing/mock-libvirtd.js";
import { readDomain, writeDomain } from "./wire.js";
import { XdrWriter } from "./xdr.js";

const dom = { name: "vm-1", uuid: "6695eb01-f6a4-8304-79aa-97f2502e193f", id: 7 };

async function open(mock = new MockLibvirtd()) {
  const conn = await LibvirtConnection.open("test:///default", { dialer: mock, keepalive: false });
  return { mock, conn };
}

/** The argument bytes libvirt's XDR code writes for `remote_domain_migrate_start_post_copy_args`. */
function expectedPostCopyArgs(flags: number): Buffer {
  const w = new XdrWriter();
  writeDomain(w, dom);
  w.uint(flags);
  return w.toBuffer();
}

describe("domainMigrateStartPostCopy", () => {
  it("sends procedure 364 with { remote_nonnull_domain dom; unsigned int flags } and resolves on an empty reply", async () => {
    const { mock, conn } = await open();
    let raw: Buffer | undefined;
    mock.on(Proc.DOMAIN_MIGRATE_START_POST_COPY, ({ args }) => {
      raw = Buffer.from(args.buf.subarray(28));
      const d = readDomain(args);
      const flags = args.uint();
      expect(d).toEqual(dom);
      expect(flags).toBe(0);
      return {};
    });
    await expect(conn.domainMigrateStartPostCopy(dom)).resolves.toBeUndefined();
    expect(Proc.DOMAIN_MIGRATE_START_POST_COPY).toBe(364);
    expect(raw).toEqual(expectedPostCopyArgs(0));
    await conn.close();
  });

  it("passes flags through and maps the daemon's refusal to a LibvirtError", async () => {
    const { mock, conn } = await open();
    let seenFlags = -1;
    mock.on(Proc.DOMAIN_MIGRATE_START_POST_COPY, ({ args }) => {
      readDomain(args);
      seenFlags = args.uint();
      // VIR_ERR_OPERATION_INVALID: "post-copy migration is not enabled" / no migration running.
      return { error: { code: 55, domain: 10, message: "Requested operation is not valid: post-copy not enabled" } };
    });
    const err = await conn.domainMigrateStartPostCopy(dom, 3).catch((e: unknown) => e);
    expect(seenFlags).toBe(3);
    expect(err).toBeInstanceOf(LibvirtError);
    expect(err).toMatchObject({ virErrorCode: 55, procedure: "DOMAIN_MIGRATE_START_POST_COPY" });
    await conn.close();
  });
});

describe("domainOpenConsole", () => {
  it("sends procedure 201 with { dom, remote_string dev_name, flags } and reads the console as a stream", async () => {
    const { mock, conn } = await open();
    const finishes: PacketHeader[] = [];
    let devName: string | null | undefined;
    let flags = -1;
    mock.on(Proc.DOMAIN_OPEN_CONSOLE, ({ header, args, conn: c }) => {
      expect(readDomain(args)).toEqual(dom);
      devName = args.optString();
      flags = args.uint();
      // Reply first, then the guest's output as STREAM/CONTINUE packets, then EOF.
      c.send(mockPacket(header.proc, MessageType.REPLY, header.serial, MessageStatus.OK));
      // Stream payloads are raw bytes after the header, not XDR opaque.
      const data = (text: string) => {
        const packet = Buffer.concat([
          mockPacket(header.proc, MessageType.STREAM, header.serial, MessageStatus.CONTINUE),
          Buffer.from(text),
        ]);
        packet.writeUInt32BE(packet.length, 0);
        return packet;
      };
      c.send(data("login: "));
      c.send(data("root\r\n"));
      c.send(mockPacket(header.proc, MessageType.STREAM, header.serial, MessageStatus.CONTINUE));
      return "no-reply";
    });
    mock.onAnyPacket = (header, _packet, c) => {
      if (header.type === MessageType.STREAM && header.status === MessageStatus.OK) {
        finishes.push(header);
        // Confirm the client's finish, as libvirtd does.
        c.send(mockPacket(header.proc, MessageType.STREAM, header.serial, MessageStatus.OK));
      }
    };
    const stream = await conn.domainOpenConsole(dom, "serial0", 2);
    const chunks: Buffer[] = [];
    for await (const chunk of stream) chunks.push(chunk as Buffer);
    expect(Buffer.concat(chunks).toString()).toBe("login: root\r\n");
    expect(devName).toBe("serial0");
    expect(flags).toBe(2);
    expect(finishes.map((h) => h.proc)).toEqual([Proc.DOMAIN_OPEN_CONSOLE]);
    await conn.close();
  });

  it("a console that sends more than the read buffer before the open call's reply: the reply is still read, and other calls go on", async () => {
    const { mock, conn } = await open();
    const chunk = Buffer.alloc(256 * 1024, 0x61);
    mock.on(Proc.DOMAIN_OPEN_CONSOLE, ({ header, conn: c }) => {
      // libvirtd starts the stream before its worker sends the reply: 1.25 MiB of output comes
      // first, in one write, more than the stream buffers (1 MiB) before it would pause the link.
      const data = Buffer.concat(
        Array.from({ length: 5 }, () => {
          const packet = Buffer.concat([
            mockPacket(header.proc, MessageType.STREAM, header.serial, MessageStatus.CONTINUE),
            chunk,
          ]);
          packet.writeUInt32BE(packet.length, 0);
          return packet;
        }),
      );
      c.send(data);
      setImmediate(() => c.send(mockPacket(header.proc, MessageType.REPLY, header.serial, MessageStatus.OK)));
      return "no-reply";
    });
    mock.on(Proc.CONNECT_GET_HOSTNAME, () => ({ body: (w) => w.string("hv") }));
    const deadline = <T>(p: Promise<T>) =>
      Promise.race([p, new Promise<"stuck">((r) => setTimeout(() => r("stuck"), 1_000).unref())]);
    const opened = deadline(conn.domainOpenConsole(dom, null, 0, { timeoutMs: 0 }));
    const other = deadline(conn.connectGetHostname({ timeoutMs: 0 }));
    const [stream, hostname] = await Promise.all([opened, other]);
    expect(hostname).toBe("hv");
    expect(stream).not.toBe("stuck");
    if (stream === "stuck") return;
    let got = 0;
    for await (const piece of stream) {
      got += (piece as Buffer).length;
      if (got >= 5 * chunk.length) break;
    }
    expect(got).toBe(5 * chunk.length);
    await conn.close();
  });

  it("released: settles once the daemon confirmed an abort, not before; and when the link closes", async () => {
    const { mock, conn } = await open();
    const aborts: PacketHeader[] = [];
    let confirm: (() => void) | undefined;
    mock.on(Proc.DOMAIN_OPEN_CONSOLE, () => ({}));
    mock.onAnyPacket = (header, _packet, c) => {
      if (header.type === MessageType.STREAM && header.status === MessageStatus.ERROR) {
        aborts.push(header);
        // libvirtd confirms an abort with an empty STREAM/OK; held back until the test says so.
        confirm = () => c.send(mockPacket(header.proc, MessageType.STREAM, header.serial, MessageStatus.OK));
      }
    };
    const stream = await conn.domainOpenConsole(dom);
    let released = false;
    void stream.released.then(() => (released = true));
    stream.destroy();
    await new Promise((r) => setTimeout(r, 50));
    expect(aborts).toHaveLength(1);
    expect(released).toBe(false);
    confirm!();
    await stream.released;
    expect(released).toBe(true);
    // A stream still open when the link closes is released too (nothing more can come).
    const open2 = await conn.domainOpenConsole(dom);
    await conn.close();
    await expect(open2.released).resolves.toBeUndefined();
  });

  it("encodes a null device name (the first console) and rejects when the daemon refuses", async () => {
    const { mock, conn } = await open();
    let devName: string | null | undefined = "unset";
    mock.on(Proc.DOMAIN_OPEN_CONSOLE, ({ args }) => {
      readDomain(args);
      devName = args.optString();
      args.uint();
      return { error: { code: 55, domain: 10, message: "Requested operation is not valid: domain is not running" } };
    });
    const err = await conn.domainOpenConsole(dom).catch((e: unknown) => e);
    expect(devName).toBeNull();
    expect(err).toMatchObject({ virErrorCode: 55, procedure: "DOMAIN_OPEN_CONSOLE" });
    await conn.close();
  });
});
