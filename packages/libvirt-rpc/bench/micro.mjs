// Client CPU per RPC with no daemon and no syscalls: the bench's unit (domainLookupByName +
// domainGetInfo) against an in-memory fake daemon that answers every packet of a write in one
// chunk on the next turn of the event loop (as a socket read would deliver them). Isolates the
// JavaScript cost of encoding, routing, timers and decoding so changes to it can be compared
// without the noise of a shared machine. Not a benchmark of libvirt: it prints ns/RPC only.
// Env: MICRO_UNITS (default 200,000), MICRO_IN_FLIGHT (default "1,64"), MICRO_DIST (another build).
/* global process, console, setImmediate, Buffer, URL */

import { Duplex } from "node:stream";

const dist = process.env.MICRO_DIST ?? new URL("../dist", import.meta.url).pathname;
const { LibvirtConnection, XdrWriter } = await import(`${dist}/index.js`);
const units = Number(process.env.MICRO_UNITS ?? 200_000);
const inFlights = (process.env.MICRO_IN_FLIGHT ?? "1,64").split(",").map(Number);

const UUID = Buffer.from("6695eb01f6a44304b3ee1a2c9d8f3d7e", "hex");
/** Reply bodies by procedure number (remote_protocol.x). */
const bodies = {
  66: (w) => w.array([0], (ww, v) => ww.int(v)), // AUTH_LIST: [REMOTE_AUTH_NONE]
  1: () => {}, // CONNECT_OPEN
  60: (w) => w.int(1), // CONNECT_SUPPORTS_FEATURE
  2: () => {}, // CONNECT_CLOSE
  23: (w) => {
    // DOMAIN_LOOKUP_BY_NAME: remote_nonnull_domain
    w.string("test");
    w.opaqueFixed(UUID, 16);
    w.int(1);
  },
  16: (w) => {
    // DOMAIN_GET_INFO
    w.uint(1);
    w.uhyper(8388608n);
    w.uhyper(2097152n);
    w.uint(2);
    w.uhyper(1234567890n);
  },
};

function fakeDaemon() {
  const out = new XdrWriter(1 << 16);
  let scheduled = false;
  let held = Buffer.alloc(0);
  const d = new Duplex({
    read() {},
    write(chunk, _enc, cb) {
      let data = held.length ? Buffer.concat([held, chunk]) : chunk;
      let off = 0;
      while (data.length - off >= 28) {
        const len = data.readUInt32BE(off);
        if (data.length - off < len) break;
        const proc = data.readInt32BE(off + 12);
        const type = data.readInt32BE(off + 16);
        const serial = data.readUInt32BE(off + 20);
        off += len;
        if (type !== 0) continue; // keepalive etc.
        const at = out.length;
        out.uint(0);
        out.uint(0x20008086);
        out.uint(1);
        out.int(proc);
        out.int(1);
        out.uint(serial);
        out.int(0);
        bodies[proc](out);
        out.buf.writeUInt32BE(out.length - at, at);
      }
      held = data.subarray(off);
      if (!scheduled && out.length > 0) {
        scheduled = true;
        setImmediate(() => {
          scheduled = false;
          const reply = Buffer.from(out.buf.subarray(0, out.length));
          out.reset();
          d.push(reply);
        });
      }
      cb();
    },
  });
  return d;
}

const conn = await LibvirtConnection.open("test:///default", {
  dialer: { dial: async () => fakeDaemon(), description: "in-memory" },
  keepalive: false,
});

async function run(n, inFlight) {
  let next = 0;
  const worker = async () => {
    while (next < n) {
      next++;
      const d = await conn.domainLookupByName("test");
      await conn.domainGetInfo(d);
    }
  };
  await Promise.all(Array.from({ length: Math.min(inFlight, n) }, worker));
}

for (const inFlight of inFlights) await run(20_000, inFlight); // warm-up
for (let round = 0; round < 3; round++) {
  const line = [];
  for (const inFlight of inFlights) {
    globalThis.gc?.();
    const c0 = process.cpuUsage();
    await run(units, inFlight);
    const c = process.cpuUsage(c0);
    line.push(`${inFlight} in flight ${(((c.user + c.system) * 1000) / (2 * units)).toFixed(0)} ns/RPC`);
  }
  console.log(`round ${round + 1}: ${line.join(", ")}`);
}
await conn.close();
