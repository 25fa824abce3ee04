/**
 * Nova hands `migrate_data` from host to host over RPC, as JSON: what one migration step returns
 * reaches the next step only as what survives JSON. The kit checks that it survives unchanged and
 * then hands the next step the copy, so a driver leaning on object identity, class instances or
 * values JSON drops fails here rather than in a deployment.
 */
import type { MigrateData } from "@virtkit/core";
import { fail } from "../assertions.js";

/** `data` as the next host would receive it; fails naming the first value JSON cannot carry. */
export function overTheWire(data: MigrateData, step: string): MigrateData {
  const problem = notJson(data, "MigrateData");
  if (problem !== undefined) fail(`${step} returned MigrateData that cannot cross to another host as JSON: ${problem}`);
  return JSON.parse(JSON.stringify(data)) as MigrateData;
}

/** Where `value` stops being plain JSON, or undefined. An undefined object field is dropped, which keeps its meaning. */
function notJson(value: unknown, path: string, seen: Set<object> = new Set()): string | undefined {
  if (value === null || typeof value === "string" || typeof value === "boolean") return undefined;
  if (typeof value === "number") return Number.isFinite(value) ? undefined : `${path} is ${value} (JSON makes it null)`;
  if (typeof value !== "object") return `${path} is a ${typeof value}`;
  // `seen` holds the ancestors only: the same object twice side by side is fine for JSON, a cycle is not.
  if (seen.has(value)) return `${path} refers back to itself (JSON cannot hold a cycle)`;
  seen.add(value);
  try {
    return notJsonObject(value, path, seen);
  } finally {
    seen.delete(value);
  }
}

function notJsonObject(value: object, path: string, seen: Set<object>): string | undefined {
  if (Array.isArray(value)) {
    for (const [i, item] of (value as unknown[]).entries()) {
      const p =
        item === undefined ? `${path}[${i}] is undefined (JSON makes it null)` : notJson(item, `${path}[${i}]`, seen);
      if (p !== undefined) return p;
    }
    return undefined;
  }
  const proto = Object.getPrototypeOf(value) as object | null;
  if (proto !== Object.prototype && proto !== null) {
    return `${path} is a ${value.constructor?.name ?? "class instance"}, not a plain object`;
  }
  if (Object.getOwnPropertySymbols(value).length > 0) return `${path} has symbol keys (JSON drops them)`;
  for (const [k, v] of Object.entries(value)) {
    if (v === undefined) continue;
    const p = notJson(v, `${path}.${k}`, seen);
    if (p !== undefined) return p;
  }
  return undefined;
}
