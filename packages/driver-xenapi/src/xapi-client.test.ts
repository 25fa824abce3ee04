import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import http from "node:http";
import https from "node:https";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { inspect } from "node:util";
import { MemoryLogger, Secret, redact } from "@virtkit/core";
import { startXapiSimulator } from "@virtkit/xapi-simulator";
import { afterEach, describe, expect, it } from "vitest";
import { startMiniXapi, type MiniXapi } from "./testing/mini-xapi.js";
import { LOGIN_VERSION, XapiClient, parseRrdLastValues } from "./xapi-client.js";
import { XapiError, maskXapiParams } from "./xapi-error.js";

const PASSWORD = "secret-pw";
const open: { close(): Promise<unknown> }[] = [];
afterEach(async () => {
  for (const o of open.splice(0).reverse()) await o.close();
});

async function mini(options: Parameters<typeof startMiniXapi>[0] = {}): Promise<MiniXapi> {
  const m = await startMiniXapi(options);
  open.push(m);
  return m;
}

function client(url: string, extra: Partial<ConstructorParameters<typeof XapiClient>[0]> = {}): XapiClient {
  const c = new XapiClient({ url, username: "root", password: new Secret(PASSWORD), timeoutMs: 5_000, ...extra });
  open.push(c);
  return c;
}

