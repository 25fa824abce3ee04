// Per-call deadlines and the write batch of RpcClient: calls on the connection's default timeout
// share one sweep timer, calls with their own timeout keep their own timer, and either kind times
// out at its own deadline, never at a neighbour's. Packets of one tick leave in one write.

import { describe, expect, it } from "vitest";
import { RpcClient } from "./client.js";
import { LibvirtAbortedError, LibvirtTimeoutError } from "./errors.js";
import { PacketDecoder, readHeader } from "./packet.js";
import { Proc } from "./procedures.js";
import { duplexPair, fixtures } from "./testing/mock-libvirtd.js";

/** A client whose daemon end records call serials and never answers unless told to. */
function silentDaemon(defaultTimeoutMs: number) {
  const [clientSide, daemonSide] = duplexPair();
  const client = new RpcClient(clientSide, { defaultTimeoutMs });
  const writes: Buffer[] = [];
  const serials: number[] = [];
  const decoder = new PacketDecoder();
  daemonSide.on("data", (chunk: Buffer) => {
    writes.push(chunk);
    decoder.push(chunk, (p) => serials.push(readHeader(p).serial));
  });
  const answer = (serial: number) => daemonSide.write(fixtures.hostnameReply(serial));
  return { client, writes, serials, answer, close: () => (client.destroy(), daemonSide.destroy()) };
}

const hostname = (client: RpcClient, options?: { timeoutMs?: number; signal?: AbortSignal }) =>
  client.call(Proc.CONNECT_GET_HOSTNAME, null, (r) => r.string(), options);

/** Settles to [ms after `t0`, error]. */
const settledAt = (p: Promise<unknown>, t0: number) =>
  p.then(
    () => [performance.now() - t0, undefined] as const,
    (err: unknown) => [performance.now() - t0, err] as const,
  );

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("RpcClient deadlines", () => {
  it("times out each call on the default timeout at its own deadline", async () => {
    const d = silentDaemon(80);
    const t0 = performance.now();
    const first = settledAt(hostname(d.client), t0);
    await sleep(40);
    const t1 = performance.now();
    const second = settledAt(hostname(d.client), t1);
    const [firstMs, firstErr] = await first;
    expect(firstErr).toBeInstanceOf(LibvirtTimeoutError);
    expect((firstErr as LibvirtTimeoutError).timeoutMs).toBe(80);
    expect(firstMs).toBeGreaterThanOrEqual(80);
    // The second call was made 40 ms later; its deadline is its own, not the first call's.
    expect(d.client.inFlight).toBe(1);
    const [secondMs, secondErr] = await second;
    expect(secondErr).toBeInstanceOf(LibvirtTimeoutError);
    expect(secondMs).toBeGreaterThanOrEqual(80);
    expect(d.client.inFlight).toBe(0);
    d.close();
  });

  it("keeps timing out calls after a quiet spell in which every call was answered", async () => {
    const d = silentDaemon(50);
    const answered = hostname(d.client);
    await sleep(5);
    d.answer(d.serials[0] as number);
    expect(await answered).toBe("hv");
    // The shared timer fires with nothing to time out and must come back for the next call.
    await sleep(120);
    const t0 = performance.now();
    const [ms, err] = await settledAt(hostname(d.client), t0);
    expect(err).toBeInstanceOf(LibvirtTimeoutError);
    expect(ms).toBeGreaterThanOrEqual(50);
    d.close();
  });

  it("gives a call with its own timeout its own deadline among calls on the default", async () => {
    const d = silentDaemon(200);
    const t0 = performance.now();
    const onDefault = settledAt(hostname(d.client), t0);
    const short = settledAt(hostname(d.client, { timeoutMs: 30 }), t0);
    const never = hostname(d.client, { timeoutMs: 0, signal: AbortSignal.timeout(400) });
    const [shortMs, shortErr] = await short;
    expect(shortErr).toBeInstanceOf(LibvirtTimeoutError);
    expect((shortErr as LibvirtTimeoutError).timeoutMs).toBe(30);
    expect(shortMs).toBeGreaterThanOrEqual(30);
    expect(d.client.inFlight).toBe(2);
    const [defaultMs, defaultErr] = await onDefault;
    expect(defaultErr).toBeInstanceOf(LibvirtTimeoutError);
    expect((defaultErr as LibvirtTimeoutError).timeoutMs).toBe(200);
    expect(defaultMs).toBeGreaterThanOrEqual(200);
    // No timeout at all: only its signal ends it, as an abort.
    await expect(never).rejects.toBeInstanceOf(LibvirtAbortedError);
    d.close();
  });

  it("rejects an aborted call at once and still times out the others on the default timeout", async () => {
    const d = silentDaemon(60);
    const ac = new AbortController();
    const t0 = performance.now();
    const aborted = settledAt(hostname(d.client, { signal: ac.signal }), t0);
    const other = settledAt(hostname(d.client), t0);
    ac.abort();
    const [, abortErr] = await aborted;
    expect(abortErr).toBeInstanceOf(LibvirtAbortedError);
    expect(d.client.inFlight).toBe(1);
    const [ms, err] = await other;
    expect(err).toBeInstanceOf(LibvirtTimeoutError);
    expect(ms).toBeGreaterThanOrEqual(60);
    d.close();
  });
});

describe("RpcClient write batch", () => {
  it("sends the calls of one tick in one write, and drops only a call whose encoder throws", async () => {
    const d = silentDaemon(1000);
    const a = hostname(d.client);
    const bad = d.client.call(
      Proc.DOMAIN_LOOKUP_BY_NAME,
      (w) => {
        w.string("half-written");
        throw new RangeError("bad argument");
      },
      null,
    );
    const b = hostname(d.client);
    await expect(bad).rejects.toThrow("bad argument");
    await sleep(10);
    expect(d.writes).toHaveLength(1);
    expect(d.serials).toHaveLength(2); // the two good calls, intact
    for (const s of d.serials) d.answer(s);
    expect(await Promise.all([a, b])).toEqual(["hv", "hv"]);
    d.close();
  });
});
