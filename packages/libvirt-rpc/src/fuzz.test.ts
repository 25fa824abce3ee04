// Fuzzing the decoders and the client's packet handling with random and mutated packets.
// Bounded and seeded, so it runs in every `vitest run`; any failure prints the seed.

import { describe, expect, it } from "vitest";
import { seededRandom } from "./testing/seeded-random.js";
import { RpcClient } from "./client.js";
import { LibvirtRpcError } from "./errors.js";
import { readLifecycleMsg } from "./events.js";
import { MessageStatus, MessageType, PacketDecoder } from "./packet.js";
import { Proc } from "./procedures.js";
import { duplexPair, fixtures, mockPacket } from "./testing/mock-libvirtd.js";
import {
  readDomain,
  readDomainInfo,
  readJobInfo,
  readNodeInfo,
  readRemoteError,
  readSnapshot,
  readTypedParams,
  writeDomain,
  writeRemoteError,
  writeTypedParams,
} from "./wire.js";
import { XdrReader } from "./xdr.js";

const SEED = Number(process.env.FUZZ_SEED ?? 0x5eed);
const ITERATIONS = Number(process.env.FUZZ_ITERATIONS ?? 400);

const UUID = "6695eb01-f6a4-8304-79aa-97f2502e193f";

/** Valid packets a daemon could send, used as mutation seeds. */
function seeds(serial: number): Buffer[] {
  return [
    fixtures.hostnameReply(serial),
    fixtures.noDomainReply(serial),
    fixtures.keepalivePing(),
    mockPacket(Proc.DOMAIN_LOOKUP_BY_NAME, MessageType.REPLY, serial, MessageStatus.OK, (w) =>
      writeDomain(w, { name: "vm", uuid: UUID, id: 3 }),
    ),
    mockPacket(Proc.DOMAIN_EVENT_CALLBACK_LIFECYCLE, MessageType.MESSAGE, 0, MessageStatus.OK, (w) => {
      w.int(1);
      writeDomain(w, { name: "vm", uuid: UUID, id: 3 });
      w.int(2);
      w.int(0);
    }),
    mockPacket(Proc.STORAGE_VOL_DOWNLOAD, MessageType.STREAM, serial, MessageStatus.CONTINUE, (w) => w.uint(7)),
  ];
}

function mutate(buf: Buffer, next: () => number): Buffer {
  const out = Buffer.from(buf);
  const kind = Math.floor(next() * 5);
  const pos = Math.floor(next() * out.length);
  switch (kind) {
    case 0: // flip bits
      for (let i = 0; i < 1 + next() * 4 && out.length > 0; i++) {
        const at = Math.floor(next() * out.length);
        out[at] = (out[at] as number) ^ (1 << Math.floor(next() * 8));
      }
      return out;
    case 1: // truncate (keeping the original length word)
      return out.subarray(0, pos);
    case 2: // overwrite a 32-bit word with an extreme value
      if (out.length >= 4) {
        const at = Math.min(pos & ~3, out.length - 4);
        out.writeUInt32BE([0, 0xffffffff, 0x7fffffff, 0x80000000, 28][Math.floor(next() * 5)] as number, at);
      }
      return out;
    case 3: // fix the length word after truncation, so framing succeeds but the body is short
      return fixLength(out.subarray(0, Math.max(28, pos)));
    default: // append garbage
      return Buffer.concat([out, randomBytes(next, Math.floor(next() * 64))]);
  }
}

function fixLength(b: Buffer): Buffer {
  const c = Buffer.from(b);
  if (c.length >= 4) c.writeUInt32BE(c.length, 0);
  return c;
}

function randomBytes(next: () => number, n: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = Math.floor(next() * 256);
  return b;
}

