import { describe, expect, it } from "vitest";
import { InvalidInputError, PasswordSetFailedError } from "./errors.js";
import { JsonLogger, MemoryLogger, NullLogger, REDACTED, redact, type LogSink } from "./logger.js";
import { Secret } from "./secret.js";

const PASSWORD = "S3cr3t-Pa55w0rd!";

function sink(): LogSink & { text(): string; lines(): Record<string, unknown>[] } {
  const chunks: string[] = [];
  return {
    write: (c: string) => chunks.push(c),
    text: () => chunks.join(""),
    lines: () =>
      chunks
        .join("")
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

describe("redact", () => {
  it.each([
    ["a Secret", { value: new Secret(PASSWORD) }],
    ["a password key", { password: PASSWORD }],
    ["an adminPass key", { adminPass: PASSWORD }],
    ["a token key", { apiToken: PASSWORD }],
    ["a secret key", { clientSecret: PASSWORD }],
    ["a credential key", { credentials: { user: "u", pw: PASSWORD } }],
    ["an auth key", { Authorization: `Bearer ${PASSWORD}` }],
    ["a nested secret", { a: { b: [{ c: new Secret(PASSWORD) }] } }],
    ["a Secret in a Map", { m: new Map([["x", new Secret(PASSWORD)]]) }],
    ["a password in a Map key", { m: new Map([["password", PASSWORD]]) }],
    ["a Secret in a Set", { s: new Set([new Secret(PASSWORD)]) }],
    [
      "an error's password field in its cause",
      { error: new Error("outer", { cause: Object.assign(new Error("inner"), { password: PASSWORD }) }) },
    ],
    [
      "a typed error whose cause holds a Secret",
      {
        error: new PasswordSetFailedError("i-1", "agent failed", {
          cause: { secret: new Secret(PASSWORD), adminPassword: PASSWORD },
        }),
      },
    ],
    [
      "a plain-object cause with a password",
      { error: new InvalidInputError("f", "r", { cause: { password: PASSWORD } }) },
    ],
  ])("removes %s", (_label, value) => {
    const out = JSON.stringify(redact(value));
    expect(out).not.toContain(PASSWORD);
    expect(out).toContain(REDACTED);
  });

  it("serialises typed errors via toJSON and keeps a cause chain", () => {
    const err = new PasswordSetFailedError("i-1", "agent failed", { cause: new Error("socket closed") });
    expect(redact(err)).toEqual({
      name: "PasswordSetFailedError",
      code: "VIRTKIT_PASSWORD_SET_FAILED",
      message: err.message,
      instanceId: "i-1",
      reason: "agent failed",
      cause: { name: "Error", message: "socket closed" },
    });
  });

  it("makes odd values JSON-safe", () => {
    const cyclic: Record<string, unknown> = { a: 1 };
    cyclic.self = cyclic;
    const out = redact({
      big: 10n,
      nan: Number.NaN,
      fn: () => 1,
      date: new Date(0),
      bytes: new Uint8Array(4),
      sym: Symbol("s"),
      cyclic,
      undef: undefined,
    });
    expect(out).toEqual({
      big: "10",
      nan: "NaN",
      fn: "[Function]",
      date: "1970-01-01T00:00:00.000Z",
      bytes: "[4 bytes]",
      sym: "Symbol(s)",
      cyclic: { a: 1, self: "[Circular]" },
    });
    expect(() => JSON.stringify(out)).not.toThrow();
  });

  it("keeps the same object seen twice (not a cycle)", () => {
    const shared = { x: 1 };
    expect(redact({ a: shared, b: shared })).toEqual({ a: { x: 1 }, b: { x: 1 } });
  });

  it("truncates very deep values and long cause chains", () => {
    let deep: Record<string, unknown> = {};
    const root = deep;
    for (let i = 0; i < 20; i++) deep = deep.next = {} as Record<string, unknown>;
    expect(JSON.stringify(redact(root))).toContain("[Truncated]");
    let err = new Error("e0");
    for (let i = 1; i < 20; i++) err = new Error(`e${i}`, { cause: err });
    expect(JSON.stringify(redact(err))).toContain("[Truncated]");
  });
});

describe("JsonLogger", () => {
  it("writes one JSON line per record with time, level, msg and fields", () => {
    const out = sink();
    const log = new JsonLogger({ stream: out, level: "debug" });
    log.info("booted", { instance: "i-1", n: 2 });
    log.debug("detail");
    const [first, second] = out.lines();
    expect(first).toMatchObject({ level: "info", msg: "booted", instance: "i-1", n: 2 });
    expect(typeof first?.time).toBe("string");
    expect(second).toMatchObject({ level: "debug", msg: "detail" });
  });

  it("filters below its level (default info)", () => {
    const out = sink();
    const log = new JsonLogger({ stream: out });
    log.debug("hidden");
    log.info("shown");
    log.warn("shown");
    log.error("shown");
    expect(out.lines().map((l) => l.level)).toEqual(["info", "warn", "error"]);
    expect(log.isLevelEnabled("debug")).toBe(false);
  });

  it("never writes a password given as Secret or under a password key, in fields, children or errors", () => {
    const out = sink();
    const log = new JsonLogger({ stream: out, level: "debug", fields: { password: PASSWORD } });
    const child = log.child({ adminPassword: new Secret(PASSWORD), token: PASSWORD });
    child.info("set password", { password: PASSWORD, secret: new Secret(PASSWORD), nested: { pass: PASSWORD } });
    child.error("failed", { error: new Error("boom", { cause: { password: PASSWORD } }) });
    child.warn(`template ${new Secret(PASSWORD)}`);
    expect(out.text()).not.toContain(PASSWORD);
    expect(out.text()).toContain(REDACTED);
  });

  it("redacts API and private keys, cookies and sessions (a XAPI session logs in as the password does), under any of their usual names", () => {
    const out = sink();
    const log = new JsonLogger({ stream: out, level: "debug" });
    for (const key of ["apiKey", "api_key", "privateKey", "pwd", "cookie", "session", "session_id", "sessionId", "xapiSession"]) {
      log.info("event", { [key]: PASSWORD });
    }
    log.info("event", { note: `https://xen-1/vm_rrd?session_id=${PASSWORD}&uuid=u` });
    log.info("event", { sessionCount: 3, pwdDir: "/tmp" });
    expect(out.text()).not.toContain(PASSWORD);
    expect(out.text()).toContain('"sessionCount":3');
    expect(out.text()).toContain('"pwdDir":"/tmp"');
  });

  it("keeps its own keys over same-named fields", () => {
    const out = sink();
    new JsonLogger({ stream: out }).info("real", { msg: "fake", level: "error" });
    expect(out.lines()[0]).toMatchObject({ msg: "real", level: "info" });
  });
});

describe("MemoryLogger", () => {
  it("keeps redacted records, shared with children, and clears", () => {
    const log = new MemoryLogger();
    const child = log.child({ instance: "i-1" });
    child.warn("w", { password: PASSWORD });
    log.info("i");
    expect(log.records).toHaveLength(2);
    expect(log.records[0]).toMatchObject({ level: "warn", msg: "w", fields: { instance: "i-1", password: REDACTED } });
    expect(log.lines().join("\n")).not.toContain(PASSWORD);
    log.clear();
    expect(child.records).toHaveLength(0);
  });
});

describe("NullLogger", () => {
  it("accepts everything and returns itself as child", () => {
    const log = new NullLogger();
    log.info("x", { password: PASSWORD });
    expect(log.child({ a: 1 })).toBe(log);
  });
});

describe("URI credentials under any key", () => {
  it.each([
    ["a plain key", { target: `https://root:${PASSWORD}@xen-1/` }, "https://root:***@xen-1/"],
    ["a query secret", { url: `https://xen-1/api?session_token=${PASSWORD}&x=1` }, "https://xen-1/api?session_token=***&x=1"],
    ["inside a sentence", { note: `dial qemu+tcp://a:${PASSWORD}@h:16509/system, then retry.` }, "dial qemu+tcp://a:***@h:16509/system, then retry."],
    ["an array item", { hosts: [`xen://u:${PASSWORD}@a/`] }, ["xen://u:***@a/"]],
  ])("redacts %s", (_label, fields, expected) => {
    const out = redact(fields) as Record<string, unknown>;
    expect(Object.values(out)[0]).toEqual(expected);
    expect(JSON.stringify(out)).not.toContain(PASSWORD);
  });

  it("redacts an error message and the log message itself, and leaves URIs without credentials alone", () => {
    const log = new MemoryLogger();
    log.error(`cannot reach https://admin:${PASSWORD}@xen-1/`, {
      error: new Error(`connect https://admin:${PASSWORD}@xen-1/ refused`),
      plain: "qemu+ssh://root@host/system?keyfile=/k",
    });
    const [line] = log.lines();
    expect(line).not.toContain(PASSWORD);
    expect(line).toContain("https://admin:***@xen-1/");
    expect(line).toContain("qemu+ssh://root@host/system?keyfile=/k");
  });
});
