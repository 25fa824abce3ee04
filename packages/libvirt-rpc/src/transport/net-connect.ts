// Shared helper: wait for a node:net / node:tls socket to connect, honouring an AbortSignal.

import type { Socket } from "node:net";

/** Resolve with `socket` once `readyEvent` fires; destroy it on error or abort. */
export function whenConnected<T extends Socket>(socket: T, readyEvent: string, signal?: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const cleanup = (): void => {
      socket.off(readyEvent, onReady);
      socket.off("error", onError);
      signal?.removeEventListener("abort", onAbort);
    };
    const onReady = (): void => {
      cleanup();
      resolve(socket);
    };
    const onError = (err: Error): void => {
      cleanup();
      socket.destroy();
      reject(err);
    };
    const onAbort = (): void => {
      cleanup();
      socket.destroy();
      reject(signal?.reason instanceof Error ? signal.reason : new Error("dial aborted"));
    };
    if (signal?.aborted) {
      onAbort();
      return;
    }
    socket.once(readyEvent, onReady);
    socket.once("error", onError);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
