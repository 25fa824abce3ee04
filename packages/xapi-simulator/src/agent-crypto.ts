// The guest agent's side of Nova's password exchange (Rackspace nova-agent password.py):
// Diffie-Hellman over a fixed 107-bit prime with g = 5, then AES-128-CBC whose key and IV come from
// OpenSSL's legacy EVP_BytesToKey with MD5, one round, no salt, over the decimal shared secret.
import { createDecipheriv, createHash, randomBytes } from "node:crypto";

/** The agent's Diffie-Hellman prime and base. */
export const DH_PRIME = 162259276829213363391578010288127n;
export const DH_BASE = 5n;

/** base^exp mod m. */
export function modPow(base: bigint, exp: bigint, m: bigint): bigint {
  let result = 1n;
  let b = base % m;
  let e = exp;
  while (e > 0n) {
    if (e & 1n) result = (result * b) % m;
    e >>= 1n;
    b = (b * b) % m;
  }
  return result;
}

/** A fresh private exponent (128 random bits, as the agent draws it). */
export function dhPrivate(): bigint {
  return BigInt(`0x${randomBytes(16).toString("hex")}`);
}

/** key = MD5(pass), iv = MD5(key || pass): EVP_BytesToKey(MD5, no salt, 1 round) for AES-128. */
export function deriveKeyIv(passphrase: string): { key: Buffer; iv: Buffer } {
  const pass = Buffer.from(passphrase, "utf8");
  const key = createHash("md5").update(pass).digest();
  const iv = createHash("md5").update(key).update(pass).digest();
  return { key, iv };
}

/** Decrypt base64 AES-128-CBC text; throws on a wrong key (bad PKCS#7 padding) or bad input. */
export function decryptPassword(encBase64: string, sharedSecret: string): string {
  const data = Buffer.from(encBase64, "base64");
  if (data.length === 0 || data.length % 16 !== 0) throw new Error("Invalid password data received");
  const { key, iv } = deriveKeyIv(sharedSecret);
  const decipher = createDecipheriv("aes-128-cbc", key, iv);
  try {
    return Buffer.concat([decipher.update(data), decipher.final()]).toString("utf8");
  } catch {
    throw new Error("Invalid password data received");
  }
}
