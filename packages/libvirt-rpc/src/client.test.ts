import { describe, expect, it } from "vitest";
import { LibvirtConnection } from "./connection.js";
import {
  LibvirtAbortedError,
  LibvirtConnectionClosedError,
  LibvirtError,
  LibvirtProtocolError,
  LibvirtTimeoutError,
  LibvirtVersionSkewError,
  isNoDomain,
} from "./errors.js";
import { MessageStatus, MessageType, QEMU_PROGRAM, REMOTE_PROGRAM } from "./packet.js";
import { Proc, QemuProc } from "./procedures.js";
import { MockLibvirtd, fixtures, mockPacket } from "./testing/mock-libvirtd.js";
import { readDomain, writeDomain } from "./wire.js";

const UUID = "6695eb01-f6a4-8304-79aa-97f2502e193f";
const domain = (name: string, id = 1) => ({ name, uuid: UUID, id });

async function open(mock = new MockLibvirtd(), options: Parameters<typeof LibvirtConnection.open>[1] = {}) {
  const conn = await LibvirtConnection.open("test:///default", { dialer: mock, keepalive: false, ...options });
  return { mock, conn };
}

describe("LibvirtConnection over the mock daemon", () => {
  it("performs the open handshake: AUTH_LIST, CONNECT_OPEN with the URI, keepalive feature", async () => {
    const mock = new MockLibvirtd();
    let openedName: string | null = null;
    mock.on(Proc.CONNECT_OPEN, ({ args }) => {
      openedName = args.optString();
      return {};
    });
    const conn = await LibvirtConnection.open("test+unix:///default?socket=/x", { dialer: mock });
    expect(openedName).toBe("test:///default");
    expect(mock.last.calls.map((c) => c.proc)).toEqual([
      Proc.AUTH_LIST,
      Proc.CONNECT_OPEN,
      Proc.CONNECT_SUPPORTS_FEATURE,
    ]);
    await conn.close();
    expect(mock.last.calls.at(-1)?.proc).toBe(Proc.CONNECT_CLOSE);
    expect(conn.isOpen).toBe(false);
  });

  it("decodes a reply from a byte fixture", async () => {
    const { mock, conn } = await open();
    mock.on(Proc.CONNECT_GET_HOSTNAME, ({ header, conn: c }) => {
      c.send(fixtures.hostnameReply(header.serial));
      return "no-reply";
    });
    expect(await conn.connectGetHostname()).toBe("hv");
    await conn.close();
  });

  it("decodes a daemon error into LibvirtError with libvirt's code", async () => {
    const { mock, conn } = await open();
    mock.on(Proc.DOMAIN_LOOKUP_BY_NAME, ({ header, conn: c }) => {
      c.send(fixtures.noDomainReply(header.serial));
      return "no-reply";
    });
    const err = await conn.domainLookupByName("missing").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LibvirtError);
    expect(err).toMatchObject({ virErrorCode: 42, virErrorName: "VIR_ERR_NO_DOMAIN", virErrorDomain: 12, level: 2 });
    expect(isNoDomain(err)).toBe(true);
    expect((err as LibvirtError).procedure).toBe("DOMAIN_LOOKUP_BY_NAME");
    await conn.close();
  });

  it("matches many in-flight replies to calls by serial, answered out of order", async () => {
    const { mock, conn } = await open();
    mock.on(Proc.DOMAIN_LOOKUP_BY_NAME, async ({ args }) => {
      const name = args.string();
      // Reverse-ish order: later calls answer first.
      await new Promise((r) => setTimeout(r, 50 - Number(name.slice(1)) / 4));
      return { body: (w) => writeDomain(w, domain(name, Number(name.slice(1)))) };
    });
    const names = Array.from({ length: 200 }, (_, i) => `d${i}`);
    const results = await Promise.all(names.map((n) => conn.domainLookupByName(n)));
    expect(results.map((d) => d.name)).toEqual(names);
    expect(results[17]?.id).toBe(17);
    expect(results[0]?.uuid).toBe(UUID);
    await conn.close();
  });

  it("turns VIR_ERR_NO_SUPPORT for an unknown procedure into LibvirtVersionSkewError", async () => {
    const { conn } = await open();
    // The mock, like libvirtd, answers procedures it has no handler for with "unknown procedure".
    const err = await conn.domainSetUserPassword(domain("a"), "root", "pw").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LibvirtVersionSkewError);
    expect((err as LibvirtVersionSkewError).procedure).toBe("DOMAIN_SET_USER_PASSWORD");
    expect((err as LibvirtVersionSkewError).unknownProcedure).toBe(true);
    await conn.close();
  });

  it("times out a call, discards its late reply, and keeps the connection usable", async () => {
    const { mock, conn } = await open();
    let serial = 0;
    mock.on(Proc.CONNECT_GET_HOSTNAME, ({ header }) => {
      serial = header.serial;
      return "no-reply";
    });
    const err = await conn.connectGetHostname({ timeoutMs: 30 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LibvirtTimeoutError);
    expect((err as LibvirtTimeoutError).code).toBe("LIBVIRT_TIMEOUT");
    mock.last.send(fixtures.hostnameReply(serial)); // late
    mock.on(Proc.CONNECT_GET_TYPE, () => ({ body: (w) => w.string("TEST") }));
    expect(await conn.connectGetType()).toBe("TEST");
    expect(conn.isOpen).toBe(true);
    await conn.close();
  });

  it("keeps a call alive whose timeout is beyond what a timer holds (2^31 ms), instead of timing it out at once", async () => {
    const { mock, conn } = await open();
    let serial = 0;
    mock.on(Proc.CONNECT_GET_HOSTNAME, ({ header }) => {
      serial = header.serial;
      return "no-reply";
    });
    const call = conn.connectGetHostname({ timeoutMs: 2 ** 31 });
    await new Promise((r) => setTimeout(r, 40));
    mock.last.send(fixtures.hostnameReply(serial));
    expect(await call).toBe("hv");
    await conn.close();
  });

  it("rejects an aborted call with LibvirtAbortedError", async () => {
    const { mock, conn } = await open();
    mock.on(Proc.CONNECT_GET_HOSTNAME, () => "no-reply");
    const ac = new AbortController();
    const p = conn.connectGetHostname({ signal: ac.signal });
    ac.abort();
    await expect(p).rejects.toBeInstanceOf(LibvirtAbortedError);
    const pre = new AbortController();
    pre.abort();
    await expect(conn.connectGetHostname({ signal: pre.signal })).rejects.toBeInstanceOf(LibvirtAbortedError);
    expect(conn.inFlight).toBe(0);
    await conn.close();
  });

  it.each([
    ["garbage bytes", () => Buffer.from("HTTP/1.1 400 Bad Request\r\n\r\n")],
    ["an oversized packet", () => fixtures.oversizedLength()],
    ["a reply for an unknown program", () => mockPacket(59, MessageType.REPLY, 1, 0, undefined, 0x12345678)],
    [
      "a truncated reply body",
      () =>
        mockPacket(Proc.CONNECT_GET_HOSTNAME, MessageType.REPLY, 4, MessageStatus.OK, (w) => {
          w.uint(100); // string length 100, but no bytes follow
        }),
    ],
  ])("closes cleanly and rejects all pending calls on %s", async (_what, bytes) => {
    const { mock, conn } = await open();
    mock.on(Proc.CONNECT_GET_HOSTNAME, () => "no-reply");
    const pending = [conn.connectGetHostname(), conn.connectGetHostname(), conn.connectGetHostname()];
    await new Promise((r) => setTimeout(r, 5));
    mock.last.send(bytes());
    const results = await Promise.allSettled(pending);
    for (const r of results) {
      expect(r.status).toBe("rejected");
      expect((r as PromiseRejectedResult).reason).toBeInstanceOf(LibvirtProtocolError);
    }
    expect(conn.isOpen).toBe(false);
    await expect(conn.connectGetHostname()).rejects.toBeInstanceOf(LibvirtConnectionClosedError);
  });

  it("rejects pending calls with LibvirtConnectionClosedError when the daemon goes away", async () => {
    const { mock, conn } = await open();
    mock.on(Proc.CONNECT_GET_HOSTNAME, () => "no-reply");
    const p = conn.connectGetHostname();
    await new Promise((r) => setTimeout(r, 5));
    mock.last.kill();
    await expect(p).rejects.toBeInstanceOf(LibvirtConnectionClosedError);
  });

  it("answers the daemon's keepalive PING with a PONG", async () => {
    const { mock, conn } = await open();
    const pongs: number[] = [];
    mock.onAnyPacket = (h) => {
      if (h.prog === 0x6b656570) pongs.push(h.proc);
    };
    mock.last.send(fixtures.keepalivePing());
    await new Promise((r) => setTimeout(r, 10));
    expect(pongs).toEqual([2]);
    await conn.close();
  });

  it("pings when idle and declares a silent peer dead after interval*count", async () => {
    const mock = new MockLibvirtd();
    const pings: number[] = [];
    mock.onAnyPacket = (h) => {
      if (h.prog === 0x6b656570) pings.push(h.proc);
    };
    const { conn } = await open(mock, { keepalive: { intervalMs: 40, count: 3 } });
    const closed = new Promise<Error>((resolve) => conn.onLinkClose(resolve));
    const err = await closed;
    expect(err).toBeInstanceOf(LibvirtConnectionClosedError);
    expect(err.message).toMatch(/keepalive/);
    expect(pings.length).toBeGreaterThanOrEqual(1);
    expect(pings.every((p) => p === 1)).toBe(true);
  });

  it("declares a peer dead that trickles bytes of a frame it never completes", async () => {
    // timeoutMs 0: without keepalive, the pending call would wait forever.
    const { mock, conn } = await open(new MockLibvirtd(), { keepalive: { intervalMs: 100, count: 3 }, timeoutMs: 0 });
    mock.on(Proc.CONNECT_GET_HOSTNAME, () => "no-reply");
    const call = conn.connectGetHostname();
    // Half a frame that declares 64 KiB, then one byte every 20 ms: bytes keep coming, no message ever does.
    const head = mockPacket(Proc.CONNECT_GET_HOSTNAME, MessageType.REPLY, 1, MessageStatus.OK);
    head.writeUInt32BE(64 * 1024, 0);
    mock.last.send(head.subarray(0, 14));
    const trickle = setInterval(() => mock.last.send(Buffer.from([0])), 20);
    try {
      // Dead after about 300 ms; the generous bound only separates "declared dead" from "never".
      const outcome = await Promise.race([
        call.then(
          () => "resolved",
          (err: unknown) => err,
        ),
        new Promise((r) => setTimeout(r, 5000, "still pending after 5 s")),
      ]);
      expect(outcome).toBeInstanceOf(LibvirtConnectionClosedError);
      expect((outcome as Error).message).toMatch(/keepalive/);
      expect(conn.isOpen).toBe(false);
      await expect(conn.connectGetHostname()).rejects.toBeInstanceOf(LibvirtConnectionClosedError);
    } finally {
      clearInterval(trickle);
      await conn.close();
    }
  }, 15_000);

  it("stays alive on the daemon's PING messages alone", async () => {
    // Dead would be declared after 1 s without a message; watch for well over that.
    const { mock, conn } = await open(new MockLibvirtd(), { keepalive: { intervalMs: 100, count: 10 }, timeoutMs: 0 });
    const ping = setInterval(() => mock.last.send(fixtures.keepalivePing()), 25);
    try {
      await new Promise((r) => setTimeout(r, 2500));
      expect(conn.isOpen).toBe(true);
    } finally {
      clearInterval(ping);
      await conn.close();
    }
  });

  it("stays alive while the peer answers keepalive pings", async () => {
    const mock = new MockLibvirtd();
    mock.onAnyPacket = (h, _p, c) => {
      if (h.prog === 0x6b656570 && h.proc === 1) {
        c.send(mockPacket(2, MessageType.MESSAGE, 0, 0, undefined, 0x6b656570));
      }
    };
    // Many intervals pass with no traffic but pings and pongs; the dead window (1 s) is wide enough
    // that a loaded machine's event-loop stalls cannot pass for a dead peer.
    let pings = 0;
    const answer = mock.onAnyPacket;
    mock.onAnyPacket = (h, p, c) => {
      if (h.prog === 0x6b656570 && h.proc === 1) pings++;
      answer?.(h, p, c);
    };
    const { conn } = await open(mock, { keepalive: { intervalMs: 100, count: 10 } });
    await new Promise((r) => setTimeout(r, 1500));
    expect(pings).toBeGreaterThan(3);
    expect(conn.isOpen).toBe(true);
    await conn.close();
  });

  it("delivers lifecycle events to listeners by callback id", async () => {
    const { mock, conn } = await open();
    mock.on(Proc.CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY, ({ args }) => {
      expect(args.int()).toBe(0); // VIR_DOMAIN_EVENT_ID_LIFECYCLE
      return { body: (w) => w.int(7) };
    });
    const events: unknown[] = [];
    const sub = await conn.domainEventLifecycleRegister((e) => events.push(e));
    expect(sub.callbackId).toBe(7);
    const msg = (cb: number) =>
      mockPacket(Proc.DOMAIN_EVENT_CALLBACK_LIFECYCLE, MessageType.MESSAGE, 0, 0, (w) => {
        w.int(cb);
        writeDomain(w, domain("vm1"));
        w.int(2); // STARTED
        w.int(0); // BOOTED
      });
    mock.last.send(msg(7));
    mock.last.send(msg(99)); // someone else's callback: ignored
    await new Promise((r) => setTimeout(r, 10));
    expect(events).toEqual([{ domain: domain("vm1"), event: 2, eventName: "STARTED", detail: 0 }]);
    mock.on(Proc.CONNECT_DOMAIN_EVENT_CALLBACK_DEREGISTER_ANY, () => ({}));
    await sub.unsubscribe();
    mock.last.send(msg(7));
    await new Promise((r) => setTimeout(r, 10));
    expect(events).toHaveLength(1);
    await conn.close();
  });

  it("hands a re-opened link to callers only once its event callbacks are registered again", async () => {
    const mock = new MockLibvirtd();
    let registrations = 0;
    let release: () => void = () => undefined;
    const gate = new Promise<void>((r) => (release = r));
    mock.on(Proc.CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY, async () => {
      // The second registration (on the new link) answers only when the test says so.
      if (++registrations === 2) await gate;
      return { body: (w) => w.int(registrations) };
    });
    mock.on(Proc.CONNECT_GET_TYPE, () => ({ body: (w) => w.string("TEST") }));
    const { conn } = await open(mock, { reconnect: { enabled: true, eagerWhenSubscribed: true } });
    await conn.domainEventLifecycleRegister(() => undefined);
    mock.last.kill();
    await new Promise((r) => setTimeout(r, 10));
    // Re-registering on the new link: a call waits for it, and the reconnect is not counted yet.
    expect(mock.connections).toHaveLength(2);
    const call = conn.connectGetType();
    await new Promise((r) => setTimeout(r, 10));
    expect(conn.reconnectCount).toBe(0);
    expect(mock.last.calls.map((c) => c.proc)).not.toContain(Proc.CONNECT_GET_TYPE);
    release();
    expect(await call).toBe("TEST");
    expect(conn.reconnectCount).toBe(1);
    const procs = mock.last.calls.map((c) => c.proc);
    expect(procs.indexOf(Proc.CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY)).toBeLessThan(
      procs.indexOf(Proc.CONNECT_GET_TYPE),
    );
    await conn.close();
  });

  it("reconnects on the next call after the link dropped and re-registers event callbacks", async () => {
    const mock = new MockLibvirtd();
    let nextId = 1;
    mock.on(Proc.CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY, () => ({ body: (w) => w.int(nextId++) }));
    mock.on(Proc.CONNECT_GET_TYPE, () => ({ body: (w) => w.string("TEST") }));
    const { conn } = await open(mock, { reconnect: { enabled: true, eagerWhenSubscribed: false } });
    const sub = await conn.domainEventLifecycleRegister(() => undefined);
    expect(sub.callbackId).toBe(1);
    mock.last.kill();
    await new Promise((r) => setTimeout(r, 5));
    expect(conn.isOpen).toBe(false);
    expect(await conn.connectGetType()).toBe("TEST");
    expect(conn.reconnectCount).toBe(1);
    expect(mock.connections).toHaveLength(2);
    expect(sub.callbackId).toBe(2);
    expect(mock.last.calls.map((c) => c.proc)).toContain(Proc.CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY);
    // Without reconnect, a dropped link stays dropped.
    const { mock: m2, conn: c2 } = await open();
    m2.last.kill();
    await new Promise((r) => setTimeout(r, 5));
    await expect(c2.connectGetHostname()).rejects.toBeInstanceOf(LibvirtConnectionClosedError);
    await conn.close();
  });

  it("reports a failed reconnect as LibvirtConnectionClosedError", async () => {
    const mock = new MockLibvirtd();
    const { conn } = await open(mock, { reconnect: { enabled: true, attempts: 2, backoffMs: 1 } });
    mock.refuse = true;
    mock.last.kill();
    await new Promise((r) => setTimeout(r, 5));
    await expect(conn.connectGetHostname()).rejects.toBeInstanceOf(LibvirtConnectionClosedError);
    mock.refuse = false;
    mock.on(Proc.CONNECT_GET_HOSTNAME, () => ({ body: (w) => w.string("back") }));
    expect(await conn.connectGetHostname()).toBe("back");
    await conn.close();
  });

  it("supports await using", async () => {
    const mock = new MockLibvirtd();
    {
      await using conn = await LibvirtConnection.open("test:///default", { dialer: mock, keepalive: false });
      expect(conn.isOpen).toBe(true);
    }
    expect(mock.last.calls.at(-1)?.proc).toBe(Proc.CONNECT_CLOSE);
  });
});

