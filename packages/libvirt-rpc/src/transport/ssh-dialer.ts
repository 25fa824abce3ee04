import { spawn, type ChildProcess } from "node:child_process";
import { Duplex } from "node:stream";
import type { Dialer } from "./dialer.js";

/** Options of `SshDialer`. */
export interface SshDialerOptions {
  host: string;
  port?: number;
  user?: string;
  /** Identity file (`keyfile=` in the URI). */
  keyFile?: string;
  /** Remote socket path for `nc` (default `/run/libvirt/libvirt-sock`). */
  socketPath?: string;
  /** The URI to hand to `virt-ssh-helper` (e.g. `qemu:///system`); with it, the helper is tried first. */
  remoteUri?: string;
  /** `netcat=` override: remote netcat binary (default `nc`). */
  netcat?: string;
  /** `proxy=` mode: "auto" (helper, then nc), "netcat" or "native" (helper only). Default "auto". */
  proxy?: "auto" | "netcat" | "native";
  /** The ssh binary (default `ssh`). */
  sshBinary?: string;
  /** Disable host key checking (`no_verify=1`). */
  noVerify?: boolean;
  /** Extra ssh arguments. */
  extraArgs?: readonly string[];
}

function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** Builds the remote command the same way libvirt's remote driver does. */
export function sshRemoteCommand(o: SshDialerOptions): string {
  const sock = o.socketPath ?? "/run/libvirt/libvirt-sock";
  const nc = o.netcat ?? "nc";
  const ncCmd =
    `if ${nc} -q 2>&1 | grep "requires an argument" >/dev/null 2>&1; then ARG=-q0; else ARG=; fi;` +
    `${nc} $ARG -U ${shellQuote(sock)}`;
  const proxy = o.proxy ?? "auto";
  if (proxy === "netcat" || o.remoteUri === undefined) return `sh -c ${shellQuote(ncCmd)}`;
  const helper = `virt-ssh-helper ${shellQuote(o.remoteUri)}`;
  if (proxy === "native") return helper;
  return `sh -c ${shellQuote(`if which virt-ssh-helper >/dev/null 2>&1; then ${helper}; else ${ncCmd}; fi`)}`;
}

/** How long ssh's pipes may take to drain after it exited. */
const EXIT_DRAIN_MS = 200;
/** How long ssh gets to go after SIGTERM before SIGKILL. */
const KILL_AFTER_MS = 2_000;

/**
 * Connects by running the system `ssh` and talking to libvirtd through `virt-ssh-helper` or `nc` on
 * the remote host, like libvirt's `qemu+ssh://` transport. Authentication is ssh's (agent, keys).
 */
export class SshDialer implements Dialer {
  readonly description: string;

  constructor(private readonly options: SshDialerOptions) {
    this.description = `ssh:${options.user ? `${options.user}@` : ""}${options.host}`;
  }

  /** The argv passed to ssh (for tests and diagnostics). */
  args(): string[] {
    const o = this.options;
    const args = ["-T", "-e", "none", "-o", "BatchMode=yes"];
    if (o.port !== undefined) args.push("-p", String(o.port));
    if (o.user !== undefined) args.push("-l", o.user);
    if (o.keyFile !== undefined) args.push("-i", o.keyFile);
    if (o.noVerify) args.push("-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null");
    args.push(...(o.extraArgs ?? []), "--", o.host, sshRemoteCommand(o));
    return args;
  }

  async dial(signal?: AbortSignal): Promise<Duplex> {
    if (signal?.aborted) throw abortReason(signal);
    // No `signal` for spawn itself: it would kill ssh on an abort long after the link is up (the
    // caller's connect signal stays alive with the link); it bounds the dial only, as for TCP.
    const child = spawn(this.options.sshBinary ?? "ssh", this.args(), { stdio: ["pipe", "pipe", "pipe"] });
    let stderr = "";
    child.stderr.setEncoding("utf8");
    child.stderr.on("data", (d: string) => {
      if (stderr.length < 4096) stderr = (stderr + d).slice(0, 4096);
    });
    await new Promise<void>((resolve, reject) => {
      const onAbort = (): void => {
        stop(child);
        reject(abortReason(signal!));
      };
      child.once("spawn", () => {
        signal?.removeEventListener("abort", onAbort);
        resolve();
      });
      child.once("error", (err) => {
        signal?.removeEventListener("abort", onAbort);
        reject(err);
      });
      signal?.addEventListener("abort", onAbort, { once: true });
    });
    // ssh's stdout ends (and its stdin breaks) before ssh has exited: taken at once, the link would
    // read as closed by the daemon, losing why ssh gave up (an unknown host, a refused key).
    const { stdout, stdin, stderr: errors } = child;
    const duplex = new Duplex({
      read() {
        stdout.resume();
      },
      write(chunk: Buffer, _encoding, callback) {
        // A write into an ssh that is gone is dropped: its exit says why the link ended.
        if (stdin.destroyed) callback();
        else stdin.write(chunk, () => callback());
      },
      final(callback) {
        stdin.end();
        callback();
      },
      destroy(err, callback) {
        stdout.destroy();
        stdin.destroy();
        errors.destroy();
        callback(err);
      },
    });
    stdin.on("error", () => undefined);
    stdout.on("data", (d: Buffer) => {
      if (!duplex.push(d)) stdout.pause();
    });
    // So the link ends on ssh's exit, with its status and what it printed; not on its pipes' close:
    // a process ssh left behind (a ProxyCommand, a wrapper's background job) may hold them open for
    // ever. What ssh wrote before it exited is still read: its pipes get a moment to drain.
    child.once("exit", (code, sig) => {
      const finish = () => {
        if (duplex.destroyed) return;
        if (code === 0) duplex.push(null);
        else {
          const why = stderr.trim() || "it printed nothing";
          duplex.destroy(new Error(`ssh exited with ${code !== null ? `status ${code}` : `signal ${sig ?? "unknown"}`}: ${why}`));
        }
      };
      const drained = Promise.all([stdout, errors].map((p) => (p.readableEnded || p.destroyed ? undefined : new Promise((r) => p.once("close", r)))));
      const grace = new Promise((r) => setTimeout(r, EXIT_DRAIN_MS).unref());
      void Promise.race([drained, grace]).then(finish);
    });
    duplex.once("close", () => stop(child));
    return duplex;
  }
}

/** Why a dial stopped: the signal's reason when it is an error. */
function abortReason(signal: AbortSignal): Error {
  return signal.reason instanceof Error ? signal.reason : new Error("dial aborted");
}

/**
 * Ends ssh: SIGTERM, then SIGKILL if it is still there after {@link KILL_AFTER_MS} (an ssh stuck
 * connecting to a host that drops packets may outlive a TERM for its whole ConnectTimeout).
 */
function stop(child: ChildProcess): void {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill("SIGTERM");
  const force = setTimeout(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  }, KILL_AFTER_MS);
  force.unref();
  child.once("exit", () => clearTimeout(force));
}
