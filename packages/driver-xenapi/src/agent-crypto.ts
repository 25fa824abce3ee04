/**
 * The guest agent's key exchange and cipher, as Nova meant them and the agent decrypts them:
 * Diffie-Hellman over the agent's fixed prime with base 5, then AES-128-CBC with key and IV from
 * OpenSSL's legacy EVP_BytesToKey(MD5, no salt, one iteration) of the shared secret's decimal
 * string. Nova shelled out to `openssl enc` without `-md md5`, which OpenSSL >= 1.1 derives with
 * SHA-256, so its ciphertext no longer matched what the agent expects; here MD5 is explicit.
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes } from "node:crypto";

/** The agent's prime (nova-agent's and Nova's SimpleDH default). */
export const AGENT_DH_PRIME = 162259276829213363391578010288127n;
/** The agent's base. */
export const AGENT_DH_BASE = 5n;

/** `base ** exp % mod` by square-and-multiply on bigints. */
export function modPow(base: bigint, exp: bigint, mod: bigint): bigint {
  if (mod === 1n) return 0n;
  let result = 1n;
  let b = ((base % mod) + mod) % mod;
  let e = exp;
  while (e > 0n) {
    if (e & 1n) result = (result * b) % mod;
    e >>= 1n;
    b = (b * b) % mod;
  }
  return result;
}

/** One side of the exchange: a fresh private exponent and its public value. */
export class AgentKeyExchange {
  readonly #private: bigint;
  readonly #prime: bigint;
  /** g^a mod p, as the decimal string `key_init` sends. */
  readonly publicValue: string;

  constructor(prime: bigint = AGENT_DH_PRIME, base: bigint = AGENT_DH_BASE, privateExponent?: bigint) {
    this.#prime = prime;
    // 2 .. p-2, from 16 random bytes (more than the prime's 108 bits).
    this.#private = privateExponent ?? (BigInt(`0x${randomBytes(16).toString("hex")}`) % (prime - 3n)) + 2n;
    this.publicValue = modPow(base, this.#private, prime).toString(10);
  }

  /** The shared secret from the agent's public value (decimal), as the decimal string both sides use as passphrase. */
  sharedSecret(agentPublic: string): string {
    if (!/^[0-9]{1,200}$/.test(agentPublic)) throw new Error("the agent's public key is not a decimal number");
    const other = BigInt(agentPublic);
    if (other < 2n || other >= this.#prime - 1n) throw new Error("the agent's public key is out of range");
    return modPow(other, this.#private, this.#prime).toString(10);
  }
}

/** OpenSSL's EVP_BytesToKey with MD5, one iteration, no salt: D1 = MD5(pass), D2 = MD5(D1 || pass), ... */
export function evpBytesToKeyMd5(passphrase: Buffer, keyLength: number, ivLength: number): { key: Buffer; iv: Buffer } {
  const blocks: Buffer[] = [];
  let prev = Buffer.alloc(0);
  let total = 0;
  while (total < keyLength + ivLength) {
    prev = createHash("md5").update(prev).update(passphrase).digest();
    blocks.push(prev);
    total += prev.length;
  }
  const all = Buffer.concat(blocks);
  return { key: all.subarray(0, keyLength), iv: all.subarray(keyLength, keyLength + ivLength) };
}

/** `openssl enc -aes-128-cbc -a -A -nosalt -md md5 -pass pass:<secret>` of `plaintext`, in node:crypto. */
export function encryptForAgent(plaintext: string, sharedSecret: string): string {
  const { key, iv } = evpBytesToKeyMd5(Buffer.from(sharedSecret, "utf8"), 16, 16);
  const cipher = createCipheriv("aes-128-cbc", key, iv);
  return Buffer.concat([cipher.update(plaintext, "utf8"), cipher.final()]).toString("base64");
}

/** The agent's side: decrypts what {@link encryptForAgent} produced (for tests). */
export function decryptAsAgent(ciphertextBase64: string, sharedSecret: string): string {
  const { key, iv } = evpBytesToKeyMd5(Buffer.from(sharedSecret, "utf8"), 16, 16);
  const decipher = createDecipheriv("aes-128-cbc", key, iv);
  return Buffer.concat([decipher.update(Buffer.from(ciphertextBase64, "base64")), decipher.final()]).toString("utf8");
}
