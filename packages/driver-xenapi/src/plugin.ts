/**
 * The plugin manifest: `virtkit ... --driver xenapi` loads this. With `--option url=https://...`
 * the driver talks to that pool (the password from `VIRTKIT_XENAPI_PASSWORD` or a prompt, never an
 * option); without a url it runs against the embedded XAPI simulator, and says so.
 */
import { readFileSync } from "node:fs";
import { InMemoryImageService, Secret, TOKENS, cachedFactory, type DriverPlugin, type ImageService } from "@virtkit/core";
import { z } from "zod";
import { SIMULATOR_NOTE, createXenapiConformanceEnvironment } from "./conformance-environment.js";
import { XENAPI_TOKENS } from "./plugin-tokens.js";
import { plainHttpOffHost } from "./xapi-client.js";
import { resolveXenapiPassword } from "./password-source.js";
import { startEmbeddedSimulator } from "./simulator.js";
import { XenapiDriver, type DriverLogger, type XenapiDriverOptions, type XenapiTarget } from "./xenapi-driver.js";

/** The package version. */
export const PLUGIN_VERSION = (JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string })
  .version;

const num = (schema: z.ZodNumber) =>
  z.preprocess((v) => (typeof v === "string" && v.trim() !== "" ? Number(v) : v), schema);
const boolish = z.preprocess((v) => (v === "true" ? true : v === "false" ? false : v), z.boolean());

/** Whether `text` is a URL at all (the WHATWG parser refuses a port past 65535, a bad IPv4, ...). */
function parsesAsUrl(text: string): boolean {
  return URL.canParse(text);
}

/** Options of the xenapi plugin (strict: unknown keys are refused; CLI strings are coerced). */
export const xenapiOptionsSchema = z.strictObject({
  /** The pool master (or any member), `https://host`; absent: the embedded simulator. */
  url: z
    .string()
    .regex(/^https?:\/\/[^/@\s]+\/?$/, "an http(s) URL of the host, without credentials or path")
    .refine(parsesAsUrl, "not a valid URL (a host name or IP address, a port up to 65535)")
    .optional(),
  /** The XAPI user (default root). */
  username: z.string().min(1).max(255).optional(),
  /** Refused on purpose: a password in an option ends up in shell history and process listings. */
  password: z
    .undefined({ error: "the password is never an option: set VIRTKIT_XENAPI_PASSWORD or answer the prompt" })
    .optional(),
  /** Skip TLS certificate verification (self-signed hosts); default false. */
  insecure: boolish.optional(),
  /** `auto` (JSON-RPC, falling back to XML-RPC), `json-rpc` or `xml-rpc`. */
  protocol: z.enum(["auto", "json-rpc", "xml-rpc"]).optional(),
  /** Default call deadline in ms. */
  timeoutMs: num(z.number().int().positive()).optional(),
  /** The XAPI host this driver manages (name label, hostname or uuid). */
  xapiHost: z.string().min(1).max(255).optional(),
  /** The template instances are cloned from. */
  template: z.string().min(1).max(255).optional(),
  /** The default network (bridge or name label). */
  network: z.string().min(1).max(255).optional(),
  /** Seconds a soft reboot waits before going hard. */
  softRebootTimeoutSec: num(z.number().min(0)).optional(),
  /** Seconds the guest agent may take for one call. */
  agentTimeoutSec: num(z.number().positive()).optional(),
  /** Allows `http://` to a host that is not this machine (the password then crosses the network in clear); default false. */
  allowHttp: boolish.optional(),
}).refine((o) => o.url === undefined || o.allowHttp === true || !parsesAsUrl(o.url) || !plainHttpOffHost(o.url), {
  path: ["url"],
  message:
    "http:// would send the XAPI password across the network in clear: use https:// (with insecure=true for a self-signed certificate), or set allowHttp=true if the network is trusted",
});


/** Validated plugin options. */
export type XenapiPluginOptions = z.output<typeof xenapiOptionsSchema>;

function resolveOptional<T>(container: { isRegistered(t: symbol, r: boolean): boolean; resolve<X>(t: symbol): X }, token: symbol): T | undefined {
  return container.isRegistered(token, true) ? container.resolve<T>(token) : undefined;
}

/** The driver options for plugin options (the password source, or the embedded simulator). */
function driverOptions(options: XenapiPluginOptions, logger?: DriverLogger) {
  const { password: _never, ...rest } = options;
  if (rest.url) {
    const username = rest.username ?? "root";
    const url = rest.url;
    return { ...rest, username, password: () => resolveXenapiPassword(`${username}@${new URL(url).host}`) };
  }
  return {
    ...rest,
    target: async () => {
      // Said where a service looks (its log), not only in a conformance run's notes: a config
      // that lost its url must not pass for a real host.
      logger?.warn(`no url option: the XenAPI driver runs against the embedded XAPI simulator, not a real host (${SIMULATOR_NOTE})`);
      const sim = await startEmbeddedSimulator({ poolHosts: 2 });
      return { url: sim.url, username: sim.username, password: new Secret(sim.password), close: () => sim.close() };
    },
  };
}

/** The xenapi driver plugin. */
export const plugin: DriverPlugin<typeof xenapiOptionsSchema> = {
  kind: "virtkit-driver",
  name: "xenapi",
  version: PLUGIN_VERSION,
  contractVersion: "^1.0.0",
  description: "XenServer / XCP-ng through XAPI (JSON-RPC, XML-RPC fallback); without --option url, the embedded XAPI simulator",
  notes: [
    `${SIMULATOR_NOTE} when no url option is given`,
    "with --option url=https://..., the password comes from VIRTKIT_XENAPI_PASSWORD or a prompt, never an option",
  ],
  optionsSchema: xenapiOptionsSchema,
  register(container, { token, options }) {
    container.register(token, {
      // Built on first resolve, so services registered after the plugin are still picked up.
      useFactory: cachedFactory((c) => {
        const imageService = resolveOptional<ImageService>(c, TOKENS.ImageService) ?? new InMemoryImageService();
        const logger = resolveOptional<DriverLogger>(c, TOKENS.Logger);
        const target = resolveOptional<XenapiTarget>(c, XENAPI_TOKENS.Target);
        const beforeCall = resolveOptional<NonNullable<XenapiDriverOptions["beforeCall"]>>(c, XENAPI_TOKENS.BeforeCall);
        const { password: _never, ...rest } = options;
        return new XenapiDriver({
          ...(target ? { ...rest, target: async () => target } : driverOptions(options, logger)),
          imageService,
          ...(logger ? { logger } : {}),
          ...(beforeCall ? { beforeCall } : {}),
        });
      }),
    });
  },
  conformanceEnvironment(options) {
    const { password: _never, ...rest } = options;
    return createXenapiConformanceEnvironment(rest);
  },
};

export { XENAPI_TOKENS };
export default plugin;
