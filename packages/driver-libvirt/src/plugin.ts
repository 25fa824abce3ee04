/**
 * The plugin manifest: `virtkit ... --driver libvirt --option uri=qemu:///system` loads this,
 * validates the options (strings from the CLI are coerced) and registers a {@link LibvirtDriver}.
 */
import { TOKENS, validatePluginOptions, type DriverPlugin, type ImageService } from "@virtkit/core";
import { parseConnectUri } from "@virtkit/libvirt-rpc";
import type { DependencyContainer } from "tsyringe";
import { z } from "zod";
import { createLibvirtConformanceEnvironment } from "./conformance-environment.js";
import { LibvirtDriver, type DriverLogger } from "./libvirt-driver.js";
import { libvirtEnvironments } from "./plugin-environments.js";
import { LIBVIRT_CONNECTOR } from "./libvirt-connection.js";

/** The package version, kept in step with package.json. */
export const PLUGIN_VERSION = "0.1.0";

/** CLI options arrive as strings: `"30000"` -> 30000, but `""` stays invalid. */
const num = (schema: z.ZodNumber) =>
  z.preprocess((v) => (typeof v === "string" && v.trim() !== "" ? Number(v) : v), schema);

/** A comma-separated CLI string as a list (`"a, b"` -> `["a", "b"]`); arrays pass through. */
const csv = (v: unknown): unknown =>
  typeof v === "string"
    ? v
        .split(",")
        .map((m) => m.trim())
        .filter((m) => m !== "")
    : v;

/** Options of the libvirt plugin. Unknown keys are refused. */
export const libvirtOptionsSchema = z
  .object({
    /** libvirt URI, e.g. `qemu:///system`, `test+unix:///default?socket=/tmp/x/libvirt-sock`. */
    uri: z
      .string()
      .regex(/^[a-z][a-z0-9]*(\+[a-z0-9]+)?:\/\//i, "a libvirt URI such as qemu:///system")
      // Parsed as the connection will parse it, so a malformed URI is a usage error up front, not a
      // failure of every scenario (the reason never repeats the URI: it may carry a password).
      .superRefine((uri, ctx) => {
        try {
          parseConnectUri(uri);
        } catch (err) {
          const reason = err instanceof Error ? err.message.replace(/^invalid libvirt URI "[^"]*": /, "") : "";
          ctx.addIssue({ code: "custom", message: `not a usable libvirt URI${reason ? `: ${reason}` : ""}` });
        }
      }),
    /** `<domain type>`; default: derived from the URI scheme. */
    virtType: z
      .string()
      .regex(/^[a-z][a-z0-9]*$/, "a libvirt domain type such as qemu, kvm, test")
      .optional(),
    /** Storage pool for instance disks (default `default`). */
    pool: z.string().min(1).optional(),
    /** Directory for the pool if it has to be created. */
    poolPath: z.string().startsWith("/").optional(),
    /** Default call deadline in ms. */
    timeoutMs: num(z.number().int().positive()).optional(),
    /** Live migration transport for kvm/qemu (`tcp`, `tls`, `ssh`). */
    liveMigrationScheme: z.enum(["tcp", "tls", "ssh", "unix"]).optional(),
    /** Nova's live_migration_inbound_addr: where other hosts send this host's incoming migrations. */
    liveMigrationInboundAddr: z
      .string()
      .regex(/^[A-Za-z0-9.:_-]+$/, "a host name or IP address")
      .optional(),
    /** The pool is shared storage libvirt 9 cannot recognise (a shared-storage move then passes VIR_MIGRATE_UNSAFE). */
    trustSharedStorage: z
      .preprocess((v) => (v === "true" ? true : v === "false" ? false : v), z.boolean())
      .optional(),
    /** Full live migration URI template with one `%s` for the host. */
    liveMigrationUriTemplate: z.string().includes("%s").optional(),
    /** Keepalive interval in seconds; 0 disables. */
    keepaliveIntervalSec: num(z.number().int().min(0)).optional(),
    /** Directory for serial console logs (readable by this process). */
    consoleLogDir: z.string().startsWith("/").optional(),
    /** Seconds a soft reboot waits before going hard. */
    softRebootTimeoutSec: num(z.number().int().min(0)).optional(),
    /** Allow admin passwords over a plain-TCP (`+tcp`) connection: only on a trusted network. */
    allowPasswordOverTcp: z
      .preprocess((v) => (v === "true" ? true : v === "false" ? false : v), z.boolean())
      .optional(),
    /** Nova's `cpu_mode`: host-model (default), host-passthrough (KVM only), custom (with cpuModels), none. */
    cpuMode: z.enum(["host-model", "host-passthrough", "custom", "none"]).optional(),
    /** Nova's `cpu_models` (cpuMode custom): the first is used. A comma-separated string from the CLI. */
    cpuModels: z.preprocess(csv, z.array(z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, "a CPU model name"))).optional(),
    /** Nova's `disk_cachemodes`, e.g. `file=writeback,block=none` (comma-separated from the CLI). */
    diskCachemodes: z
      .preprocess(
        csv,
        z.array(
          z
            .string()
            .regex(
              /^(file|block|network|volume)=(none|writeback|writethrough|directsync|unsafe|default)$/,
              "<file|block|network|volume>=<none|writeback|writethrough|directsync|unsafe|default>",
            ),
        ),
      )
      .optional(),
  })
  .strict();

/** Validated plugin options. */
export type LibvirtPluginOptions = z.output<typeof libvirtOptionsSchema>;

function resolveOptional<T>(container: DependencyContainer, token: symbol): T | undefined {
  return container.isRegistered(token, true) ? container.resolve<T>(token) : undefined;
}

/** The libvirt driver plugin. */
export const plugin: DriverPlugin<typeof libvirtOptionsSchema> = {
  kind: "virtkit-driver",
  name: "libvirt",
  version: PLUGIN_VERSION,
  contractVersion: "^1.0.0",
  description: "libvirt (QEMU/KVM, test, ...) over libvirt's RPC protocol, no native binding",
  optionsSchema: libvirtOptionsSchema,
  register(container, { token, options }) {
    let driver: LibvirtDriver | undefined;
    container.register(token, {
      // One driver per registration, built on first resolve so the image service and logger
      // registered after the plugin are still picked up.
      useFactory: (c) => {
        const imageService = resolveOptional<ImageService>(c, TOKENS.ImageService);
        const logger = resolveOptional<DriverLogger>(c, TOKENS.Logger);
        const connector = c.isRegistered(LIBVIRT_CONNECTOR, true) ? c.resolve(LIBVIRT_CONNECTOR) : undefined;
        driver ??= new LibvirtDriver({
          ...options,
          ...(imageService ? { imageService } : {}),
          ...(logger ? { logger } : {}),
          ...(connector ? { connector } : {}),
        });
        return driver;
      },
    });
  },
  conformanceEnvironment(options) {
    return createLibvirtConformanceEnvironment(options);
  },
  // Validated through the plugin itself, so environments report option errors as a run would.
  environments: libvirtEnvironments((raw) => validatePluginOptions(plugin, raw)),
};

export default plugin;
