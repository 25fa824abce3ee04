import net from "node:net";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { HttpTransport } from "./http-transport.js";
import { XapiTransportError } from "./xapi-error.js";

// The lean RPC client against a raw TCP server that answers with exactly the bytes each test gives.
const open: { close(): Promise<void> }[] = [];
afterEach(async () => {
  for (const o of open.splice(0)) await o.close();
});

interface RawServer {
  readonly url: string;
  /** Requests seen (head and body as received), per connection in order. */
  readonly requests: string[];
  connections: number;
}

/** A server that calls `answer` with each complete request (Content-Length framed) and its socket. */
async function rawServer(answer: (request: string, socket: net.Socket, index: number) => void): Promise<RawServer> {
  const state: RawServer = { url: "", requests: [], connections: 0 };
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    state.connections++;
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    let buf = "";
    socket.on("data", (d) => {
      buf += d.toString("latin1");
      for (;;) {
        const end = buf.indexOf("\r\n\r\n");
        if (end < 0) return;
        const length = Number(/content-length: *(\d+)/i.exec(buf.slice(0, end))?.[1] ?? 0);
        if (buf.length < end + 4 + length) return;
        const request = buf.slice(0, end + 4 + length);
        buf = buf.slice(end + 4 + length);
        state.requests.push(request);
        answer(request, socket, state.requests.length - 1);
      }
    });
    socket.on("error", () => undefined);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  open.push({
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  });
  return Object.assign(state, { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` });
}

const json = (body: string, extra = ""): string =>
  `HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n${extra}\r\n${body}`;

function transport(maxReplyBytes?: number): HttpTransport {
  const t = new HttpTransport({ maxReplyBytes });
  open.push({ close: async () => t.close() });
  return t;
}

const rpc = (t: HttpTransport, url: string, body = '{"x":1}', signal = AbortSignal.timeout(10_000)) =>
  t.rpc(new URL("/jsonrpc", url), body, { "content-type": "application/json" }, signal);

describe("the lean RPC client (keep-alive pool)", () => {
  it("reads a large chunked reply in many small reads in linear time, and refuses an endless size line or a chunk past the cap", async () => {
    const big = Buffer.alloc(8 * 1024 * 1024, 0x61);
    const s = await rawServer((_req, socket) => {
      socket.write(`HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n${big.length.toString(16)}\r\n`);
      // 16 KiB pieces, each its own read on the client: a re-join per read would copy gigabytes.
      let at = 0;
      const next = (): void => {
        if (at >= big.length) {
          socket.write("\r\n0\r\n\r\n");
          return;
        }
        const piece = big.subarray(at, at + 16 * 1024);
        at += piece.length;
        socket.write(piece, () => setImmediate(next));
      };
      next();
    });
    const t0 = performance.now();
    const reply = await rpc(transport(), s.url);
    expect(reply.body.length).toBe(big.length);
    expect(performance.now() - t0).toBeLessThan(10_000);

    const endless = await rawServer((_req, socket) => socket.write(`HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n${"1".repeat(8000)}`));
    // Refused at once as a protocol error, not left to grow until the deadline.
    await expect(rpc(transport(), endless.url, undefined, AbortSignal.timeout(3_000))).rejects.toThrow(/HPE_INVALID/);
    const huge = await rawServer((_req, socket) => socket.write("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nfffffff\r\nabc"));
    await expect(rpc(transport(1024), huge.url)).rejects.toThrow();
  });


  it("sends one well-formed POST (Host, Content-Length in bytes, keep-alive) and reuses the socket", async () => {
    const s = await rawServer((_req, socket) => socket.write(json('{"result":"ok"}')));
    const t = transport();
    const body = '{"p":"é"}';
    const reply = await rpc(t, s.url, body);
    expect(reply.status).toBe(200);
    expect(reply.headers["content-type"]).toBe("application/json");
    expect(reply.body.toString()).toBe('{"result":"ok"}');
    await rpc(t, s.url, body);
    expect(s.connections).toBe(1);
    const [head, sent] = s.requests[0]!.split("\r\n\r\n");
    const lines = head!.split("\r\n");
    expect(lines[0]).toBe("POST /jsonrpc HTTP/1.1");
    expect(lines).toContain(`Host: ${new URL(s.url).host}`);
    expect(lines).toContain(`Content-Length: ${Buffer.byteLength(body)}`);
    expect(lines).toContain("Connection: keep-alive");
    expect(Buffer.from(sent!, "latin1").toString("utf8")).toBe(body);
  });

  it("reads a chunked reply (with a chunk extension and trailers) and one that comes byte by byte", async () => {
    const chunked = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: 1\r\n\r\n";
    const s = await rawServer((_req, socket, i) => {
      const bytes = i === 0 ? chunked : json('{"slow":true}');
      if (i === 0) return void socket.write(bytes);
      // One byte per write: the parser must wait for the rest.
      let k = 0;
      const next = (): void => {
        if (k < bytes.length) socket.write(bytes[k++]!, () => setImmediate(next));
      };
      next();
    });
    const t = transport();
    expect((await rpc(t, s.url)).body.toString()).toBe("hello world");
    expect((await rpc(t, s.url)).body.toString()).toBe('{"slow":true}');
    expect(s.connections).toBe(1);
  });

  it("skips an interim 100 Continue, and reads to the end a reply without length (socket not reused)", async () => {
    const s = await rawServer((_req, socket, i) => {
      if (i === 0) socket.write(`HTTP/1.1 100 Continue\r\n\r\n${json("{}")}`);
      else socket.end("HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end");
    });
    const t = transport();
    expect((await rpc(t, s.url)).body.toString()).toBe("{}");
    expect((await rpc(t, s.url)).body.toString()).toBe("until the end");
    await rpc(t, s.url).catch(() => undefined);
    expect(s.connections).toBe(2);
  });

  it("opens a new socket after a reply that says Connection: close", async () => {
    const s = await rawServer((_req, socket) => socket.write(json("{}", "Connection: close\r\n")));
    const t = transport();
    await rpc(t, s.url);
    await rpc(t, s.url);
    expect(s.connections).toBe(2);
  });

  it("retries once a reset on a reused socket (the server closed it), never a reset of a fresh one", async () => {
    // The second request's socket is closed by the server without an answer, as a keep-alive
    // timeout racing the request does; the client repeats it on a new socket.
    const s = await rawServer((_req, socket, i) => (i === 1 ? socket.destroy() : socket.write(json(`{"n":${i}}`))));
    const t = transport();
    expect((await rpc(t, s.url)).body.toString()).toBe('{"n":0}');
    expect((await rpc(t, s.url)).body.toString()).toBe('{"n":2}');
    expect(s.connections).toBe(2);
    const fresh = await rawServer((_req, socket) => socket.destroy());
    const err = await rpc(t, fresh.url).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(XapiTransportError);
    expect(String(err)).toMatch(/ECONNRESET/);
    expect(fresh.requests).toHaveLength(1);
  });

  it("a reply cut off mid-body, or malformed, is a transport error naming no query", async () => {
    const s = await rawServer((req, socket) => {
      if (req.includes("cut")) socket.end("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this");
      else socket.end("SSH-2.0-OpenSSH\r\n\r\n");
    });
    const t = transport();
    const u = new URL("/jsonrpc?session_id=secret", s.url);
    const cut = await t.rpc(u, "cut", {}, AbortSignal.timeout(10_000)).catch((e: unknown) => e);
    expect(cut).toBeInstanceOf(XapiTransportError);
    expect(String(cut)).not.toContain("secret");
    const bad = await t.rpc(u, "bad", {}, AbortSignal.timeout(10_000)).catch((e: unknown) => e);
    expect(String(bad)).toMatch(/HPE_INVALID|protocol/);
  });

  it("a declared or streamed reply over the cap is refused without reading on", async () => {
    const s = await rawServer((req, socket) => {
      if (req.includes("declared")) socket.write("HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n");
      else socket.write(`HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n400\r\n${"x".repeat(1024)}\r\n`);
      // Chunked: keep sending until the client hangs up.
      const more = setInterval(() => socket.writable && socket.write(`400\r\n${"y".repeat(1024)}\r\n`), 1);
      socket.on("close", () => clearInterval(more));
    });
    const t = transport(2048);
    await expect(rpc(t, s.url, "declared")).rejects.toThrow(/larger than 2048 bytes/);
    await expect(rpc(t, s.url, "streamed")).rejects.toThrow(/larger than 2048 bytes/);
  });

  it("an abort destroys the socket at once; calls beyond maxSockets wait for a free one", async () => {
    const s = await rawServer((req, socket) => {
      if (!req.includes("hang")) socket.write(json("{}"));
    });
    const t = new HttpTransport({ maxSockets: 1 });
    open.push({ close: async () => t.close() });
    const controller = new AbortController();
    const hanging = rpc(t, s.url, "hang", controller.signal);
    // Queued behind the hanging call on the only socket.
    const queued = rpc(t, s.url, "after");
    queued.catch(() => undefined); // awaited below; a failed assertion before must not leave it unhandled
    // The hanging request reached the server (polled: a loaded machine takes its time), and the
    // queued one did not go out beside it.
    for (const until = Date.now() + 10_000; s.requests.length === 0 && Date.now() < until; ) await new Promise((r) => setTimeout(r, 5));
    await new Promise((r) => setTimeout(r, 20));
    expect(s.requests).toHaveLength(1);
    controller.abort(new Error("stop"));
    await expect(hanging).rejects.toMatchObject({ name: "AbortError" });
    expect((await queued).status).toBe(200);
    expect(s.connections).toBe(2);
    // A call already aborted sends nothing.
    await expect(rpc(t, s.url, "x", AbortSignal.abort())).rejects.toMatchObject({ name: "AbortError" });
    expect(s.requests).toHaveLength(2);
  });

  it("refuses at once what node:http refuses: both framings, a bare LF, a bad header name or value, a padded chunk size; tolerates a trailing CRLF", async () => {
    const bad = [
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 2\r\n\r\n2\r\nok\r\n0\r\n\r\n",
      "HTTP/1.1 200 OK\nContent-Length: 2\n\nok",
      "HTTP/1.1 200 OK\r\nContent-Length : 2\r\n\r\nok",
      "HTTP/1.1 200 OK\r\nX-A: 1\r\n Transfer-Encoding: chunked\r\nContent-Length: 2\r\n\r\nok",
      "HTTP/1.1 200 OK\r\nX-A: a\u0000b\r\nContent-Length: 2\r\n\r\nok",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n 2 ;x\r\nok\r\n0\r\n\r\n",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\nok\r\n0\r\n\r\n",
    ];
    for (const reply of bad) {
      const s = await rawServer((_req, socket) => socket.write(reply, "latin1"));
      const t0 = performance.now();
      await expect(rpc(transport(), s.url, undefined, AbortSignal.timeout(5_000)), JSON.stringify(reply)).rejects.toThrow(/HPE_INVALID: HTTP protocol error/);
      expect(performance.now() - t0).toBeLessThan(4_000);
    }
    const trailing = await rawServer((_req, socket) => socket.write(json('{"a":1}') + "\r\n"));
    expect((await rpc(transport(), trailing.url)).body.toString()).toBe('{"a":1}');
    // A body may hold bare LFs: only the head's lines are held to CRLF.
    const lf = await rawServer((_req, socket) => socket.write(json('{\n"a":\n1}')));
    expect((await rpc(transport(), lf.url)).body.toString()).toBe('{\n"a":\n1}');
  });

  it("refuses a header value with a line break (no request smuggling) and a closed transport", async () => {
    const s = await rawServer((_req, socket) => socket.write(json("{}")));
    const t = transport();
    await expect(t.rpc(new URL("/jsonrpc", s.url), "{}", { "x-a": "1\r\nX-Injected: 1" }, AbortSignal.timeout(5000))).rejects.toThrow(/line break/);
    t.close();
    await expect(rpc(t, s.url)).rejects.toBeInstanceOf(XapiTransportError);
    expect(s.requests).toHaveLength(0);
  });
});
