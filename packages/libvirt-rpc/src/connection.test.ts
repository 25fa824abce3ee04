// Opening a connection against loopback servers that accept and then never answer.

import { type AddressInfo, type Server, type Socket, createServer } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { LibvirtConnection } from "./connection.js";
import { LibvirtAbortedError, LibvirtConnectionClosedError, LibvirtTimeoutError } from "./errors.js";

interface SilentServer {
  port: number;
  /** Resolves when the first bytes from a client arrive. */
  firstBytes: Promise<void>;
  close(): Promise<void>;
}

const servers: SilentServer[] = [];

/** A TCP server on loopback that accepts every connection and never writes a byte. */
async function silentServer(): Promise<SilentServer> {
  const sockets: Socket[] = [];
  let gotBytes: () => void = () => undefined;
  const firstBytes = new Promise<void>((resolve) => {
    gotBytes = resolve;
  });
  const server: Server = createServer((socket) => {
    sockets.push(socket);
    socket.on("error", () => undefined);
    socket.once("data", () => gotBytes());
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const s: SilentServer = {
    port: (server.address() as AddressInfo).port,
    firstBytes,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
  servers.push(s);
  return s;
}

afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

describe("opening a connection to a daemon that never answers", () => {
  it("reports a silent handshake as LibvirtTimeoutError naming the handshake and the timeout", async () => {
    const server = await silentServer();
    const err = await LibvirtConnection.open(`test+tcp://127.0.0.1:${server.port}/default`, {
      connectTimeoutMs: 300,
      keepalive: false,
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LibvirtTimeoutError);
    expect(err).not.toBeInstanceOf(LibvirtAbortedError);
    const timeout = err as LibvirtTimeoutError;
    expect(timeout.timeoutMs).toBe(300);
    expect(timeout.procedure).toBe("AUTH_LIST");
    expect(timeout.message).toMatch(/handshake/);
    expect(timeout.message).toMatch(/timed out after 300 ms/);
  });

  it("reports the caller's own abort during the handshake as LibvirtAbortedError", async () => {
    const server = await silentServer();
    const ac = new AbortController();
    // Abort once the daemon has the handshake's first call, so the abort lands in the handshake.
    void server.firstBytes.then(() => ac.abort());
    const err = await LibvirtConnection.open(`test+tcp://127.0.0.1:${server.port}/default`, {
      signal: ac.signal,
      keepalive: false,
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LibvirtAbortedError);
    expect(err).not.toBeInstanceOf(LibvirtTimeoutError);
  });

  it("says a dial that never completes timed out, not that it was aborted", async () => {
    // A TLS dial to a server that never answers the TLS handshake: the dial phase hangs.
    const server = await silentServer();
    const err = await LibvirtConnection.open(`test+tls://127.0.0.1:${server.port}/default?no_verify=1`, {
      connectTimeoutMs: 300,
      keepalive: false,
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LibvirtConnectionClosedError);
    const message = (err as Error).message;
    expect(message).toMatch(/timed out after 300 ms/);
    expect(message).not.toMatch(/abort/i);
    expect((err as Error).cause).toBeInstanceOf(LibvirtTimeoutError);
  });
});
