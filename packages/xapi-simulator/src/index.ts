// @virtkit/xapi-simulator: a simulator of XAPI's wire protocol for testing, not a hypervisor.
export { startXapiSimulator } from "./simulator.js";
export type { XapiSimulator, XapiSimulatorOptions } from "./simulator.js";
export { startXapiSimulatorInWorker } from "./simulator-worker.js";
export type { Remote, RemoteSimulatedGuest, RemoteXapiSimulator, WorkerSimulatorOptions } from "./simulator-worker.js";
export type { XapiFaults } from "./faults.js";
export type { AgentMode, SimulatedGuest } from "./guest.js";
export { XapiError } from "./errors.js";
export { DH_BASE, DH_PRIME, deriveKeyIv } from "./agent-crypto.js";
export { readGuestDataFromImage } from "./disk.js";


export { readDataFromImage } from "./image-data.js";
