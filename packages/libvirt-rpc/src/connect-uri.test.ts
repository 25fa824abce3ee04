import { describe, expect, it } from "vitest";
import { dialerForUri, parseConnectUri } from "./connect-uri.js";
import { LibvirtUriError, maskUri } from "./errors.js";
import { SshDialer } from "./transport/ssh-dialer.js";
import type { TcpDialer } from "./transport/tcp-dialer.js";
import { TlsDialer } from "./transport/tls-dialer.js";
import { UnixDialer } from "./transport/unix-dialer.js";

describe("parseConnectUri", () => {
  it.each([
    ["test:///default", "unix", undefined, undefined, "test:///default"],
    ["qemu:///system", "unix", undefined, undefined, "qemu:///system"],
    ["qemu:///session", "unix", undefined, undefined, "qemu:///session"],
    ["qemu+unix:///system?socket=/tmp/s", "unix", undefined, undefined, "qemu:///system"],
    ["test+unix:///default?socket=/x/y", "unix", undefined, undefined, "test:///default"],
    ["qemu+tcp://host:1234/system", "tcp", "host", 1234, "qemu:///system"],
    ["test+tcp://127.0.0.1/default", "tcp", "127.0.0.1", undefined, "test:///default"],
    ["qemu+tls://host/system", "tls", "host", undefined, "qemu:///system"],
    ["qemu://host/system", "tls", "host", undefined, "qemu:///system"],
    ["qemu+ssh://user@host/system", "ssh", "host", undefined, "qemu:///system"],
    ["qemu+tcp://[::1]:16509/system?mode=legacy&foo=bar", "tcp", "::1", 16509, "qemu:///system?foo=bar"],
  ])("%s", (uri, transport, host, port, openName) => {
    const p = parseConnectUri(uri);
    expect(p.transport).toBe(transport);
    expect(p.host).toBe(host);
    expect(p.port).toBe(port);
    expect(p.openName).toBe(openName);
  });

  it("keeps the user and honours name=", () => {
    expect(parseConnectUri("qemu+ssh://root@h:2222/system").user).toBe("root");
    expect(parseConnectUri("qemu+tcp://h/system?name=qemu:///embed").openName).toBe("qemu:///embed");
  });

  it.each([
    "",
    "not a uri",
    "qemu+carrier-pigeon://h/system",
    "qemu+unix://host/system",
    "qemu+tcp:///system",
    "qemu+tcp://h:99999/system",
    "qemu+tcp://h:abc/system",
  ])("rejects %j with a typed error naming the URI", (uri) => {
    try {
      parseConnectUri(uri);
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(LibvirtUriError);
      expect((err as LibvirtUriError).uri).toBe(uri);
      expect((err as LibvirtUriError).code).toBe("LIBVIRT_INVALID_URI");
    }
  });

  it.each([
    "qemu+libssh2://root:SECRETpw@127.0.0.1:1/system",
    "qemu+tcp://admin:SECRETpw@h:abc/system",
    "qemu+tcp://h:99999/system?auth_pass=SECRETpw",
    "qemu+tcp://h/system?x=%zzSECRETpw",
  ])("never puts a password or query value of %j into the error", (uri) => {
    let err: unknown;
    try {
      parseConnectUri(uri);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(LibvirtUriError);
    expect(String((err as Error).message)).not.toContain("SECRET");
    expect((err as LibvirtUriError).uri).not.toContain("SECRET");
  });
});

describe("a password in the URI", () => {
  it("is refused, not passed on (ssh -l user:password would show it in ps), and the error shows none of it", () => {
    for (const uri of [
      "qemu+ssh://admin:S3cretPW@host/system",
      "qemu+ssh://admin:S3c@ret/PW@host/system",
      "qemu+tcp://admin:S3cret%40PW@host/system",
    ]) {
      let err: unknown;
      try {
        parseConnectUri(uri);
      } catch (e) {
        err = e;
      }
      expect(err, uri).toBeInstanceOf(LibvirtUriError);
      expect((err as Error).message).toMatch(/a password in the URI is never used/);
      expect((err as Error).message).not.toMatch(/S3c|PW|ret/);
    }
  });

  it("is masked whole, however many '@' or '/' it holds", () => {
    expect(maskUri("qemu+ssh://admin:p@ss/w@host/system?x=1")).toBe("qemu+ssh://admin:***@host/system?x=***");
    expect(maskUri("qemu+ssh://admin@host/system")).toBe("qemu+ssh://admin@host/system");
    expect(maskUri("qemu:///system")).toBe("qemu:///system");
    expect(maskUri("qemu+ssh://root:pa?ss@h/system")).toBe("qemu+ssh://root:***@h/system");
    expect(maskUri("qemu+ssh://root:pa#ss@h/system")).toBe("qemu+ssh://root:***@h/system");
    expect(maskUri("qemu+tcp://admin:1234@host/system")).toBe("qemu+tcp://admin:***@host/system");
    expect(maskUri("qemu+tcp://host:1234/system?x=a@b")).toBe("qemu+tcp://host:1234/system?x=***");
    expect(maskUri("qemu+tcp://[::1]:16509/system")).toBe("qemu+tcp://[::1]:16509/system");
    expect(maskUri("qemu+ssh://u:p@[::1]/system")).toBe("qemu+ssh://u:***@[::1]/system");
    for (const uri of ["qemu+ssh://root:S3?cr@h/system", "qemu+ssh://root:S3#cr@h/system"]) {
      let err: unknown;
      try {
        parseConnectUri(uri);
      } catch (e) {
        err = e;
      }
      expect((err as Error).message, uri).not.toContain("S3");
    }
  });
});

describe("dialerForUri", () => {
  it("maps transports to dialers", () => {
    const unix = dialerForUri(parseConnectUri("test:///default"), { socketPath: "/tmp/sock" });
    expect(unix).toBeInstanceOf(UnixDialer);
    expect((unix as UnixDialer).path).toBe("/tmp/sock");
    expect((dialerForUri(parseConnectUri("qemu+unix:///system?socket=/a")) as UnixDialer).path).toBe("/a");
    expect((dialerForUri(parseConnectUri("qemu:///system")) as UnixDialer).path).toBe("/run/libvirt/libvirt-sock");
    const tcp = dialerForUri(parseConnectUri("test+tcp://127.0.0.1/default")) as TcpDialer;
    expect([tcp.host, tcp.port]).toEqual(["127.0.0.1", 16509]);
    const tls = dialerForUri(parseConnectUri("qemu+tls://h/system?no_verify=1")) as TlsDialer;
    expect(tls).toBeInstanceOf(TlsDialer);
    expect(tls.port).toBe(16514);
    const ssh = dialerForUri(parseConnectUri("qemu+ssh://u@h:2222/system?keyfile=/k&no_verify=1")) as SshDialer;
    expect(ssh).toBeInstanceOf(SshDialer);
    const args = ssh.args();
    expect(args).toEqual(expect.arrayContaining(["-p", "2222", "-l", "u", "-i", "/k", "h"]));
    expect(args[args.length - 1]).toMatch(/virt-ssh-helper .*qemu:\/\/\/system/);
    expect(args[args.length - 1]).toContain("/run/libvirt/libvirt-sock");
  });
});
