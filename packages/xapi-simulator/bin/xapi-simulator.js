#!/usr/bin/env node
/* global process, console */
// Runs a XAPI simulator until interrupted. The password comes from VIRTKIT_XAPI_SIM_PASSWORD or is
// generated and printed once here (never in the call log).
import { startXapiSimulator } from "../dist/index.js";

const USAGE = `usage: virtkit-xapi-simulator

Runs a XAPI simulator (not XenServer/XCP-ng) until interrupted: a pool of two hosts
(master and a slave that answers HOST_IS_SLAVE) and a second pool, over JSON-RPC and XML-RPC.

Environment:
  VIRTKIT_XAPI_SIM_HOST      address to listen on (default 127.0.0.1)
  VIRTKIT_XAPI_SIM_PASSWORD  root's password (default: generated, printed once)
  VIRTKIT_XAPI_SIM_QUIET     set: no call log on stderr
  VIRTKIT_XAPI_SIM_JSON      set: print one JSON line (url, slaveUrl, secondPoolUrl, username,
                             and password when generated) instead of the text`;
const args = process.argv.slice(2);
if (args.includes("--help") || args.includes("-h")) {
  console.log(USAGE);
  process.exit(0);
}
if (args.length > 0) {
  // Settings come from the environment; an argument is a mistake, not something to ignore.
  console.error(`virtkit-xapi-simulator: unexpected argument ${JSON.stringify(args[0])} (settings come from the environment)\n\n${USAGE}`);
  process.exit(2);
}

const sim = await startXapiSimulator({
  host: process.env.VIRTKIT_XAPI_SIM_HOST ?? "127.0.0.1",
  password: process.env.VIRTKIT_XAPI_SIM_PASSWORD || undefined,
  logger: process.env.VIRTKIT_XAPI_SIM_QUIET ? undefined : (line) => console.error(line),
});
if (process.env.VIRTKIT_XAPI_SIM_JSON) {
  // One line for programs that start the simulator out of process (benchmarks).
  // A generated password is printed once, as in the text: without it nobody could log in.
  const generated = process.env.VIRTKIT_XAPI_SIM_PASSWORD ? {} : { password: sim.password };
  console.log(JSON.stringify({ url: sim.url, slaveUrl: sim.slaveUrl, secondPoolUrl: sim.secondPoolUrl, username: sim.username, ...generated }));
} else {
  console.log("virtkit XAPI simulator (a simulator, not XenServer/XCP-ng)");
  console.log(`url:             ${sim.url}`);
  console.log(`slave url:       ${sim.slaveUrl}`);
  console.log(`second pool url: ${sim.secondPoolUrl}`);
  console.log(`username:        ${sim.username}`);
  if (!process.env.VIRTKIT_XAPI_SIM_PASSWORD) console.log(`password:        ${sim.password}`);
}
const stop = async () => {
  await sim.close();
  process.exit(0);
};
process.on("SIGINT", stop);
process.on("SIGTERM", stop);
