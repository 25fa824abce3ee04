import { readFile } from "node:fs/promises";
import type { Duplex } from "node:stream";
import { isIP } from "node:net";
import { connect as tlsConnect, type ConnectionOptions, type TLSSocket } from "node:tls";
import type { Dialer } from "./dialer.js";
import { whenConnected } from "./net-connect.js";

/** libvirtd's default TLS port (`tls_port`). */
export const DEFAULT_TLS_PORT = 16514;

/** libvirt's default certificate locations for a privileged client. */
export const DEFAULT_TLS_PATHS = {
  ca: "/etc/pki/CA/cacert.pem",
  cert: "/etc/pki/libvirt/clientcert.pem",
  key: "/etc/pki/libvirt/private/clientkey.pem",
} as const;

/** Options of `TlsDialer`. PEM contents win over paths; paths default to libvirt's. */
export interface TlsDialerOptions {
  host: string;
  /** Default 16514. */
  port?: number;
  ca?: string | Buffer;
  cert?: string | Buffer;
  key?: string | Buffer;
  caPath?: string;
  certPath?: string;
  keyPath?: string;
  /** Skip server certificate verification (libvirt's `no_verify=1`). */
  noVerify?: boolean;
  /** Name to verify the certificate against (default: host). */
  servername?: string;
}

async function loadPem(content: string | Buffer | undefined, path: string, optional: boolean): Promise<Buffer | undefined> {
  if (content !== undefined) return Buffer.isBuffer(content) ? content : Buffer.from(content);
  try {
    return await readFile(path);
  } catch (err) {
    if (optional) return undefined;
    throw new Error(`cannot read TLS file ${path}: ${(err as Error).message}`, { cause: err });
  }
}

/** Connects to libvirtd over TLS (`listen_tls`) with x509 client certificates, verifying the server. */
export class TlsDialer implements Dialer {
  readonly host: string;
  readonly port: number;
  readonly description: string;

  constructor(private readonly options: TlsDialerOptions) {
    this.host = options.host;
    this.port = options.port ?? DEFAULT_TLS_PORT;
    this.description = `tls:${this.host}:${this.port}`;
  }

  async dial(signal?: AbortSignal): Promise<Duplex> {
    const o = this.options;
    const noVerify = o.noVerify === true;
    // With verification the CA is mandatory; client cert/key are optional unless the daemon asks.
    const ca = await loadPem(o.ca, o.caPath ?? DEFAULT_TLS_PATHS.ca, noVerify);
    const cert = await loadPem(o.cert, o.certPath ?? DEFAULT_TLS_PATHS.cert, true);
    const key = await loadPem(o.key, o.keyPath ?? DEFAULT_TLS_PATHS.key, true);
    const tlsOptions: ConnectionOptions = {
      host: this.host,
      port: this.port,
      rejectUnauthorized: !noVerify,
    };
    // Node rejects explicit `undefined` for some options, so only set what we have.
    const servername = o.servername ?? (isIP(this.host) ? undefined : this.host);
    if (servername !== undefined) tlsOptions.servername = servername;
    if (ca) tlsOptions.ca = ca;
    if (cert) tlsOptions.cert = cert;
    if (key) tlsOptions.key = key;
    // no_verify: skip both chain and name checks, like libvirt.
    if (noVerify) tlsOptions.checkServerIdentity = () => undefined;
    const socket = tlsConnect(tlsOptions);
    socket.setNoDelay(true);
    await whenConnected(socket, "secureConnect", signal);
    await readServerVerdict(socket, signal);
    return socket;
  }
}

/**
 * After the handshake libvirtd checks our certificate and sends one byte: 1 when it accepts us.
 * Anything else (or EOF) means it rejected our certificate or address.
 */
function readServerVerdict(socket: TLSSocket, signal?: AbortSignal): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const cleanup = (): void => {
      socket.off("data", onData);
      socket.off("end", onEnd);
      socket.off("error", onError);
      signal?.removeEventListener("abort", onAbort);
    };
    const fail = (err: Error): void => {
      cleanup();
      socket.destroy();
      reject(err);
    };
    const onData = (chunk: Buffer): void => {
      cleanup();
      socket.pause();
      if (chunk[0] !== 1) {
        fail(new Error("libvirtd rejected our TLS client certificate or address"));
        return;
      }
      if (chunk.length > 1) socket.unshift(chunk.subarray(1));
      resolve();
    };
    const onEnd = (): void => fail(new Error("libvirtd closed the TLS connection during certificate checks"));
    const onError = (err: Error): void => fail(err);
    const onAbort = (): void => fail(new Error("dial aborted"));
    socket.on("data", onData);
    socket.once("end", onEnd);
    socket.once("error", onError);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
