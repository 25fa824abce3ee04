/**
 * The fake driver's plugin manifest: `--driver fake` with `--option key=value` strings, validated
 * by a strict zod schema that coerces the strings. Drivers registered with the same `cloud`
 * option share one module-level {@link FakeCloud}, so two registrations (`src`, `dst`) can
 * live-migrate between each other.
 */
import { readFileSync } from "node:fs";
import {
  CAPABILITY_NAMES,
  InMemoryImageService,
  TOKENS,
  cachedFactory,
  type Capabilities,
  type Capability,
  type DriverPlugin,
  type ImageService,
} from "@virtkit/core";
import { z } from "zod";
import { FakeCloud } from "./fake-cloud.js";
import { FakeDriver } from "./fake-driver.js";
import type { FakeLogger } from "./logger.js";
import { createFakeConformanceEnvironment } from "./conformance-environment.js";
import { FAKE_TOKENS } from "./plugin-tokens.js";

const VERSION = (JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string }).version;

const boolish = z.union([z.boolean(), z.stringbool()]);

/**
 * Parses `disable=pause,suspend` (or `enable=...`, or both: `disable=pause,enable=postCopy`):
 * bare names after a `disable=`/`enable=` switch follow it; a leading bare name means disable.
 */
function parseCapabilityList(text: string, ctx: z.RefinementCtx): Partial<Capabilities> {
  const out: Partial<Record<Capability, boolean>> = {};
  let value = false;
  // Option values are never echoed (a pasted secret could be one): items are named by position.
  for (const [index, raw] of text.split(",").entries()) {
    const item = `item #${index + 1}`;
    let token = raw.trim();
    if (token.length === 0) continue;
    const eq = token.indexOf("=");
    if (eq >= 0) {
      const mode = token.slice(0, eq).trim();
      if (mode !== "disable" && mode !== "enable") {
        ctx.addIssue({ code: "custom", message: `${item}: expected disable=<names> or enable=<names>` });
        return out;
      }
      value = mode === "enable";
      token = token.slice(eq + 1).trim();
    }
    if (!(CAPABILITY_NAMES as readonly string[]).includes(token)) {
      ctx.addIssue({
        code: "custom",
        message: `${item}: unknown capability (${token.length} characters; known: ${CAPABILITY_NAMES.join(", ")})`,
      });
      return out;
    }
    out[token as Capability] = value;
  }
  return out;
}

const capabilityOverrides = z.union([
  z.string().transform(parseCapabilityList),
  z.strictObject(Object.fromEntries(CAPABILITY_NAMES.map((c) => [c, z.boolean().optional()])) as Record<Capability, z.ZodOptional<z.ZodBoolean>>),
]);

/** The fake plugin's options (strict: unknown keys are refused; strings from the CLI are coerced). */
export const fakeOptionsSchema = z.strictObject({
  /** Host name (default: the registration name, e.g. `src`). */
  host: z.string().min(1).max(253).optional(),
  /** The shared cloud's name (default `default`); drivers with the same cloud see each other. */
  cloud: z.string().min(1).max(63).default("default"),
  virtType: z.enum(["kvm", "qemu", "xen", "lxc", "parallels"]).optional(),
  postCopySupported: boolish.optional(),
  /** `disable=pause,suspend`, `enable=...`, or an object of booleans. */
  capabilities: capabilityOverrides.optional(),
  memoryMb: z.coerce.number().int().min(1).max(16 * 1024 * 1024).optional(),
  vcpus: z.coerce.number().int().min(1).max(4096).optional(),
  /** Hosts with the same pool share storage (then migrations must not be block migrations). */
  storagePool: z.string().min(1).max(255).optional(),
  latencyMs: z.coerce.number().min(0).max(600_000).optional(),
  defaultTimeoutMs: z.coerce.number().min(0).optional(),
  migrationDurationMs: z.coerce.number().min(0).max(600_000).optional(),
});

/** Validated fake plugin options. */
export type FakePluginOptions = z.output<typeof fakeOptionsSchema>;

/** The `fake` driver plugin (also the default export of the package). */
export const plugin: DriverPlugin<typeof fakeOptionsSchema> = {
  kind: "virtkit-driver",
  name: "fake",
  version: VERSION,
  contractVersion: "^1.0.0",
  description: "A simulated hypervisor in memory: every power state, snapshots, guest passwords, live migration between hosts, fault injection",
  optionsSchema: fakeOptionsSchema,
  register(container, { name, token, options }) {
    container.register(token, {
      // Built on first resolve, so services registered after the plugin are still picked up.
      // core's cachedFactory: tsyringe's index (and its global reflect-metadata) is not needed.
      useFactory: cachedFactory((c) => {
        const imageService = c.isRegistered(TOKENS.ImageService, true)
          ? c.resolve<ImageService>(TOKENS.ImageService)
          : new InMemoryImageService();
        const logger = c.isRegistered(TOKENS.Logger, true) ? c.resolve<FakeLogger>(TOKENS.Logger) : undefined;
        return new FakeDriver({
          host: options.host ?? name,
          // A private cloud registered by the environment (or a service) wins over the named one.
          cloud: c.isRegistered(FAKE_TOKENS.Cloud, true) ? c.resolve(FAKE_TOKENS.Cloud) : FakeCloud.named(options.cloud),
          imageService,
          logger,
          capabilities: options.capabilities,
          virtType: options.virtType,
          postCopySupported: options.postCopySupported,
          memoryMb: options.memoryMb,
          vcpus: options.vcpus,
          storagePool: options.storagePool,
          latencyMs: options.latencyMs,
          defaultTimeoutMs: options.defaultTimeoutMs,
          migrationDurationMs: options.migrationDurationMs,
        });
      }),
    });
  },
  conformanceEnvironment: (options) => createFakeConformanceEnvironment(options),
};

export default plugin;
