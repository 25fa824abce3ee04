/**
 * The files of a new driver package (`virtkit init driver <name>`): a driver on core's
 * `BaseComputeDriver` over an in-memory stand-in for the hypervisor, its plugin manifest and
 * options schema, a conformance environment, a vitest file running the kit, and a README. The
 * package passes the kit's MUST scenarios for what it declares as generated; the author then
 * replaces the stand-in's calls with their hypervisor's.
 */

/** What the templates are filled with. */
export interface DriverTemplateInput {
  /** Driver short name, e.g. `acme` (lower-case letters, digits, `-`). */
  readonly name: string;
  /** npm package name, e.g. `virtkit-driver-acme`. */
  readonly packageName: string;
  /** Version ranges of virtkit's packages the new package depends on. */
  readonly versions: { readonly core: string; readonly conformance: string; readonly cli: string };
}

/** `acme-cloud` → `AcmeCloud`. */
export function pascalCase(name: string): string {
  return name
    .split(/[-_.]+/)
    .filter(Boolean)
    .map((part) => part[0]!.toUpperCase() + part.slice(1))
    .join("");
}

/** Relative path → file content. */
export function driverTemplate(input: DriverTemplateInput): Record<string, string> {
  const { name, packageName, versions } = input;
  const Name = pascalCase(name);
  const packageJson = {
    name: packageName,
    version: "0.1.0",
    description: `A virtkit driver for ${name}`,
    license: "Apache-2.0",
    type: "module",
    keywords: ["virtkit-driver"],
    virtkit: { kind: "virtkit-driver" },
    main: "./dist/index.js",
    types: "./dist/index.d.ts",
    exports: {
      ".": { types: "./dist/index.d.ts", import: "./dist/index.js" },
      "./package.json": "./package.json",
    },
    files: ["dist", "README.md"],
    engines: { node: ">=20.19" },
    scripts: {
      build: "tsc -p tsconfig.build.json",
      typecheck: "tsc -p tsconfig.json --noEmit",
      test: "vitest run",
      conformance: "virtkit conformance run --driver ./src/index.ts",
    },
    dependencies: {
      "@virtkit/core": versions.core,
      zod: "^4.1.0",
    },
    devDependencies: {
      "@types/node": "^20.19.0",
      "@virtkit/cli": versions.cli,
      "@virtkit/conformance": versions.conformance,
      tsx: "^4.23.0",
      typescript: "^5.9.0",
      vitest: "^4.1.0",
    },
  };

  return {
    "package.json": `${JSON.stringify(packageJson, null, 2)}\n`,

    "tsconfig.json": `${JSON.stringify(
      {
        compilerOptions: {
          target: "ES2022",
          lib: ["ES2023"],
          module: "NodeNext",
          moduleResolution: "NodeNext",
          strict: true,
          noUncheckedIndexedAccess: true,
          declaration: true,
          sourceMap: true,
          skipLibCheck: true,
          types: ["node"],
          rootDir: "src",
          outDir: "dist",
        },
        include: ["src"],
      },
      null,
      2,
    )}\n`,

    "tsconfig.build.json": `${JSON.stringify({ extends: "./tsconfig.json", exclude: ["src/**/*.test.ts"] }, null, 2)}\n`,

    "vitest.config.ts": `import { defineConfig } from "vitest/config";

export default defineConfig({
  test: { include: ["src/**/*.test.ts"] },
});
`,

    ".gitignore": "node_modules\ndist\n",

    "src/index.ts": `export { plugin, ${camel(name)}OptionsSchema } from "./plugin.js";
export type { ${Name}PluginOptions } from "./plugin.js";
export { ${Name}Driver } from "./${name}-driver.js";
export type { ${Name}DriverOptions } from "./${name}-driver.js";
export { SimulatedBackend } from "./backend.js";
export { plugin as default } from "./plugin.js";
`,

    "src/backend.ts": `/**
 * An in-memory stand-in for ${name}'s API, so this package passes virtkit's conformance kit
 * before it talks to a real hypervisor. Replace the calls to it in ${name}-driver.ts with your
 * hypervisor's client; keep it (or drop it) for unit tests.
 *
 * Every call takes the operation's AbortSignal and waits the configured latency first, so
 * deadlines and cancellation behave as they would over a network, and a cancelled call changes
 * nothing.
 */
import { sleep, throwIfAborted } from "@virtkit/core";

/** What the stand-in knows of one virtual machine. */
export interface SimulatedVm {
  readonly uuid: string;
  readonly name: string;
  readonly memoryMb: number;
  readonly vcpus: number;
  power: "running" | "paused" | "shutdown";
  /** The guest ignores ACPI shutdown requests (set by the conformance environment). */
  ignoresAcpi: boolean;
  /** CPU time used, simulated as the time the VM was seen running (see \`cpuTimeNs\`). */
  cpuNs: bigint;
  /** When \`cpuNs\` was last brought up to date (ms since the epoch). */
  sampledAt: number;
}

/** The VM's CPU time now: it grows only while the VM runs, as a real guest's does. */
export function cpuTimeNs(vm: SimulatedVm, now = Date.now()): bigint {
  if (vm.power === "running") vm.cpuNs += BigInt(Math.max(0, now - vm.sampledAt)) * 1_000_000n;
  vm.sampledAt = now;
  return vm.cpuNs;
}

/** One simulated hypervisor. Drivers given the same backend name share it. */
export class SimulatedBackend {
  static readonly #named = new Map<string, SimulatedBackend>();

  /** The backend called \`name\`, created on first use. */
  static named(name: string): SimulatedBackend {
    let backend = SimulatedBackend.#named.get(name);
    if (!backend) {
      backend = new SimulatedBackend();
      SimulatedBackend.#named.set(name, backend);
    }
    return backend;
  }

  /** Forgets the backend called \`name\`. */
  static drop(name: string): void {
    SimulatedBackend.#named.delete(name);
  }

  readonly #vms = new Map<string, SimulatedVm>();
  #latencyMs = 0;

  /** Makes every call take at least \`ms\` (0 restores). */
  setLatency(ms: number): void {
    this.#latencyMs = ms;
  }

  /** Runs \`fn\` after the latency, unless \`signal\` fired meanwhile. */
  async call<T>(operation: string, signal: AbortSignal, fn: () => T): Promise<T> {
    if (this.#latencyMs > 0) await sleep(this.#latencyMs, signal, operation);
    throwIfAborted(operation, signal);
    return fn();
  }

  find(uuid: string): SimulatedVm | undefined {
    return this.#vms.get(uuid);
  }

  list(): SimulatedVm[] {
    return [...this.#vms.values()];
  }

  add(vm: SimulatedVm): void {
    this.#vms.set(vm.uuid, vm);
  }

  remove(uuid: string): void {
    this.#vms.delete(uuid);
  }
}
`,

    [`src/${name}-driver.ts`]: `/**
 * The ${name} driver. It extends virtkit's \`BaseComputeDriver\`: every capability it does not
 * declare is refused with \`UnsupportedOperationError\` naming the capability (what the
 * conformance kit expects), so it implements the base contract and what it declares: \`pause\`.
 *
 * To support more, add the capability to the \`super(...)\` call and implement its methods (the
 * constructor refuses a declared capability whose methods are missing; a misspelt capability
 * does not compile). \`CAPABILITY_METHODS\` in @virtkit/core lists the methods of each.
 */
import {
  BaseComputeDriver,
  HypervisorUnavailableError,
  InstanceExistsError,
  InstanceNotFoundError,
  InvalidStateError,
  PowerState,
  powerOffOptionsError,
  rebootTypeError,
  sleep,
  validateSpawnRequest,
  withDeadline,
  type DestroyOptions,
  type HostInfo,
  type Instance,
  type InstanceInfo,
  type Logger,
  type OperationOptions,
  type PowerOffOptions,
  type RebootType,
  type SpawnRequest,
} from "@virtkit/core";
import { cpuTimeNs, type SimulatedBackend, type SimulatedVm } from "./backend.js";

/** What the plugin builds the driver from. */
export interface ${Name}DriverOptions {
  /** This host's name. */
  readonly host: string;
  /** Where the instances live (replace with your hypervisor's client). */
  readonly backend: SimulatedBackend;
  /** Default deadline of a call in ms. */
  readonly timeoutMs: number;
  readonly logger?: Logger;
}

const POWER: Readonly<Record<SimulatedVm["power"], PowerState>> = {
  running: PowerState.RUNNING,
  paused: PowerState.PAUSED,
  shutdown: PowerState.SHUTDOWN,
};

/** The ${name} compute driver. */
export class ${Name}Driver extends BaseComputeDriver {
  readonly #options: ${Name}DriverOptions;
  #closed = false;

  constructor(options: ${Name}DriverOptions) {
    super("${name}", ["pause"]);
    this.#options = options;
  }

  // -- host --

  async initHost(host: string, options?: OperationOptions): Promise<void> {
    // Connect to the hypervisor here.
    await this.#call("initHost", options, () => undefined);
    this.#options.logger?.info("host initialised", { host });
  }

  async cleanupHost(_host: string, _options?: OperationOptions): Promise<void> {
    // Close connections and listeners here. The driver is unusable afterwards: every call refuses.
    this.#closed = true;
  }

  async getHostInfo(options?: OperationOptions): Promise<HostInfo> {
    return this.#call("getHostInfo", options, () => ({
      hostname: this.#options.host,
      hypervisorType: "${name}",
      hypervisorVersion: "0.1.0",
      cpuArch: "x86_64",
      vcpus: 8,
      memoryMb: 16_384,
    }));
  }

  // -- inspection --

  async listInstances(options?: OperationOptions): Promise<readonly string[]> {
    return this.#call("listInstances", options, (b) => b.list().map((vm) => vm.name));
  }

  async listInstanceUuids(options?: OperationOptions): Promise<readonly string[]> {
    return this.#call("listInstanceUuids", options, (b) => b.list().map((vm) => vm.uuid));
  }

  async getInfo(instance: Instance, options?: OperationOptions): Promise<InstanceInfo> {
    return this.#call("getInfo", options, (b) => {
      const vm = this.#vm(b, instance);
      return {
        state: POWER[vm.power],
        maxMemoryKb: vm.memoryMb * 1024,
        memoryKb: vm.power === "shutdown" ? 0 : vm.memoryMb * 1024,
        vcpus: vm.vcpus,
        cpuTimeNs: cpuTimeNs(vm),
      };
    });
  }

  // -- lifecycle --

  async spawn(request: SpawnRequest, options?: OperationOptions): Promise<void> {
    // Malformed input is refused before anything is made (core's checks, shared by every driver).
    validateSpawnRequest(request);
    const { instance } = request;
    await this.#call("spawn", options, (b) => {
      if (b.find(instance.uuid)) throw new InstanceExistsError(instance.uuid);
      b.add({
        uuid: instance.uuid,
        name: instance.name,
        memoryMb: instance.flavor.memoryMb,
        vcpus: instance.flavor.vcpus,
        power: "running",
        ignoresAcpi: false,
        cpuNs: 0n,
        sampledAt: Date.now(),
      });
    });
  }

  async destroy(instance: Instance, options?: DestroyOptions): Promise<void> {
    // Idempotent: an unknown instance is already destroyed.
    await this.#call("destroy", options, (b) => b.remove(instance.uuid));
  }

  /** SOFT falls back to HARD (\`softReboot\` is not declared); both end RUNNING from any state. */
  async reboot(instance: Instance, type: RebootType, options?: OperationOptions): Promise<void> {
    const badType = rebootTypeError(type);
    if (badType) throw badType;
    await this.#call("reboot", options, (b) => {
      this.#vm(b, instance).power = "running";
    });
  }

  /** A clean (ACPI) shutdown for up to \`cleanShutdownTimeoutSec\`, then a hard one. */
  async powerOff(instance: Instance, options?: PowerOffOptions): Promise<void> {
    const badOptions = powerOffOptionsError(options);
    if (badOptions) throw badOptions;
    this.#usable();
    const clean = options?.cleanShutdownTimeoutSec ?? 60;
    const retryMs = Math.max(10, (options?.retryIntervalSec ?? 1) * 1000);
    // The caller's deadline bounds the whole call; the default one leaves room for the clean attempt.
    const timeoutMs = options?.timeoutMs ?? this.#options.timeoutMs + clean * 1000;
    await withDeadline("powerOff", { ...options, timeoutMs }, timeoutMs, async (signal) => {
      const deadline = Date.now() + clean * 1000;
      while (Date.now() < deadline) {
        const done = await this.#options.backend.call("powerOff", signal, () => {
          const vm = this.#vm(this.#options.backend, instance);
          if (vm.power === "shutdown") return true;
          if (vm.ignoresAcpi) return false;
          vm.power = "shutdown";
          return true;
        });
        if (done) return;
        await sleep(Math.min(retryMs, Math.max(0, deadline - Date.now())), signal, "powerOff");
      }
      await this.#options.backend.call("powerOff", signal, () => {
        this.#vm(this.#options.backend, instance).power = "shutdown";
      });
    });
  }

  async powerOn(instance: Instance, options?: OperationOptions): Promise<void> {
    await this.#call("powerOn", options, (b) => {
      const vm = this.#vm(b, instance);
      if (vm.power === "paused") throw new InvalidStateError(instance.uuid, "power on", "PAUSED");
      vm.power = "running";
    });
  }

  // -- capability pause --

  override async pause(instance: Instance, options?: OperationOptions): Promise<void> {
    await this.#call("pause", options, (b) => {
      const vm = this.#vm(b, instance);
      if (vm.power !== "running") throw new InvalidStateError(instance.uuid, "pause", POWER_NAME[vm.power]);
      vm.power = "paused";
    });
  }

  override async unpause(instance: Instance, options?: OperationOptions): Promise<void> {
    await this.#call("unpause", options, (b) => {
      const vm = this.#vm(b, instance);
      if (vm.power !== "paused") throw new InvalidStateError(instance.uuid, "unpause", POWER_NAME[vm.power]);
      vm.power = "running";
    });
  }

  // -- helpers --

  /** Refuses a call after cleanupHost (the contract: unusable afterwards, never reconnected). */
  #usable(): void {
    if (this.#closed) throw new HypervisorUnavailableError(this.#options.host, "the driver was cleaned up (cleanupHost)");
  }

  /** One hypervisor call under the caller's signal and deadline (the driver's default when none is given). */
  #call<T>(operation: string, options: OperationOptions | undefined, fn: (backend: SimulatedBackend) => T): Promise<T> {
    this.#usable();
    return withDeadline(operation, options, this.#options.timeoutMs, (signal) =>
      this.#options.backend.call(operation, signal, () => fn(this.#options.backend)),
    );
  }

  #vm(backend: SimulatedBackend, instance: Instance): SimulatedVm {
    const vm = backend.find(instance.uuid);
    if (!vm) throw new InstanceNotFoundError(instance.uuid);
    return vm;
  }
}

const POWER_NAME: Readonly<Record<SimulatedVm["power"], string>> = {
  running: "RUNNING",
  paused: "PAUSED",
  shutdown: "SHUTDOWN",
};
`,

    "src/plugin.ts": `/**
 * The plugin manifest virtkit loads (\`virtkit conformance run --driver ${packageName}\`, or
 * \`createDriver("${packageName}", options)\` in a service): name, version, the contract range, the
 * options schema (any Standard Schema validator; zod here) and \`register\`, which puts the
 * driver into the service's container under the token it is given.
 */
import { readFileSync } from "node:fs";
import { TOKENS, type DriverPlugin } from "@virtkit/core";
import { z } from "zod";
import { SimulatedBackend } from "./backend.js";
import { create${Name}ConformanceEnvironment } from "./conformance-environment.js";
import { ${Name}Driver } from "./${name}-driver.js";

const VERSION = (JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string })
  .version;

/** The driver's options. Strings from \`--option key=value\` are coerced. Add your connection settings here. */
export const ${camel(name)}OptionsSchema = z.strictObject({
  /** This host's name (default: the registration name). */
  host: z.string().min(1).max(253).optional(),
  /** Which simulated backend to use; drivers with the same name see the same instances. */
  backend: z.string().min(1).max(128).default("default"),
  /** Default deadline of a call in ms. */
  timeoutMs: z.coerce.number().int().positive().default(30_000),
});

/** Validated options. */
export type ${Name}PluginOptions = z.output<typeof ${camel(name)}OptionsSchema>;

/** The ${name} driver plugin (also the package's default export). */
export const plugin: DriverPlugin<typeof ${camel(name)}OptionsSchema> = {
  kind: "virtkit-driver",
  name: "${name}",
  version: VERSION,
  contractVersion: "^1.0.0",
  description: "${name}: replace this with what your driver drives",
  notes: ["${name}: results come from SimulatedBackend, an in-memory stand-in for the hypervisor"],
  optionsSchema: ${camel(name)}OptionsSchema,
  register(container, { name, token, options }) {
    let driver: ${Name}Driver | undefined;
    container.register(token, {
      // Built on first resolve, so a logger registered after the plugin is still picked up.
      useFactory: (c) =>
        (driver ??= new ${Name}Driver({
          host: options.host ?? name,
          backend: SimulatedBackend.named(options.backend),
          timeoutMs: options.timeoutMs,
          ...(c.isRegistered(TOKENS.Logger, true) ? { logger: c.resolve(TOKENS.Logger) } : {}),
        })),
    });
  },
  conformanceEnvironment: (options) => create${Name}ConformanceEnvironment(plugin, options),
};

export default plugin;
`,

    "src/conformance-environment.ts": `/**
 * What the conformance kit needs besides the driver: one host, an image service, the driver's
 * log lines, and controls the kit uses to provoke what a real hypervisor does (slowness, a guest
 * ignoring ACPI). Each scenario gets its own backend, so scenarios never see each other.
 * Drivers are built the way a service builds them: the plugin's \`register\` into a registry.
 */
import {
  DriverRegistry,
  InMemoryImageService,
  MemoryLogger,
  type ComputeDriver,
  type ConformanceEnvironmentFactory,
  type DriverPlugin,
} from "@virtkit/core";
import { SimulatedBackend } from "./backend.js";
import type { ${Name}PluginOptions, ${camel(name)}OptionsSchema } from "./plugin.js";

/** The environment factory for a run with \`options\`. */
export function create${Name}ConformanceEnvironment(
  plugin: DriverPlugin<typeof ${camel(name)}OptionsSchema>,
  options: ${Name}PluginOptions,
): ConformanceEnvironmentFactory {
  return async ({ prefix }) => {
    const backendName = \`\${prefix}-backend\`;
    const backend = SimulatedBackend.named(backendName);
    const imageService = new InMemoryImageService();
    const logger = new MemoryLogger();
    const registry = new DriverRegistry({ imageService, logger });
    const host = \`\${prefix}-host\`;
    return {
      hosts: [host],
      imageService,
      // The kit builds each driver itself from this, through the plugin's \`register\`, as a service does.
      driverSetup: (h: string) => ({ options: { ...options, backend: backendName, host: h }, container: registry.container }),
      // For runners that build drivers through the environment: the same path, by hand.
      async createDriver(h: string = host): Promise<ComputeDriver> {
        if (!registry.has(h)) registry.add(h, plugin, { ...options, backend: backendName, host: h });
        const driver = registry.get(h);
        await driver.initHost(h);
        return driver;
      },
      hypervisorControls: {
        async setLatency(ms: number) {
          backend.setLatency(ms);
        },
      },
      guestControls: {
        async ignoreAcpi(instance, ignore) {
          const vm = backend.find(instance.uuid);
          if (vm) vm.ignoresAcpi = ignore;
        },
      },
      limits: {},
      notes: [],
      logLines: () => logger.lines(),
      async leftovers() {
        return backend.list().map((vm) => \`instance \${vm.name} (\${vm.power})\`);
      },
      async cleanup() {
        await registry.dispose();
        SimulatedBackend.drop(backendName);
      },
    };
  };
}
`,

    "src/conformance.test.ts": `// virtkit's conformance kit as vitest tests: one test per scenario. Unsupported scenarios (not
// declared) and environment limits show as skipped, with the reason.
import { computeServiceFactory } from "@virtkit/conformance";
import { defineConformanceSuite } from "@virtkit/conformance/vitest";
import { validatePluginOptions } from "@virtkit/core";
import { plugin } from "./plugin.js";

const options = validatePluginOptions(plugin, {});

defineConformanceSuite({
  driver: { name: plugin.name, version: plugin.version },
  environment: plugin.conformanceEnvironment!(options),
  // Every driver is built as a service builds it: plugin.register into a container, resolved by token.
  plugin,
  service: computeServiceFactory(),
});
`,

    "src/plugin.test.ts": `import { createDriver, DriverRegistry, UnsupportedOperationError } from "@virtkit/core";
import { describe, expect, it } from "vitest";
import { plugin } from "./plugin.js";

describe("the ${name} plugin", () => {
  it("loads as a service loads it and declares what it implements", async () => {
    const driver = await createDriver(new URL("./index.ts", import.meta.url).pathname, { timeoutMs: "5000" });
    expect(driver.name).toBe("${name}");
    expect(driver.capabilities.pause).toBe(true);
    await expect(driver.suspend({} as never)).rejects.toBeInstanceOf(UnsupportedOperationError);
  });

  it("refuses an unknown option", () => {
    const registry = new DriverRegistry();
    expect(() => registry.add("x", plugin, ["colour=red"])).toThrow(/unknown option key/);
  });
});
`,

    "README.md": `# ${packageName}

A virtkit driver for ${name}, generated by \`virtkit init driver ${name}\`.

As generated it drives \`SimulatedBackend\` (\`src/backend.ts\`), an in-memory stand-in for the
hypervisor, and passes the conformance kit's MUST scenarios for what it declares (the base
contract and \`pause\`). Make it yours by replacing the stand-in's calls in \`src/${name}-driver.ts\`
with your hypervisor's client, and the options in \`src/plugin.ts\` with your connection settings.

| file | what it holds |
| --- | --- |
| \`src/${name}-driver.ts\` | \`${Name}Driver\`, on core's \`BaseComputeDriver\`: what you do not declare is refused with \`UnsupportedOperationError\` |
| \`src/plugin.ts\` | the plugin manifest: name, version, contract range, options schema (zod), \`register\` |
| \`src/conformance-environment.ts\` | hosts, image service and fault controls the kit uses |
| \`src/conformance.test.ts\` | the kit as vitest tests (\`defineConformanceSuite\`) |
| \`src/backend.ts\` | the in-memory stand-in for the hypervisor |

## Installing

The \`@virtkit/*\` packages are not published on the npm registry yet, so a plain \`npm install\`
here fails to find them. Build their tarballs in a checkout of virtkit and install those (their
own dependencies, and the rest of this package's, come from the registry):

\`\`\`sh
# in the virtkit checkout: build, then pack the four packages this one needs
pnpm install && pnpm build
for p in core driver-fake conformance cli; do (cd packages/$p && pnpm pack --pack-destination /tmp/virtkit-tarballs); done
# here: all four in ONE command (each depends on the others, which the registry does not have)
npm install /tmp/virtkit-tarballs/virtkit-{core,driver-fake,conformance,cli}-*.tgz
\`\`\`

npm records them as \`file:\` dependencies in \`package.json\`, the fake under \`dependencies\` (only
the kit and the CLI use it: move it to \`devDependencies\` if you like). Once \`@virtkit/*\` is on
the registry, put the version ranges back and \`npm install\` alone will do.
(\`scripts/pack-check.sh\` in virtkit installs every package from its tarball the same way.)

## Commands

\`\`\`sh
npm test                                               # unit tests and the conformance kit under vitest
npx virtkit conformance run --driver ./src/index.ts    # the kit from the CLI (TypeScript through tsx)
npm run build && npx virtkit conformance run --driver ${packageName}   # the build, by package name
npx virtkit drivers                                    # this package is listed (keyword virtkit-driver)
\`\`\`

## Declaring a capability

Add it to \`super("${name}", ["pause", ...])\` and implement its methods (\`CAPABILITY_METHODS\` in
\`@virtkit/core\` names them). A declared capability without its methods is refused when the
driver is built; a misspelt name does not compile. The kit then runs that capability's scenarios
too, and fails the run when a declared one does not work.
`,
  };
}

/** `acme-cloud` → `acmeCloud`. */
function camel(name: string): string {
  const p = pascalCase(name);
  return p[0]!.toLowerCase() + p.slice(1);
}
