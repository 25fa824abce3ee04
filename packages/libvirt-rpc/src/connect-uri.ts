// Maps a libvirt connection URI (`driver[+transport]://[user@][host][:port]/path[?query]`) to a
// dialer and to the name sent in REMOTE_PROC_CONNECT_OPEN, the way libvirt's remote driver does:
// the transport, host, user, port and the remote driver's own query parameters are stripped.

import { LibvirtUriError } from "./errors.js";
import type { Dialer } from "./transport/dialer.js";
import { SshDialer } from "./transport/ssh-dialer.js";
import { DEFAULT_TCP_PORT, TcpDialer } from "./transport/tcp-dialer.js";
import { DEFAULT_TLS_PORT, TlsDialer, type TlsDialerOptions } from "./transport/tls-dialer.js";
import { DEFAULT_SYSTEM_SOCKET, UnixDialer } from "./transport/unix-dialer.js";

/** Transports understood by this client. */
export type LibvirtTransport = "unix" | "tcp" | "tls" | "ssh";

/** Query parameters consumed by the remote driver itself (never forwarded to the daemon). */
const REMOTE_PARAMS = new Set([
  "name",
  "command",
  "socket",
  "auth",
  "netcat",
  "keyfile",
  "no_verify",
  "no_tty",
  "pkipath",
  "known_hosts",
  "known_hosts_verify",
  "sshauth",
  "tls_priority",
  "mode",
  "proxy",
]);

/**
 * The query values the daemon is sent with the URI (those the client does not use itself), 3
 * characters or longer: what a daemon's error may echo back, and what the client masks there.
 */
export function forwardedQueryValues(parsed: ParsedConnectUri): string[] {
  return [...parsed.params].filter(([k, v]) => !REMOTE_PARAMS.has(k.toLowerCase()) && v.length >= 3).map(([, v]) => v);
}

/** The result of parsing a connection URI. */
export interface ParsedConnectUri {
  /** The URI as given. */
  uri: string;
  /** Hypervisor driver, e.g. `qemu`, `test`. */
  driver: string;
  transport: LibvirtTransport;
  host: string | undefined;
  port: number | undefined;
  user: string | undefined;
  /** Path, e.g. `/system`. */
  path: string;
  /** Name sent in CONNECT_OPEN, e.g. `qemu:///system`. */
  openName: string;
  /** All query parameters. */
  params: ReadonlyMap<string, string>;
}

/** Options that influence the dialer chosen for a URI. */
export interface ConnectUriOptions {
  /** Socket for local/unix URIs when the URI has no `socket=` (default `/run/libvirt/libvirt-sock`). */
  socketPath?: string;
  /** TLS material for `+tls` URIs (defaults to libvirt's paths, or `pkipath=`). */
  tls?: Omit<TlsDialerOptions, "host" | "port">;
  /** ssh binary and extra args for `+ssh` URIs. */
  ssh?: { sshBinary?: string; extraArgs?: readonly string[] };
}

