import { describe, expect, it } from "vitest";
import { REDACTED, SecretScan } from "./secret-scan.js";

const PW = 'Vk-pw-"q u/o+te"!';
const b64 = (s: string) => Buffer.from(s, "utf8").toString("base64");

describe("SecretScan", () => {
  const scan = new SecretScan([PW]);

  it("finds a secret as written, JSON-escaped and URL-encoded", () => {
    expect(scan.found(`chpasswd root:${PW} failed`)).toBe(true);
    expect(scan.found(JSON.stringify({ password: PW }))).toBe(true);
    expect(scan.found(`https://h/?pw=${encodeURIComponent(PW)}`)).toBe(true);
    expect(scan.found(`pw=${encodeURIComponent(PW).replace(/%20/g, "+")}`)).toBe(true);
  });

  it("finds a secret inside base64 (standard and URL-safe, at any offset of the encoded text) and hex", () => {
    const agent = JSON.stringify({ execute: "guest-set-user-password", arguments: { username: "root", password: b64(PW) } });
    expect(scan.found(`agent command: ${agent}`)).toBe(true);
    expect(scan.found(`blob ${b64(`{"user":"root","password":${JSON.stringify(PW)}}`)} end`)).toBe(true);
    expect(scan.found(Buffer.from(`xx${PW}`).toString("base64url"))).toBe(true);
    // The encoded text glued to a word: the run starts one to three characters early.
    for (const glue of ["a", "ab", "abc"]) expect(scan.found(`${glue}${b64(`yyy${PW}`)}`)).toBe(true);
    expect(scan.found(Buffer.from(PW).toString("hex"))).toBe(true);
  });

  it("finds nothing in text that holds no secret, base64 and hex included", () => {
    expect(scan.found(`password set failed: ${b64("another password entirely")} ${Buffer.from("abcdefgh").toString("hex")}`)).toBe(false);
    expect(scan.found("InstanceNotFoundError: 6f1c2d9e-0b7a-4c55-9d0e-3a1f2b4c5d6e")).toBe(false);
    expect(new SecretScan([]).found(PW)).toBe(false);
    expect(new SecretScan([""]).found("anything")).toBe(false);
  });

  it("redacts data string by string: a base64 run after an escape (\\n) leaves JSON that still parses", () => {
    const result = { reason: `agent said:\n${b64(PW)}\t${b64(`x${PW}`)}`, nested: [{ why: `hex 0x${Buffer.from(PW).toString("hex")}` }] };
    expect(scan.found(JSON.stringify(result))).toBe(true);
    const out = scan.redactData(result);
    expect(scan.found(JSON.stringify(out))).toBe(false);
    expect(out.reason.startsWith("agent said:\n")).toBe(true);
  });

  it("redacts every form found, leaving the rest of the text", () => {
    const text = `raw ${PW}; json ${JSON.stringify(PW)}; b64 ${b64(PW)}; hex ${Buffer.from(PW).toString("hex")}`;
    const out = scan.redact(text);
    expect(scan.found(out)).toBe(false);
    expect(out).toContain(`raw ${REDACTED}`);
    expect(out).toContain(`b64 ${REDACTED}`);
    expect(out).toContain(`hex ${REDACTED}`);
    expect(scan.redact("nothing here")).toBe("nothing here");
  });
});