describe("the QEMU program (guest agent commands)", () => {
  it("sends virDomainQemuAgentCommand to program 0x20008087 with the domain, command, timeout and flags, and returns the agent's reply", async () => {
    const { mock, conn } = await open();
    let seen: unknown;
    mock.onProgram(QEMU_PROGRAM, QemuProc.DOMAIN_AGENT_COMMAND, ({ header, args }) => {
      seen = {
        prog: header.prog,
        vers: header.vers,
        dom: readDomain(args),
        cmd: args.string(),
        timeout: args.int(),
        flags: args.uint(),
      };
      return { body: (w) => w.optString('{"return":{}}') };
    });
    const reply = await conn.qemuDomainAgentCommand(domain("vm"), '{"execute":"guest-ping"}', 7);
    expect(reply).toBe('{"return":{}}');
    expect(seen).toEqual({
      prog: 0x20008087,
      vers: 1,
      dom: domain("vm"),
      cmd: '{"execute":"guest-ping"}',
      timeout: 7,
      flags: 0,
    });
    // The remote program still works on the same link, serials shared.
    mock.on(Proc.CONNECT_GET_TYPE, () => ({ body: (w) => w.string("QEMU") }));
    expect(await conn.connectGetType()).toBe("QEMU");
    await conn.close();
  });

  it("returns null when the agent sent no reply, and a daemon error typed with the QEMU procedure's name", async () => {
    const { mock, conn } = await open();
    mock.onProgram(QEMU_PROGRAM, QemuProc.DOMAIN_AGENT_COMMAND, () => ({ body: (w) => w.optString(null) }));
    expect(await conn.qemuDomainAgentCommand(domain("vm"), "{}", 0)).toBeNull();
    mock.onProgram(QEMU_PROGRAM, QemuProc.DOMAIN_AGENT_COMMAND, () => ({
      error: { code: 86, domain: 10, message: "Guest agent is not responding" },
    }));
    const err = await conn.qemuDomainAgentCommand(domain("vm"), "{}").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LibvirtError);
    expect(err).toMatchObject({ virErrorName: "VIR_ERR_AGENT_UNRESPONSIVE", procedure: "QEMU_DOMAIN_AGENT_COMMAND" });
    expect(conn.isOpen).toBe(true);
    await conn.close();
  });

  it("refuses a timeout that is neither whole seconds nor one of libvirt's special values, before sending anything", async () => {
    const { mock, conn } = await open();
    const before = mock.last.calls.length;
    for (const bad of [-3, 1.5, Number.NaN, 2 ** 31]) {
      await expect(conn.qemuDomainAgentCommand(domain("vm"), "{}", bad)).rejects.toBeInstanceOf(RangeError);
    }
    expect(mock.last.calls.length).toBe(before);
    await conn.close();
  });

  it("refuses a command that is not a string or is over libvirt's string limit, and flags that are not a uint32, before sending anything", async () => {
    const { mock, conn } = await open();
    const before = mock.last.calls.length;
    const bad = (command: unknown, flags = 0) =>
      conn.qemuDomainAgentCommand(domain("vm"), command as string, 0, flags).catch((e: unknown) => e);
    expect(await bad({ execute: "guest-ping" })).toBeInstanceOf(TypeError);
    expect(await bad("x".repeat(4 * 1024 * 1024 + 1))).toBeInstanceOf(RangeError);
    for (const flags of [-1, 1.5, Number.NaN, 2 ** 32]) expect(await bad("{}", flags)).toBeInstanceOf(RangeError);
    expect(mock.last.calls.length).toBe(before);
    await conn.close();
  });

  it("fails the link on a reply whose program is not the call's (a remote reply to a QEMU call)", async () => {
    const { mock, conn } = await open();
    mock.onProgram(QEMU_PROGRAM, QemuProc.DOMAIN_AGENT_COMMAND, ({ header, conn: c }) => {
      c.send(
        mockPacket(
          header.proc,
          MessageType.REPLY,
          header.serial,
          MessageStatus.OK,
          (w) => w.optString("x"),
          REMOTE_PROGRAM,
        ),
      );
      return "no-reply";
    });
    const err = await conn.qemuDomainAgentCommand(domain("vm"), "{}").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LibvirtProtocolError);
    expect((err as Error).message).toMatch(/names CONNECT_GET_TYPE, expected QEMU_DOMAIN_AGENT_COMMAND/);
    expect(conn.isOpen).toBe(false);
  });

  it("fails the link on a QEMU-program packet that is not a reply (this client subscribes to no monitor event)", async () => {
    const { mock, conn } = await open();
    mock.on(Proc.CONNECT_GET_HOSTNAME, () => "no-reply");
    const pending = conn.connectGetHostname().catch((e: unknown) => e);
    await new Promise((r) => setTimeout(r, 10));
    mock.last.send(mockPacket(6, MessageType.MESSAGE, 0, MessageStatus.OK, undefined, QEMU_PROGRAM));
    const err = await pending;
    expect(err).toBeInstanceOf(LibvirtProtocolError);
    expect((err as Error).message).toMatch(/unexpected QEMU program packet of type 2/);
    expect(conn.isOpen).toBe(false);
  });
});
