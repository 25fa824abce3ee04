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
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "virtkit-ssh-"));
  fakeSsh = join(dir, "ssh");
  await writeFile(fakeSsh, "#!/bin/sh\necho 'ssh: Could not resolve hostname nosuchhost.invalid: Name or service not known' >&2\nexit 255\n");
  await chmod(fakeSsh, 0o755);
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
