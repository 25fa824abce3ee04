// The dom0 plugins a driver reaches with host.call_plugin: Nova's "agent" plugin (xenstore requests
// to the guest agent, replies or TIMEOUT:/REBOOT:/NOT IMPLEMENTED:) and its "console" plugin
// (base64 of the zlib-compressed console log). Failures look as XenAPIPlugin.dispatch reports them:
// XENAPI_PLUGIN_FAILURE [fn, exception class, message].
import { deflateSync } from "node:zlib";
import { XapiError } from "./errors.js";
import type { Guest } from "./guest.js";
import type { XapiPool } from "./pool.js";
import type { CallContext } from "./registry.js";

const AGENT_FUNCTIONS = new Set(["version", "key_init", "password", "resetnetwork", "inject_file", "agentupdate"]);
const MAX_CONSOLE_BYTES = 102400;
const DEFAULT_TIMEOUT = 30;

function pluginFailure(fn: string, cls: string, msg: string): XapiError {
  return new XapiError("XENAPI_PLUGIN_FAILURE", [fn, cls, msg]);
}

/** The running guest with this domid on this host, if any. */
function guestByDomid(pool: XapiPool, host: string, domid: number): Guest | undefined {
  for (const vmRef of pool.db.get("host", host).resident_VMs as string[]) {
    const vm = pool.db.find("VM", vmRef);
    if (vm && Number(vm.domid) === domid && (vm.power_state === "Running" || vm.power_state === "Paused")) {
      return pool.world.guestOf(String(vm.uuid));
    }
  }
  return undefined;
}

function domainRunning(pool: XapiPool, host: string, domid: number): "running" | "paused" | "gone" {
  for (const vmRef of pool.db.get("host", host).resident_VMs as string[]) {
    const vm = pool.db.find("VM", vmRef);
    if (vm && Number(vm.domid) === domid) return vm.power_state === "Paused" ? "paused" : "running";
  }
  return "gone";
}

/** host.call_plugin */
export async function callPlugin(ctx: CallContext, host: string, plugin: string, fn: string, args: Record<string, string>): Promise<string> {
  const pool = ctx.pool;
  pool.db.get("host", host);
  if (plugin === "console") {
    if (fn !== "get_console_log") throw new XapiError("UNKNOWN_XENAPI_PLUGIN_FUNCTION", [fn]);
    return consoleLog(pool, host, args);
  }
  if (plugin !== "agent") throw new XapiError("XENAPI_MISSING_PLUGIN", [plugin]);
  if (!AGENT_FUNCTIONS.has(fn)) throw new XapiError("UNKNOWN_XENAPI_PLUGIN_FUNCTION", [fn]);
  return agentCall(ctx, host, fn, { ...args });
}

function consoleLog(pool: XapiPool, host: string, args: Record<string, string>): string {
  const raw = args.dom_id;
  if (raw === undefined) throw pluginFailure("get_console_log", "PluginError", "Missing dom_id");
  if (!/^\s*[+-]?\d+\s*$/.test(raw)) throw pluginFailure("get_console_log", "PluginError", "Invalid dom_id");
  const domid = Number(raw);
  const guest = guestByDomid(pool, host, domid);
  if (!guest) {
    throw pluginFailure("get_console_log", "FileNotFoundError", `[Errno 2] No such file or directory: '/var/log/xen/guest/console.${domid}'`);
  }
  let log = Buffer.from(guest.consoleLines().map((l) => `${l}\n`).join(""), "utf8");
  if (log.length > MAX_CONSOLE_BYTES) log = log.subarray(log.length - MAX_CONSOLE_BYTES);
  return deflateSync(log).toString("base64");
}

async function agentCall(ctx: CallContext, host: string, fn: string, args: Record<string, string>): Promise<string> {
  const pool = ctx.pool;
  const scale = pool.world.options.agentTimeScale;
  // The plugin reads timeout with int(); anything else is a ValueError, as in Nova's plugin.
  const rawTimeout = args.timeout ?? String(DEFAULT_TIMEOUT);
  delete args.timeout;
  if (!/^\s*[+-]?\d+\s*$/.test(rawTimeout)) throw pluginFailure(fn, "ValueError", `invalid literal for int() with base 10: '${rawTimeout}'`);
  const timeout = Number(rawTimeout);
  const need = (key: string): string => {
    const v = args[key];
    if (v === undefined) throw pluginFailure(fn, "KeyError", `'${key}'`);
    return v;
  };
  need("id");
  const domid = Number(need("dom_id"));
  let request: { name: string; value: unknown };
  switch (fn) {
    case "version":
      request = { name: "version", value: "agent" };
      break;
    case "key_init":
      request = { name: "keyinit", value: need("pub") };
      break;
    case "password":
      request = { name: "password", value: need("enc_pass") };
      break;
    case "resetnetwork":
      request = { name: "resetnetwork", value: "" };
      break;
    case "inject_file": {
      const path = need("b64_path");
      const file = need("b64_contents");
      const features = await exchange(ctx, host, domid, fn, { name: "features", value: "" }, timeout, scale);
      const list = (JSON.parse(features) as { message: string }).message.split(",");
      if (!list.includes("file_inject")) throw pluginFailure(fn, "NotImplementedError", "NOT IMPLEMENTED: Agent does not support file injection.");
      request = { name: "file_inject", value: { b64_path: path, b64_file: file } };
      break;
    }
    default:
      request = { name: "agentupdate", value: `${need("url")},${need("md5sum")}` };
  }
  return exchange(ctx, host, domid, fn, request, timeout, scale);
}

/** Write the request for the agent and wait for its reply as the plugin's _wait_for_agent does. */
async function exchange(ctx: CallContext, host: string, domid: number, fn: string, request: { name: string; value: unknown }, timeout: number, scale: number): Promise<string> {
  const pool = ctx.pool;
  const timeoutMs = timeout * 1000 * scale;
  const pollMs = 500 * scale;
  const timedOut = (): XapiError => pluginFailure(fn, "PluginError", `TIMEOUT: No response from agent within ${timeout} seconds.`);
  const rebooted = (): XapiError => pluginFailure(fn, "RebootDetectedError", `REBOOT: dom_id ${domid} no longer present`);
  const state = domainRunning(pool, host, domid);
  if (state === "gone") {
    // The first poll finds no domain with that id: the plugin reports a reboot.
    await ctx.sleep(Math.min(pollMs, timeoutMs));
    if (pollMs > timeoutMs) throw timedOut();
    throw rebooted();
  }
  const guest = guestByDomid(pool, host, domid);
  if (!guest) throw rebooted();
  const mode = guest.agentMode;
  if (state === "paused" || mode === "absent" || mode === "unresponsive") {
    await ctx.sleep(timeoutMs);
    throw timedOut();
  }
  if (mode === "rebooting") {
    await ctx.sleep(Math.min(pollMs, timeoutMs));
    if (pollMs > timeoutMs) throw timedOut();
    throw rebooted();
  }
  if (mode === "slow") {
    const delay = pool.world.options.slowAgentMs;
    if (delay > timeoutMs) {
      await ctx.sleep(timeoutMs);
      throw timedOut();
    }
    await ctx.sleep(delay);
  }
  return JSON.stringify(guest.handle(request.name, request.value));
}
