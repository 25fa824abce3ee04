/**
 * The contract's inputs are `readonly` (an `Instance`, its flavor and image meta): a driver reads
 * them and keeps its own state elsewhere. The kit hands drivers frozen copies, so a driver that
 * writes into one (a default filled into the caller's image properties, a hostname set on the
 * instance) fails where it does it (a TypeError in strict code) instead of changing what the
 * caller (Nova's compute manager, a service's store) holds.
 */

/** Whether `v` is data the kit may copy and freeze: a plain object or an array. */
function plain(v: unknown): v is Record<string, unknown> | unknown[] {
  if (Array.isArray(v)) return true;
  if (typeof v !== "object" || v === null) return false;
  const proto = Object.getPrototypeOf(v) as unknown;
  return proto === Object.prototype || proto === null;
}

/** A deep copy of `value` with every plain object and array in it frozen; anything else is kept as it is (a Secret, a Date). */
export function frozenCopy<T>(value: T): T {
  if (!plain(value)) return value;
  const copy: Record<string, unknown> | unknown[] = Array.isArray(value) ? value.map((v) => frozenCopy(v)) : {};
  if (!Array.isArray(value)) {
    for (const [k, v] of Object.entries(value)) (copy as Record<string, unknown>)[k] = frozenCopy(v);
  }
  return Object.freeze(copy) as T;
}

/** `value` without its top-level fields that are undefined. */
export function withoutUndefined<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;
}

/**
 * What V8's TypeError says for a write into a frozen plain object or array (not a function's or a
 * string's read-only property, which no frozen input causes).
 */
const FROZEN_WRITE =
  /^Cannot assign to read only property '[^']*' of object '(#<Object>|\[object Array\])'$|^Cannot add property [^,]*, object is not extensible$|^Cannot delete property '[^']*' of (#<Object>|\[object Array\])$/;

/**
 * A note for a failure whose error (or one it wraps as its cause: a driver's error map may) is a
 * write into one of the kit's frozen inputs, else undefined.
 */
export function frozenInputNote(err: unknown): string | undefined {
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 8; e = e.cause, depth++) {
    if (e instanceof TypeError && FROZEN_WRITE.test(e.message)) {
      return "the driver wrote into an input the kit froze: the contract's inputs are readonly, a driver must not change what its caller holds";
    }
  }
  return undefined;
}
