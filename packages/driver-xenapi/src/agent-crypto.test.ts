import { execFileSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import {
  AGENT_DH_BASE,
  AGENT_DH_PRIME,
  AgentKeyExchange,
  decryptAsAgent,
  encryptForAgent,
  evpBytesToKeyMd5,
  modPow,
} from "./agent-crypto.js";

function openssl(args: string[], input: string): string {
  return execFileSync("openssl", args, { input, encoding: "utf8" }).trim();
}

describe("the agent's key exchange", () => {
  it("modPow agrees with plain bigint arithmetic", () => {
    for (const [b, e, m] of [
      [5n, 0n, 7n],
      [5n, 13n, 97n],
      [123456789n, 987654321n, AGENT_DH_PRIME],
    ] as const) {
      let expected = 1n;
      for (let i = 0n; i < (e > 1000n ? 0n : e); i++) expected = (expected * b) % m;
      if (e <= 1000n) expect(modPow(b, e, m)).toBe(expected);
    }
    // Fermat: a^(p-1) = 1 mod p for the agent's prime.
    expect(modPow(AGENT_DH_BASE, AGENT_DH_PRIME - 1n, AGENT_DH_PRIME)).toBe(1n);
  });

  it("both sides derive the same shared secret", () => {
    const ours = new AgentKeyExchange();
    const agent = new AgentKeyExchange();
    expect(ours.sharedSecret(agent.publicValue)).toBe(agent.sharedSecret(ours.publicValue));
    expect(ours.publicValue).toMatch(/^[0-9]+$/);
  });

  it("refuses an agent public key that is not a number in range", () => {
    const ours = new AgentKeyExchange();
    expect(() => ours.sharedSecret("12abc")).toThrow();
    expect(() => ours.sharedSecret("1")).toThrow();
    expect(() => ours.sharedSecret((AGENT_DH_PRIME + 5n).toString())).toThrow();
  });
});

describe("the agent's cipher (OpenSSL's legacy MD5 derivation)", () => {
  it("derives key and IV as EVP_BytesToKey(MD5, no salt, 1 iteration) does", () => {
    const printed = openssl(["enc", "-aes-128-cbc", "-nosalt", "-md", "md5", "-pass", "pass:12345", "-P"], "");
    const key = /key\s*=\s*([0-9A-F]+)/i.exec(printed)?.[1];
    const iv = /iv\s*=\s*([0-9A-F]+)/i.exec(printed)?.[1];
    const ours = evpBytesToKeyMd5(Buffer.from("12345"), 16, 16);
    expect(ours.key.toString("hex").toUpperCase()).toBe(key);
    expect(ours.iv.toString("hex").toUpperCase()).toBe(iv);
  });

  it("encrypts exactly as `openssl enc -aes-128-cbc -a -A -nosalt -md md5` does", () => {
    const dh = new AgentKeyExchange();
    const agent = new AgentKeyExchange();
    const secret = dh.sharedSecret(agent.publicValue);
    for (const password of ["Vk-pass-1!\n", "a\n", "x".repeat(47) + "\n", "päss wörd ü\n"]) {
      const theirs = openssl(["enc", "-aes-128-cbc", "-a", "-A", "-nosalt", "-md", "md5", "-pass", `pass:${secret}`], password);
      expect(encryptForAgent(password, secret)).toBe(theirs);
      expect(decryptAsAgent(theirs, secret)).toBe(password);
    }
  });

  it("differs from what Nova's openssl call derives today (SHA-256 default): the bug this avoids", () => {
    const secret = "987654321987654321";
    const sha256 = openssl(["enc", "-aes-128-cbc", "-a", "-A", "-nosalt", "-pass", `pass:${secret}`], "pw\n");
    expect(encryptForAgent("pw\n", secret)).not.toBe(sha256);
    expect(() => decryptAsAgent(sha256, secret)).toThrow();
  });
});
