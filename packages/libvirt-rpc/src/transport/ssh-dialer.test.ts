import { existsSync, readFileSync } from "node:fs";
import { chmod, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RpcClient } from "../client.js";
import { LibvirtConnectionClosedError } from "../errors.js";
import { SshDialer } from "./ssh-dialer.js";

// A stand-in for ssh that fails as ssh does for an unknown host: a message on stderr, status 255.
let dir: string;
let fakeSsh: string;
// One that reaches its far end, here `cat`: what goes in comes back, and it exits 0 at end of input.
let echoSsh: string;
// One that ignores SIGTERM and never exits by itself (an ssh stuck on a host that drops packets).
let deafSsh: string;
// One that leaves a process holding its pipes when it exits (a ProxyCommand, a wrapper's job).
let lingeringSsh: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "virtkit-ssh-"));
  fakeSsh = join(dir, "ssh");
  await writeFile(fakeSsh, "#!/bin/sh\necho 'ssh: Could not resolve hostname nosuchhost.invalid: Name or service not known' >&2\nexit 255\n");
  await chmod(fakeSsh, 0o755);
  lingeringSsh = join(dir, "ssh-lingering");
  await writeFile(lingeringSsh, "#!/bin/sh\nsleep 5 &\necho 'ssh: connect to host h port 22: Connection refused' >&2\nexit 255\n");
  await chmod(lingeringSsh, 0o755);
  deafSsh = join(dir, "ssh-deaf");
  // Deaf before it says its pid, which appears whole (renamed into place).
  await writeFile(deafSsh, `#!/bin/sh\ntrap '' TERM\necho $$ > "$0.pid.tmp"\nmv "$0.pid.tmp" "$0.pid"\nwhile :; do sleep 0.1; done\n`);
  await chmod(deafSsh, 0o755);
  echoSsh = join(dir, "ssh-echo");
  await writeFile(echoSsh, "#!/bin/sh\nexec cat\n");
  await chmod(echoSsh, 0o755);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("SshDialer", () => {
  it("a failing ssh ends the link with its status and what it printed, not as closed by the daemon", async () => {
    const dialer = new SshDialer({ host: "nosuchhost.invalid", sshBinary: fakeSsh, socketPath: "/run/libvirt/libvirt-sock" });
    const client = new RpcClient(await dialer.dial());
    const err = await new Promise<Error>((resolve) => client.onClose(resolve));
    expect(err).toBeInstanceOf(LibvirtConnectionClosedError);
    expect(err.message).toContain("ssh exited with status 255");
    expect(err.message).toContain("Could not resolve hostname nosuchhost.invalid");
    expect(err.message).not.toContain("closed by the daemon");
  });

  it("ends the link when ssh exits even if something it left holds its pipes open", async () => {
    const t0 = performance.now();
    const client = new RpcClient(await new SshDialer({ host: "h", sshBinary: lingeringSsh }).dial());
    const err = await new Promise<Error>((resolve) => client.onClose(resolve));
    expect(err.message).toContain("ssh exited with status 255: ssh: connect to host h port 22: Connection refused");
    expect(performance.now() - t0).toBeLessThan(5_000);
  });

  it("an aborted signal: the dial rejects with its reason and starts no ssh", async () => {
    const marker = join(dir, "started");
    const spy = join(dir, "ssh-spy");
    await writeFile(spy, `#!/bin/sh\ntouch ${marker}\nexec cat\n`);
    await chmod(spy, 0o755);
    const reason = new Error("gave up");
    await expect(new SshDialer({ host: "h", sshBinary: spy }).dial(AbortSignal.abort(reason))).rejects.toBe(reason);
    await new Promise((r) => setTimeout(r, 200));
    expect(existsSync(marker)).toBe(false);
  });

  it("an abort after the link is up leaves it up: the signal bounds the dial, not the link", async () => {
    const controller = new AbortController();
    const link = await new SshDialer({ host: "h", sshBinary: echoSsh }).dial(controller.signal);
    controller.abort(new Error("connect is over"));
    const received: Buffer[] = [];
    link.on("data", (d: Buffer) => received.push(d));
    const ended = new Promise<void>((resolve, reject) => {
      link.once("end", resolve);
      link.once("error", reject);
    });
    link.end(Buffer.from("still here"));
    await ended;
    expect(Buffer.concat(received).toString()).toBe("still here");
  });

  // Timed from the destroy, not from the dial (the script's start is not what this checks).
  it("a link ended while ssh ignores SIGTERM kills it within seconds, leaving no process behind", async () => {
    const link = await new SshDialer({ host: "h", sshBinary: deafSsh }).dial();
    const pidFile = `${deafSsh}.pid`;
    // The file appears whole (renamed into place): read in place half written, its empty text was
    // pid 0, which `process.kill(0, 0)` takes for this process group, alive for ever (seen in CI).
    const started = performance.now();
    while (!existsSync(pidFile) && performance.now() - started < 15_000) await new Promise((r) => setTimeout(r, 20));
    const pid = Number(readFileSync(pidFile, "utf8"));
    expect(pid).toBeGreaterThan(1);
    const alive = () => {
      try {
        process.kill(pid, 0);
        return true;
      } catch {
        return false;
      }
    };
    expect(alive()).toBe(true);
    const t0 = performance.now();
    link.destroy();
    while (alive() && performance.now() - t0 < 10_000) await new Promise((r) => setTimeout(r, 50));
    expect(alive()).toBe(false);
    // SIGTERM is ignored: the SIGKILL 2 s later ends it, with room for a loaded machine.
    expect(performance.now() - t0).toBeLessThan(5_000);
  }, 30_000);

  it("carries bytes both ways and ends cleanly when ssh exits 0", async () => {
    const link = await new SshDialer({ host: "h", sshBinary: echoSsh }).dial();
    const received: Buffer[] = [];
    link.on("data", (d: Buffer) => received.push(d));
    const ended = new Promise<void>((resolve, reject) => {
      link.once("end", resolve);
      link.once("error", reject);
    });
    link.write(Buffer.from("hello "));
    link.end(Buffer.from("libvirtd"));
    await ended;
    expect(Buffer.concat(received).toString()).toBe("hello libvirtd");
  });
});
