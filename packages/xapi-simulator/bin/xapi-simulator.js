#!/usr/bin/env node
/* global process, console */
// Runs a XAPI simulator until interrupted. The password comes from VIRTKIT_XAPI_SIM_PASSWORD or is
// generated and printed once here (never in the call log).
import { startXapiSimulator } from "../dist/index.js";

const sim = await startXapiSimulator({
  host: process.env.VIRTKIT_XAPI_SIM_HOST ?? "127.0.0.1",
  password: process.env.VIRTKIT_XAPI_SIM_PASSWORD || undefined,
  logger: process.env.VIRTKIT_XAPI_SIM_QUIET ? undefined : (line) => console.error(line),
});
if (process.env.VIRTKIT_XAPI_SIM_JSON) {
  // One line for programs that start the simulator out of process (benchmarks).
  console.log(JSON.stringify({ url: sim.url, slaveUrl: sim.slaveUrl, secondPoolUrl: sim.secondPoolUrl, username: sim.username }));
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