describe(`fuzz (seed ${SEED}, ${ITERATIONS} iterations)`, () => {
  it("decoders only ever throw LibvirtRpcError on random and mutated input", () => {
    const next = seededRandom(SEED);
    const decoders: ((r: XdrReader) => unknown)[] = [
      readDomain,
      readDomainInfo,
      readNodeInfo,
      readJobInfo,
      readRemoteError,
      readSnapshot,
      readTypedParams,
      readLifecycleMsg,
      (r) => r.array(readDomain, 16384),
    ];
    const samples: Buffer[] = [];
    {
      const p = mockPacket(0, 0, 0, 0, (w) => {
        writeRemoteError(w, { code: 42, message: "x", str1: "a" });
        writeTypedParams(w, [
          { field: "a", type: "string", value: "v" },
          { field: "b", type: "ullong", value: 5n },
          { field: "c", type: "double", value: 1.5 },
        ]);
      });
      samples.push(p.subarray(28));
    }
    for (let i = 0; i < ITERATIONS * 20; i++) {
      const input = next() < 0.5 ? randomBytes(next, Math.floor(next() * 200)) : mutate(samples[0] as Buffer, next);
      const dec = decoders[Math.floor(next() * decoders.length)] as (r: XdrReader) => unknown;
      try {
        dec(new XdrReader(input));
      } catch (err) {
        if (!(err instanceof LibvirtRpcError)) throw new Error(`seed ${SEED} iteration ${i}: ${String(err)}`);
      }
    }
  });

  it("the packet decoder only ever throws LibvirtRpcError", () => {
    const next = seededRandom(SEED + 1);
    for (let i = 0; i < ITERATIONS * 10; i++) {
      const d = new PacketDecoder(1 << 20);
      const base = seeds(1)[Math.floor(next() * 6)] as Buffer;
      const input = next() < 0.3 ? randomBytes(next, Math.floor(next() * 100)) : mutate(base, next);
      try {
        for (let off = 0; off < input.length; off += 1 + Math.floor(next() * 16)) {
          d.push(input.subarray(off, off + 1 + Math.floor(next() * 16)), () => undefined);
        }
      } catch (err) {
        if (!(err instanceof LibvirtRpcError)) throw new Error(`seed ${SEED} iteration ${i}: ${String(err)}`);
      }
    }
  });

  it("the client settles every call with a typed error or a value, never crashes or hangs", async () => {
    const next = seededRandom(SEED + 2);
    let closedByGarbage = 0;
    for (let i = 0; i < ITERATIONS; i++) {
      const [clientSide, daemonSide] = duplexPair();
      daemonSide.on("data", () => undefined);
      const client = new RpcClient(clientSide, { defaultTimeoutMs: 200, maxPacketBytes: 1 << 20 });
      client.onMessage = (proc, body) => {
        if (proc === Proc.DOMAIN_EVENT_CALLBACK_LIFECYCLE) readLifecycleMsg(body);
      };
      const calls = [
        client.call(Proc.CONNECT_GET_HOSTNAME, null, (r) => r.string(), { timeoutMs: 20 }),
        client.call(Proc.DOMAIN_LOOKUP_BY_NAME, (w) => w.string("vm"), readDomain, { timeoutMs: 20 }),
        client.call(Proc.CONNECT_GET_HOSTNAME, null, (r) => r.string(), { timeoutMs: 20 }),
      ];
      const packets = seeds(1 + Math.floor(next() * 3));
      const n = 1 + Math.floor(next() * 4);
      for (let k = 0; k < n; k++) {
        const base = packets[Math.floor(next() * packets.length)] as Buffer;
        const bytes = next() < 0.15 ? randomBytes(next, Math.floor(next() * 80)) : mutate(base, next);
        daemonSide.write(bytes);
      }
      const t0 = Date.now();
      const results = await Promise.allSettled(calls);
      // 20 ms deadlines: settling at all is the point; 10 s only catches a hang, not a slow machine.
      if (Date.now() - t0 > 10_000)
        throw new Error(`seed ${SEED} iteration ${i}: calls took ${Date.now() - t0} ms to settle`);
      for (const r of results) {
        if (r.status === "rejected" && !(r.reason instanceof LibvirtRpcError)) {
          throw new Error(`seed ${SEED} iteration ${i}: untyped rejection ${String(r.reason)}`);
        }
      }
      if (client.closed) closedByGarbage++;
      client.destroy();
      daemonSide.destroy();
    }
    // Most garbage must be detected as such (connection closed), not silently absorbed.
    expect(closedByGarbage).toBeGreaterThan(ITERATIONS / 4);
  }, 120_000);
});
