// host messages beyond the generated ones: call_plugin, migrate_receive, compute_free_memory.
import type { MessageDef } from "../registry.js";
import { message } from "../registry.js";
import { callPlugin } from "../plugins.js";

/** host messages. */
export function hostMessages(): MessageDef[] {
  return [
    message(
      "host",
      "call_plugin",
      [
        ["host", "host ref"],
        ["plugin", "string"],
        ["fn", "string"],
        ["args", "(string -> string) map"],
      ],
      "string",
      (ctx, [host, plugin, fn, args]) => callPlugin(ctx, host as string, plugin as string, fn as string, args as Record<string, string>),
      { async: true },
    ),
    message("host", "compute_free_memory", [["host", "host ref"]], "int", (ctx, [host]) => ctx.pool.hostFreeMemory(host as string)),
    message(
      "host",
      "migrate_receive",
      [
        ["host", "host ref"],
        ["network", "network ref"],
        ["options", "(string -> string) map"],
      ],
      "(string -> string) map",
      (ctx, [host, network]) => {
        const pool = ctx.pool;
        const rec = pool.db.get("host", host as string);
        pool.db.get("network", network as string);
        // XAPI logs a fresh pool-internal session in for the incoming migration.
        const session = pool.world.internalLogin(pool);
        const ip = String(rec.address);
        return {
          SM: `http://${ip}/services/SM?session_id=${session}`,
          host: host as string,
          xenops: `http://${ip}/services/xenops?session_id=${session}`,
          session_id: session,
          master: pool.world.urlOf(pool),
        };
      },
      { async: true },
    ),
  ];
}
