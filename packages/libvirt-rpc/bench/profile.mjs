// Profiling driver for the client's hot path (not a benchmark: it prints no ratios). Runs the
// bench's unit (domainLookupByName + domainGetInfo) against the private daemon, sequentially or
// with many calls in flight, so `node --cpu-prof bench/profile.mjs` shows where the client's CPU
// goes. Env: PROFILE_UNITS (default 50,000), PROFILE_IN_FLIGHT (default 64; 1 = sequential),
// PROFILE_KEEPALIVE (0 = none).
// Summarise a profile with `node bench/profile-summary.mjs <file.cpuprofile>`.
/* global process, console, performance */

import { privateDaemonSocket } from "../../../scripts/private-libvirtd.mjs";

// PROFILE_DIST: another build of the package to compare (a directory holding index.js).
const { LibvirtConnection } = await import(
  process.env.PROFILE_DIST ? `${process.env.PROFILE_DIST}/index.js` : "../dist/index.js"
);
const units = Number(process.env.PROFILE_UNITS ?? 50_000);
const inFlight = Number(process.env.PROFILE_IN_FLIGHT ?? 64);

const conn = await LibvirtConnection.open("test:///default", {
  socketPath: privateDaemonSocket(),
  // PROFILE_KEEPALIVE=0: open without keepalive (the daemon then runs none for this client either).
  ...(process.env.PROFILE_KEEPALIVE === "0" ? { keepalive: false } : {}),
});
let next = 0;
const worker = async () => {
  while (next < units) {
    next++;
    const d = await conn.domainLookupByName("test");
    await conn.domainGetInfo(d);
  }
};
const t0 = performance.now();
await Promise.all(Array.from({ length: Math.min(inFlight, units) }, worker));
const s = (performance.now() - t0) / 1000;
const cpu = process.cpuUsage();
console.log(
  `${units} units, ${inFlight} in flight: ${s.toFixed(2)} s, ${Math.round((2 * units) / s)} RPC/s, ` +
    `client CPU ${((cpu.user + cpu.system) / 1000).toFixed(0)} ms (user ${(cpu.user / 1000).toFixed(0)}, ` +
    `system ${(cpu.system / 1000).toFixed(0)}), ${((cpu.user + cpu.system) / (2 * units)).toFixed(1)} us/RPC`,
);
await conn.close();
