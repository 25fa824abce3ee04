import type { Duplex } from "node:stream";

/** Opens the byte stream a libvirt RPC connection runs over. One implementation per transport. */
export interface Dialer {
  /** Connect; reject (and clean up) when `signal` aborts. Resolves once the stream is usable. */
  dial(signal?: AbortSignal): Promise<Duplex>;
  /** Short description for messages, e.g. `unix:/run/libvirt/libvirt-sock`. */
  readonly description?: string;
}
