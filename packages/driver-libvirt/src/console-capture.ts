/**
 * The tail of a domain's serial console, captured from a libvirt console stream into a bounded
 * ring buffer. The capture only reads: it never keeps the process alive on its own (the stream
 * lives on the driver's connection) and `close()` aborts the stream on the daemon.
 */
import type { ByteStream } from "./libvirt-connection.js";

/** Default size of the ring buffer. */
export const CONSOLE_CAPTURE_BYTES = 64 * 1024;

/** A console stream being read into a bounded buffer. */
export class ConsoleCapture {
  readonly #limit: number;
  readonly #stream: ByteStream;
  readonly #chunks: Buffer[] = [];
  readonly #waiters = new Set<() => void>();
  #size = 0;
  #closed = false;
  #sawLine = false;
  /** When the stream was opened (ms since the epoch). */
  readonly openedAt = Date.now();
  /** Settles once the stream ended, failed or was closed. */
  readonly done: Promise<void>;

  constructor(stream: ByteStream, limit = CONSOLE_CAPTURE_BYTES) {
    this.#stream = stream;
    this.#limit = limit;
    this.done = this.#pump();
  }

  /** The stream ended (domain stopped, console taken over) or was closed. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Bytes held now (at most the limit). */
  get size(): number {
    return this.#size;
  }

  async #pump(): Promise<void> {
    try {
      for await (const chunk of this.#stream) {
        if (this.#closed) break;
        this.#append(Buffer.from(chunk));
      }
    } catch {
      // A failed or aborted stream just ends the capture; what was read stays.
    } finally {
      this.#closed = true;
      this.#wake();
    }
  }

  #append(chunk: Buffer): void {
    if (chunk.length === 0) return;
    if (chunk.includes(0x0a)) this.#sawLine = true;
    if (chunk.length >= this.#limit) {
      this.#chunks.length = 0;
      this.#chunks.push(Buffer.from(chunk.subarray(chunk.length - this.#limit)));
      this.#size = this.#limit;
    } else {
      this.#chunks.push(chunk);
      this.#size += chunk.length;
      while (this.#size > this.#limit) {
        const first = this.#chunks[0]!;
        const excess = this.#size - this.#limit;
        if (first.length <= excess) {
          this.#chunks.shift();
          this.#size -= first.length;
        } else {
          this.#chunks[0] = first.subarray(excess);
          this.#size -= excess;
        }
      }
    }
    this.#wake();
  }

  #wake(): void {
    const waiters = [...this.#waiters];
    this.#waiters.clear();
    for (const w of waiters) w();
  }

  /** The captured bytes. */
  bytes(): Buffer {
    return Buffer.concat(this.#chunks, this.#size);
  }

  /** The captured text (UTF-8). */
  text(): string {
    return this.bytes().toString("utf8");
  }

  /** A whole line was captured at some point (a newline arrived). */
  hasLine(): boolean {
    return this.#sawLine;
  }

  /** Resolves when a whole line is held, the capture ends, `ms` pass or `signal` fires (never rejects). */
  waitForLine(ms: number, signal?: AbortSignal): Promise<void> {
    if (this.hasLine() || this.#closed || ms <= 0 || signal?.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const finish = () => {
        clearTimeout(timer);
        signal?.removeEventListener("abort", finish);
        this.#waiters.delete(check);
        resolve();
      };
      const check = () => {
        if (this.hasLine() || this.#closed) finish();
        else this.#waiters.add(check);
      };
      const timer = setTimeout(finish, ms);
      timer.unref();
      signal?.addEventListener("abort", finish, { once: true });
      this.#waiters.add(check);
    });
  }

  /**
   * Stops reading and aborts the stream; the captured text stays readable. Settles once the daemon
   * confirmed the abort (or the stream had already ended), never rejects.
   */
  close(): Promise<void> {
    if (!this.#closed) {
      this.#closed = true;
      this.#wake();
      try {
        this.#stream.destroy();
      } catch {
        // Already gone.
      }
    }
    return this.#stream.released ?? Promise.resolve();
  }
}