describe("XapiClient over JSON-RPC", () => {
  it("logs in with (user, password, version, originator) and puts the session first in every call", async () => {
    const m = await mini();
    m.handlers.set("VM.get_record", ([, ref]) => ({ uuid: "u-1", name_label: `vm ${String(ref)}` }));
    const c = client(m.url);
    const rec = await c.call<Record<string, string>>("VM.get_record", ["OpaqueRef:vm-1"]);
    expect(rec.name_label).toBe("vm OpaqueRef:vm-1");
    expect(c.protocol).toBe("json-rpc");
    expect(m.calls[0]).toEqual({
      method: "session.login_with_password",
      params: ["root", PASSWORD, LOGIN_VERSION, "virtkit"],
      protocol: "json",
    });
    expect(m.calls[1]!.params[0]).toMatch(/^OpaqueRef:session-/);
    expect(m.calls[1]!.params[1]).toBe("OpaqueRef:vm-1");
  });

  it("logs in once for many concurrent calls", async () => {
    const m = await mini();
    m.handlers.set("pool.get_all", () => ["OpaqueRef:pool"]);
    const c = client(m.url);
    await Promise.all(Array.from({ length: 20 }, () => c.call("pool.get_all")));
    expect(m.calls.filter((x) => x.method === "session.login_with_password")).toHaveLength(1);
  });

  it("logs in again once on SESSION_INVALID and repeats the call", async () => {
    const m = await mini();
    m.handlers.set("host.get_all", () => ["OpaqueRef:h"]);
    const c = client(m.url);
    await c.call("host.get_all");
    m.dropSessions();
    await expect(c.call("host.get_all")).resolves.toEqual(["OpaqueRef:h"]);
    expect(m.calls.filter((x) => x.method === "session.login_with_password")).toHaveLength(2);
  });

  it("gives up after one re-login and masks the session ref in the error", async () => {
    const m = await mini();
    // A host that keeps refusing the session it just handed out.
    m.handlers.set("host.get_all", ([session]) => {
      throw ["SESSION_INVALID", String(session)];
    });
    const c = client(m.url);
    const err = await c.call("host.get_all").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(XapiError);
    expect((err as XapiError).xapiCode).toBe("SESSION_INVALID");
    expect((err as XapiError).xapiParams).toEqual(["***"]);
    expect(String((err as Error).message)).not.toMatch(/OpaqueRef:session/);
    expect(m.calls.filter((x) => x.method === "session.login_with_password")).toHaveLength(2);
  });

  it("follows HOST_IS_SLAVE to the pool master", async () => {
    const master = await mini();
    master.handlers.set("pool.get_all", () => ["OpaqueRef:pool"]);
    const slave = await mini({ slaveOf: master.address });
    const c = client(slave.url);
    await expect(c.call("pool.get_all")).resolves.toEqual(["OpaqueRef:pool"]);
    expect(c.masterUrl).toBe(master.url);
    expect(slave.calls.map((x) => x.method)).toEqual(["session.login_with_password"]);
  });

  it("keeps XAPI's code and parameters on failures", async () => {
    const m = await mini();
    m.handlers.set("VM.pause", () => {
      throw ["VM_BAD_POWER_STATE", "OpaqueRef:vm", "running", "halted"];
    });
    const err = (await client(m.url).call("VM.pause", ["OpaqueRef:vm"]).catch((e: unknown) => e)) as XapiError;
    expect(err.xapiCode).toBe("VM_BAD_POWER_STATE");
    expect(err.xapiParams).toEqual(["OpaqueRef:vm", "running", "halted"]);
  });

  it("waits for Async tasks through event.from, without polling the task", async () => {
    const m = await mini();
    m.handlers.set("Async.VM.clone", () => m.task(30, { result: "<value>OpaqueRef:new-vm</value>" }));
    m.handlers.set("Async.VM.start", () => m.task(10, { error: ["VM_BAD_POWER_STATE", "OpaqueRef:x", "halted", "running"] }));
    const c = client(m.url);
    await expect(c.callAsync("VM.clone", ["OpaqueRef:tpl", "n"])).resolves.toBe("OpaqueRef:new-vm");
    const err = (await c.callAsync("VM.start", ["OpaqueRef:x", false, false]).catch((e: unknown) => e)) as XapiError;
    expect(err.xapiCode).toBe("VM_BAD_POWER_STATE");
    expect(m.calls.some((x) => x.method === "task.get_record" || x.method === "task.get_status")).toBe(false);
  });

  it("settles many concurrent tasks from one event stream", async () => {
    const m = await mini();
    let n = 0;
    m.handlers.set("Async.VM.clone", () => m.task(5 + (n++ % 7), { result: `<value>OpaqueRef:vm-${n}</value>` }));
    const c = client(m.url);
    const results = await Promise.all(Array.from({ length: 30 }, () => c.callAsync<string>("VM.clone", ["t", "n"])));
    expect(new Set(results).size).toBe(30);
  });

  it("destroys finished tasks together, later, and all of them before it logs out", async () => {
    const m = await mini();
    let n = 0;
    m.handlers.set("Async.VM.clone", () => m.task(5, { result: `<value>OpaqueRef:vm-${n++}</value>` }));
    const c = client(m.url);
    for (let i = 0; i < 3; i++) await c.callAsync("VM.clone", ["t", "n"]);
    // Not one by one as each task ends: each destroy would wake every event.from on tasks.
    expect(m.calls.filter((x) => x.method === "task.destroy")).toHaveLength(0);
    await c.close();
    const order = m.calls.map((x) => x.method);
    expect(order.filter((x) => x === "task.destroy")).toHaveLength(3);
    expect(order.lastIndexOf("task.destroy")).toBeLessThan(order.indexOf("session.logout"));
  });

  it("bounds every call by timeoutMs and by the caller's signal", async () => {
    const m = await mini();
    m.handlers.set("VM.slow", () => new Promise((r) => setTimeout(() => r("late"), 2_000)));
    const c = client(m.url);
    await c.login();
    const t0 = performance.now();
    await expect(c.call("VM.slow", [], { timeoutMs: 100 })).rejects.toMatchObject({ code: "VIRTKIT_OPERATION_TIMEOUT" });
    expect(performance.now() - t0).toBeLessThan(1_000);
    const ac = new AbortController();
    ac.abort();
    await expect(c.call("VM.slow", [], { signal: ac.signal })).rejects.toMatchObject({ code: "VIRTKIT_OPERATION_ABORTED" });
  });

  it("cancels the task of an Async call that hits its deadline", async () => {
    const m = await mini();
    m.handlers.set("Async.VM.clean_shutdown", () => m.task(60_000, { result: "" }));
    const c = client(m.url);
    await expect(c.callAsync("VM.clean_shutdown", ["OpaqueRef:vm"], { timeoutMs: 100 })).rejects.toMatchObject({
      code: "VIRTKIT_OPERATION_TIMEOUT",
    });
    // The cancel goes out once the Async request's reply (the task) is in, which under load can
    // come after the deadline: asked for until it shows, up to 5 s.
    for (let i = 0; i < 100 && !m.calls.some((x) => x.method === "task.cancel"); i++) {
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(m.calls.some((x) => x.method === "task.cancel")).toBe(true);
  });

  it("reports an unreachable host as HypervisorUnavailableError", async () => {
    const m = await mini();
    const url = m.url;
    await m.close();
    open.pop();
    await expect(client(url).call("pool.get_all")).rejects.toMatchObject({ code: "VIRTKIT_HYPERVISOR_UNAVAILABLE" });
  });

  it("never lets the password or a session ref reach a log line or an error", async () => {
    const m = await mini();
    m.handlers.set("VM.boom", () => {
      throw ["INTERNAL_ERROR", `while handling session_id=${String(m.calls[m.calls.length - 1]!.params[0])}`];
    });
    const logger = new MemoryLogger();
    const c = client(m.url, { logger });
    await c.login();
    m.dropSessions();
    const err = await c.call("VM.boom").catch((e: unknown) => e);
    const sessions = m.calls.filter((x) => x.method !== "session.login_with_password").map((x) => String(x.params[0]));
    const everything = [JSON.stringify(redact(err)), String((err as Error).message), ...logger.lines()].join("\n");
    expect(everything).not.toContain(PASSWORD);
    for (const s of sessions) expect(everything).not.toContain(s);
    expect(logger.lines().some((l) => l.includes("logging in again"))).toBe(true);
  });
});

describe("XapiClient over XML-RPC", () => {
  it("falls back to XML-RPC when the host has no /jsonrpc, with the same semantics", async () => {
    const m = await mini({ jsonRpc: false });
    m.handlers.set("VM.get_record", () => ({ memory_static_max: "67108864", is_a_template: false, VBDs: ["OpaqueRef:a"] }));
    m.handlers.set("Async.VM.clone", () => m.task(10, { result: "<value>OpaqueRef:clone</value>" }));
    const c = client(m.url);
    const rec = await c.call<Record<string, unknown>>("VM.get_record", ["OpaqueRef:vm"]);
    expect(c.protocol).toBe("xml-rpc");
    expect(rec).toEqual({ memory_static_max: "67108864", is_a_template: false, VBDs: ["OpaqueRef:a"] });
    await expect(c.callAsync("VM.clone", ["t", "n"])).resolves.toBe("OpaqueRef:clone");
    m.dropSessions();
    await expect(c.call("VM.get_record", ["OpaqueRef:vm"])).resolves.toBeTruthy();
    // int64 travels as a string in XML-RPC
    m.handlers.set("VM.set_memory", ([, , bytes]) => typeof bytes);
    await expect(c.call("VM.set_memory", ["OpaqueRef:vm", 1024])).resolves.toBe("string");
  });
});

describe("XapiClient over HTTPS", () => {
  it("verifies the certificate unless told `insecure`", async () => {
    const dir = mkdtempSync(join(tmpdir(), "xapi-tls-"));
    try {
      execFileSync("openssl", [
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
        "-keyout", join(dir, "key.pem"), "-out", join(dir, "cert.pem"),
      ], { stdio: "ignore" });
      const m = await mini();
      const target = new URL(m.url);
      // A TLS front for the mini endpoint.
      const server = https.createServer(
        { key: readFileSync(join(dir, "key.pem")), cert: readFileSync(join(dir, "cert.pem")) },
        (req, res) => {
          const chunks: Buffer[] = [];
          req.on("data", (c: Buffer) => chunks.push(c));
          req.on("end", async () => {
            const r = await fetch(new URL(req.url ?? "/", target), { method: req.method, body: Buffer.concat(chunks), headers: { "content-type": String(req.headers["content-type"]) } });
            res.writeHead(r.status, { "content-type": r.headers.get("content-type") ?? "" }).end(Buffer.from(await r.arrayBuffer()));
          });
        },
      );
      await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
      open.push({ close: () => new Promise((r) => { server.closeAllConnections(); server.close(r); }) });
      const url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
      m.handlers.set("pool.get_all", () => ["OpaqueRef:pool"]);
      await expect(client(url).call("pool.get_all")).rejects.toMatchObject({ code: "VIRTKIT_HYPERVISOR_UNAVAILABLE" });
      await expect(client(url, { insecure: true }).call("pool.get_all")).resolves.toEqual(["OpaqueRef:pool"]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 30_000);
});

describe("parseRrdLastValues", () => {
  it("reads last_ds of every data source of an rrdtool XML dump, not the archives", () => {
    const xml =
      '<?xml version="1.0"?><rrd><version>0003</version><step>5</step><lastupdate>1700000000</lastupdate>' +
      "<ds><name>cpu0</name><type>DERIVE</type><minimal_heartbeat>300.0000</minimal_heartbeat><min>0.0</min><max>1.0000</max>" +
      "<last_ds>12.5</last_ds><value>0.1</value><unknown_sec>0</unknown_sec></ds>" +
      "<ds><name> cpu1 </name><type>DERIVE</type><last_ds> 7.25 </last_ds></ds>" +
      "<ds><name>memory</name><type>GAUGE</type><last_ds>NaN</last_ds></ds>" +
      "<rra><cf>AVERAGE</cf><cdp_prep><ds><primary_value>0.0</primary_value><value>9</value></ds></cdp_prep></rra></rrd>";
    expect([...parseRrdLastValues(xml)]).toEqual([
      ["cpu0", 12.5],
      ["cpu1", 7.25],
    ]);
    expect(() => parseRrdLastValues("<html>login</html>")).toThrow(/not an RRD/);
  });
});

describe("a link that drops after the host ran the call", () => {
  it("sends a read again, but never a call that must not run twice", async () => {
    const sim = await startXapiSimulator();
    const c = new XapiClient({ url: sim.url, username: sim.username, password: new Secret(sim.password), timeoutMs: 5_000 });
    try {
      const [tpl] = Object.keys(await c.call<Record<string, unknown>>("VM.get_all_records_where", ['field "is_a_template" = "true"']));
      // A read whose reply is lost on a reused socket is asked again and answers.
      sim.faults.dropConnectionOnNext("VM.get_name_label");
      await expect(c.call("VM.get_name_label", [tpl!])).resolves.toEqual(expect.any(String));
      // A clone whose reply is lost: the host made one clone; the client does not make a second.
      const before = (await c.call<string[]>("VM.get_all")).length;
      sim.faults.dropConnectionOnNext("VM.clone");
      await expect(c.call("VM.clone", [tpl!, "once"])).rejects.toMatchObject({ code: "VIRTKIT_HYPERVISOR_UNAVAILABLE" });
      expect((await c.call<string[]>("VM.get_all")).length).toBe(before + 1);
    } finally {
      await c.close();
      await sim.close();
    }
  });
});

describe("vmRrdLastValues", () => {
  it("follows the redirect to the host running the VM with the session, answers undefined on 404", async () => {
    const seen: string[] = [];
    const server = http.createServer((req, res) => {
      const url = new URL(req.url ?? "/", "http://x");
      seen.push(`${req.method} ${url.pathname} session=${url.searchParams.get("session_id")}`);
      if (url.pathname === "/jsonrpc") {
        req.resume();
        req.on("end", () => res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ jsonrpc: "2.0", result: "OpaqueRef:s1", id: 1 })));
        return;
      }
      if (url.pathname === "/vm_rrd" && url.searchParams.get("uuid") === "gone") return void res.writeHead(404).end();
      if (url.pathname === "/vm_rrd") return void res.writeHead(302, { location: `/member/vm_rrd?uuid=${url.searchParams.get("uuid")}` }).end();
      res.writeHead(200, { "content-type": "text/xml" }).end("<rrd><ds><name>cpu0</name><last_ds>3.5</last_ds></ds></rrd>");
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    open.push({ close: () => new Promise((r) => { server.closeAllConnections(); server.close(r); }) });
    const c = client(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    expect([...((await c.vmRrdLastValues("vm-1")) ?? [])]).toEqual([["cpu0", 3.5]]);
    expect(seen.slice(-2)).toEqual(["GET /vm_rrd session=OpaqueRef:s1", "GET /member/vm_rrd session=OpaqueRef:s1"]);
    expect(await c.vmRrdLastValues("gone")).toBeUndefined();
  });

  it("does not follow a redirect that would carry the session in clear text to another machine", async () => {
    let offHost = 0;
    const server = http.createServer((req, res) => {
      const url = new URL(req.url ?? "/", "http://x");
      if (url.pathname === "/jsonrpc") {
        req.resume();
        req.on("end", () => res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ jsonrpc: "2.0", result: "OpaqueRef:s1", id: 1 })));
        return;
      }
      offHost++;
      res.writeHead(302, { location: `http://192.0.2.2:9/vm_rrd?session_id=${url.searchParams.get("session_id")}&uuid=vm-1` }).end();
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    open.push({ close: () => new Promise((r) => { server.closeAllConnections(); server.close(r); }) });
    const c = client(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, { timeoutMs: 2_000 });
    const err = await c.vmRrdLastValues("vm-1").catch((e: unknown) => e);
    expect(String(err)).toMatch(/in clear/);
    expect(String(err)).not.toContain("OpaqueRef:s1");
    expect(offHost).toBe(1);
  });
});

describe("a broken or hostile host", () => {
  async function serve(handler: http.RequestListener): Promise<string> {
    const server = http.createServer(handler);
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    open.push({ close: () => new Promise((r) => { server.closeAllConnections(); server.close(r); }) });
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }

  it("a login failure that echoes the password shows it masked", async () => {
    const url = await serve((req, res) => {
      req.resume();
      req.on("end", () =>
        res
          .writeHead(200, { "content-type": "application/json" })
          .end(JSON.stringify({ jsonrpc: "2.0", error: { code: 1, message: "SESSION_AUTHENTICATION_FAILED", data: ["root", `Authentication failure for password ${PASSWORD}`] }, id: 1 })),
      );
    });
    const err = (await client(url).call("VM.get_all", []).catch((e: unknown) => e)) as XapiError;
    expect(err).toBeInstanceOf(XapiError);
    expect(err.message).toMatch(/SESSION_AUTHENTICATION_FAILED \[root, Authentication failure for password \*\*\*\]/);
    expect(JSON.stringify(err) + String(err) + err.xapiParams.join()).not.toContain(PASSWORD);
  });

  it("an HTTP failure echoing the password shows no part of it: masked before the body is cut or its odd characters blanked", async () => {
    const secret = "Pässwörd-Ünïcode-99";
    for (const body of [`${"x".repeat(195)}${secret}`, `bad password: ${secret}`]) {
      const url = await serve((req, res) => {
        req.resume();
        req.on("end", () => res.writeHead(500, { "content-type": "text/plain; charset=utf-8" }).end(body));
      });
      const c = new XapiClient({ url, username: "root", password: new Secret(secret), timeoutMs: 2_000 });
      open.push(c);
      const err = await c.call("VM.get_all", []).catch((e: unknown) => e);
      const text = `${inspect(err, { depth: 8 })} ${JSON.stringify(err)}`;
      expect(text).not.toContain(secret.slice(0, 4));
      expect(text).not.toContain("P ssw rd");
      expect(text).not.toContain("code-99");
    }
  });

  it("a client timeout too long for a timer (1e12 ms) still runs Async calls", async () => {
    const sim = await startXapiSimulator();
    const c = new XapiClient({ url: sim.url, username: sim.username, password: new Secret(sim.password), timeoutMs: 1e12 });
    try {
      const [vm] = Object.keys(await c.call<Record<string, unknown>>("VM.get_all_records_where", ['field "is_a_template" = "true"']));
      expect(vm).toBeDefined();
      await expect(c.callAsync("VM.clone", [vm!, "t"])).resolves.toMatch(/^OpaqueRef:/);
    } finally {
      await c.close();
      await sim.close();
    }
  });

  it("a HOST_IS_SLAVE naming a master off this machine over http:// is refused: the password is not sent there", async () => {
    let posts = 0;
    const url = await serve((req, res) => {
      posts++;
      req.resume();
      req.on("end", () =>
        res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ jsonrpc: "2.0", error: ["HOST_IS_SLAVE", "192.0.2.2:18999"], id: 1 })),
      );
    });
    const t0 = Date.now();
    const err = (await client(url).call("VM.get_all", []).catch((e: unknown) => e)) as Error;
    expect(err.message).toMatch(/redirected to its master 192\.0\.2\.2:18999, but http:\/\/ to 192\.0\.2\.2:18999 would send the XAPI password across the network in clear/);
    expect(err.message).not.toContain(PASSWORD);
    // Refused before any connection to the named master (a TEST-NET address: a try would hang to the deadline).
    expect(Date.now() - t0).toBeLessThan(2_000);
    expect(posts).toBe(1);
  });

  it("a url over http:// to another machine is refused unless allowHttp says the network is trusted", () => {
    expect(() => client("http://192.0.2.2:80")).toThrow(/would send the XAPI password across the network in clear/);
    expect(() => client("http://192.0.2.2:80", { allowHttp: true })).not.toThrow();
    expect(() => client("http://localhost:80")).not.toThrow();
  });

  it("a password a hostile host echoes as the error code, or as an XML-RPC type, is masked", async () => {
    const json = await serve((req, res) => {
      req.resume();
      req.on("end", () => res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ jsonrpc: "2.0", error: [PASSWORD, "x"], id: 1 })));
    });
    const e1 = (await client(json).call("VM.get_all", []).catch((e: unknown) => e)) as XapiError;
    expect(`${e1.message} ${e1.xapiCode} ${JSON.stringify(e1)}`).not.toContain(PASSWORD);
    const xml = await serve((req, res) => {
      req.resume();
      req.on("end", () =>
        res
          .writeHead(200, { "content-type": "text/xml" })
          .end(`<?xml version="1.0"?><methodResponse><params><param><value><${PASSWORD}>1</${PASSWORD}></value></param></params></methodResponse>`),
      );
    });
    const e2 = (await client(xml, { protocol: "xml-rpc" }).call("VM.get_all", []).catch((e: unknown) => e)) as Error;
    expect(e2).toBeInstanceOf(Error);
    const chain: string[] = [];
    for (let e: unknown = e2; e instanceof Error; e = e.cause) chain.push(`${e.name}: ${e.message}`);
    expect(chain.join(" | ")).toMatch(/unknown XML-RPC type <\*\*\*>/);
    expect(chain.join(" | ")).not.toContain(PASSWORD);
  });

  it("masks a secret's JSON-escaped form without leaving an escape behind, and a very short secret by the whole parameter", () => {
    expect(maskXapiParams("X", ['{"tried":"pa\\"ss"}'], ['pa"ss'])).toEqual(['{"tried":"***"}']);
    // One letter masked wherever it occurs would say which letter it is ("h***lted").
    expect(maskXapiParams("X", ["VM is halted", "running"], ["a"])).toEqual(["***", "running"]);
  });

  it("a password a host echoes in a failed task's error_info is masked", async () => {
    const m = await mini();
    m.handlers.set("Async.VM.start", () => m.task(10, { error: ["INTERNAL_ERROR", `login as root with ${PASSWORD} refused`] }));
    const err = (await client(m.url).callAsync("VM.start", ["OpaqueRef:x", false, false]).catch((e: unknown) => e)) as XapiError;
    expect(err).toBeInstanceOf(XapiError);
    expect(err.xapiParams).toEqual(["login as root with *** refused"]);
    expect(`${err.message} ${JSON.stringify(err)}`).not.toContain(PASSWORD);
  });

  it("a password echoed inside a parameter that is no string is masked in its JSON form too", async () => {
    const tricky = 'pa"ss\\word';
    const url = await serve((req, res) => {
      req.resume();
      req.on("end", () =>
        res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ jsonrpc: "2.0", error: ["INTERNAL_ERROR", { tried: tricky }], id: 1 })),
      );
    });
    const c = new XapiClient({ url, username: "root", password: new Secret(tricky), timeoutMs: 5_000 });
    open.push(c);
    const err = (await c.call("VM.get_all", []).catch((e: unknown) => e)) as XapiError;
    expect(err.xapiParams).toEqual(['{"tried":"***"}']);
    expect(err.message).not.toContain(JSON.stringify(tricky).slice(1, -1));
  });

  it("a HOST_IS_SLAVE naming something that is no host address is refused, not 'followed' to the member itself", async () => {
    for (const master of ["fe80::1%eth0", "host:99999", "a/b", `user@${PASSWORD}`]) {
      let posts = 0;
      const url = await serve((req, res) => {
        posts++;
        req.resume();
        req.on("end", () =>
          res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ jsonrpc: "2.0", error: ["HOST_IS_SLAVE", master], id: 1 })),
        );
      });
      const err = (await client(url).call("VM.get_all", []).catch((e: unknown) => e)) as Error;
      expect(err.message, master).toMatch(/named its master by something that is no host address \(\d+ characters\)/);
      expect(err.message).not.toContain(master);
      expect(posts).toBe(1);
    }
  });

  it("a HOST_IS_SLAVE naming a bare IPv6 master is that address on the url's port, not a port cut from the address", async () => {
    const url = await serve((req, res) => {
      req.resume();
      req.on("end", () =>
        res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ jsonrpc: "2.0", error: ["HOST_IS_SLAVE", "2001:db8::2"], id: 1 })),
      );
    });
    const port = new URL(url).port;
    const err = (await client(url).call("VM.get_all", []).catch((e: unknown) => e)) as Error;
    expect(err.message).toContain(`redirected to its master [2001:db8::2]:${port}, but`);
  });

  it("JSON that is not a JSON-RPC reply (null) is a transport error, not a TypeError", async () => {
    const url = await serve((req, res) => {
      req.resume();
      req.on("end", () => res.writeHead(200, { "content-type": "application/json" }).end("null"));
    });
    const err = (await client(url, { protocol: "json-rpc" }).call("VM.get_all", []).catch((e: unknown) => e)) as Error;
    expect(err.name).toBe("XapiTransportError");
    expect(err.message).toMatch(/JSON that is not a JSON-RPC reply/);
  });

  it("a reply larger than the cap is a transport error, read no further", async () => {
    const url = await serve((req, res) => {
      req.resume();
      res.writeHead(200, { "content-type": "application/json" });
      // Without end: 64 KiB pieces until the client gives up.
      const piece = Buffer.alloc(64 * 1024, 0x5b);
      const more = (): void => {
        while (res.write(piece)) if (res.destroyed) return;
        res.once("drain", more);
      };
      more();
      res.on("close", () => res.removeAllListeners("drain"));
    });
    const { HttpTransport } = await import("./http-transport.js");
    const transport = new HttpTransport({ maxReplyBytes: 1024 * 1024 });
    const err = await transport
      .request("POST", new URL("/jsonrpc", url), "{}", { "content-type": "application/json" }, AbortSignal.timeout(10_000))
      .catch((e: unknown) => e);
    expect(String(err)).toMatch(/larger than 1048576 bytes/);
    // The RPC connections (the calls' path) hold the same cap.
    const rpcErr = await transport
      .rpc(new URL("/jsonrpc", url), "{}", { "content-type": "application/json" }, AbortSignal.timeout(10_000))
      .catch((e: unknown) => e);
    expect(String(rpcErr)).toMatch(/larger than 1048576 bytes/);
    transport.close();
  });
});