/** Parse a libvirt connection URI. Throws `LibvirtUriError` naming the URI when it is not usable. */
export function parseConnectUri(uri: string): ParsedConnectUri {
  const m = /^([A-Za-z][A-Za-z0-9_-]*)(?:\+([A-Za-z0-9]+))?:\/\/([^/?#]*)(\/[^?#]*)?(?:\?([^#]*))?$/.exec(uri);
  if (!m) throw new LibvirtUriError(uri, "expected driver[+transport]://[user@][host][:port]/path[?params]");
  const driver = (m[1] as string).toLowerCase();
  const explicitTransport = m[2]?.toLowerCase();
  const authority = m[3] ?? "";
  const path = m[4] ?? "";
  const query = m[5] ?? "";

  let user: string | undefined;
  let hostPort = authority;
  const at = authority.lastIndexOf("@");
  if (at >= 0) {
    const info = authority.slice(0, at);
    // libvirt takes no password from a URI (ssh keys, TLS certificates or SASL authenticate): one
    // given would be dropped, or worse shown (ps, an ssh -l argument): refused instead.
    if (info.includes(":")) {
      throw new LibvirtUriError(
        uri,
        "a password in the URI is never used (libvirt authenticates with ssh keys, TLS certificates or SASL): remove it",
      );
    }
    try {
      user = decodeURIComponent(info);
    } catch {
      throw new LibvirtUriError(uri, "the user name has a bad %-escape");
    }
    hostPort = authority.slice(at + 1);
  }
  let host: string | undefined;
  let port: number | undefined;
  const v6 = /^\[([^\]]+)\](?::(\d*))?$/.exec(hostPort);
  if (v6) {
    host = v6[1];
    if (v6[2]) port = Number(v6[2]);
  } else if (hostPort !== "") {
    const colon = hostPort.lastIndexOf(":");
    if (colon >= 0) {
      host = hostPort.slice(0, colon);
      const p = hostPort.slice(colon + 1);
      if (p !== "") {
        if (!/^\d+$/.test(p)) throw new LibvirtUriError(uri, "the port is not a number");
        port = Number(p);
      }
    } else {
      host = hostPort;
    }
    if (host === "") host = undefined;
  }
  if (port !== undefined && (port < 1 || port > 65535)) throw new LibvirtUriError(uri, `port ${port} out of range`);

  const params = new Map<string, string>();
  const forwarded: string[] = [];
  if (query !== "") {
    for (const part of query.split("&")) {
      if (part === "") continue;
      const eq = part.indexOf("=");
      const rawKey = eq >= 0 ? part.slice(0, eq) : part;
      const rawVal = eq >= 0 ? part.slice(eq + 1) : "";
      let key: string;
      let val: string;
      try {
        key = decodeURIComponent(rawKey.replace(/\+/g, " "));
        val = decodeURIComponent(rawVal.replace(/\+/g, " "));
      } catch {
        throw new LibvirtUriError(uri, `a query parameter has a bad %-escape`);
      }
      params.set(key, val);
      if (!REMOTE_PARAMS.has(key.toLowerCase())) forwarded.push(part);
    }
  }

  let transport: LibvirtTransport;
  if (explicitTransport === undefined) {
    // libvirt: no transport means a local socket without a host, TLS with one.
    transport = host === undefined ? "unix" : "tls";
  } else if (explicitTransport === "unix" || explicitTransport === "tcp" || explicitTransport === "tls") {
    transport = explicitTransport;
  } else if (explicitTransport === "ssh") {
    transport = "ssh";
  } else {
    throw new LibvirtUriError(
      uri,
      `unsupported transport ${JSON.stringify(explicitTransport)} (use unix, tcp, tls or ssh)`,
    );
  }
  if (transport === "unix" && host !== undefined) {
    throw new LibvirtUriError(uri, "a unix transport cannot name a host");
  }
  if ((transport === "tcp" || transport === "ssh") && host === undefined) {
    throw new LibvirtUriError(uri, `the ${transport} transport needs a host`);
  }
  if (driver === "remote" && path === "") {
    throw new LibvirtUriError(uri, "remote:// URIs must name a driver path");
  }

  const openName = params.get("name") ?? `${driver}://${path}${forwarded.length > 0 ? `?${forwarded.join("&")}` : ""}`;
  return { uri, driver, transport, host, port, user, path, openName, params };
}

function truthy(v: string | undefined): boolean {
  return v !== undefined && v !== "" && v !== "0";
}

/** Pick the dialer for a parsed URI. */
export function dialerForUri(parsed: ParsedConnectUri, options: ConnectUriOptions = {}): Dialer {
  const p = parsed.params;
  switch (parsed.transport) {
    case "unix":
      return new UnixDialer({ path: p.get("socket") ?? options.socketPath ?? DEFAULT_SYSTEM_SOCKET });
    case "tcp":
      return new TcpDialer({ host: parsed.host as string, port: parsed.port ?? DEFAULT_TCP_PORT });
    case "tls": {
      const pki = p.get("pkipath");
      return new TlsDialer({
        ...(pki
          ? { caPath: `${pki}/cacert.pem`, certPath: `${pki}/clientcert.pem`, keyPath: `${pki}/clientkey.pem` }
          : {}),
        ...options.tls,
        host: parsed.host ?? "localhost",
        port: parsed.port ?? DEFAULT_TLS_PORT,
        noVerify: options.tls?.noVerify ?? truthy(p.get("no_verify")),
      });
    }
    case "ssh": {
      const proxy = p.get("proxy");
      return new SshDialer({
        host: parsed.host as string,
        port: parsed.port,
        user: parsed.user,
        keyFile: p.get("keyfile"),
        socketPath: p.get("socket"),
        netcat: p.get("netcat"),
        remoteUri: parsed.openName,
        proxy: proxy === "netcat" || proxy === "native" ? proxy : "auto",
        noVerify: truthy(p.get("no_verify")),
        sshBinary: options.ssh?.sshBinary,
        extraArgs: options.ssh?.extraArgs,
      });
    }
  }
}

/** Parse a URI and pick its dialer in one step. */
export function resolveConnectUri(
  uri: string,
  options: ConnectUriOptions = {},
): { parsed: ParsedConnectUri; dialer: Dialer } {
  const parsed = parseConnectUri(uri);
  return { parsed, dialer: dialerForUri(parsed, options) };
}
