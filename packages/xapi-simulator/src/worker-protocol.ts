// The messages between startXapiSimulatorInWorker (caller's thread) and worker-host.ts.
import type { XapiSimulatorOptions } from "./simulator.js";

/** Options that can cross to the worker (a logger function cannot). */
export type WorkerSimulatorOptions = Omit<XapiSimulatorOptions, "logger">;

export type WorkerRequest = { readonly id: number } & (
  | { readonly op: "start"; readonly options: WorkerSimulatorOptions }
  | { readonly op: "guest"; readonly sid: number; readonly vmUuid: string; readonly member: string; readonly args: readonly unknown[] }
  | { readonly op: "fault"; readonly sid: number; readonly member: string; readonly args: readonly unknown[] }
  | { readonly op: "leftovers"; readonly sid: number }
  | { readonly op: "close"; readonly sid: number }
);

export type WorkerReply =
  | { readonly id: number; readonly ok: true; readonly value: unknown }
  | { readonly id: number; readonly ok: false; readonly error: string };
