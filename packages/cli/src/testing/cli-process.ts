// The CLI as its tests start it: `bin/run.js` in its own process group (so a signal reaches it as a
// terminal's Ctrl-C does), and fake-based plugin files that slow the driver down. Not shipped.
import { spawn, type ChildProcess } from "node:child_process";
import { writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
/** The CLI's entry point. */
export const CLI_BIN = join(root, "bin", "run.js");
/** The bundled fake's plugin module, as a URL a plugin file can import. */
export const FAKE_PLUGIN_URL = pathToFileURL(join(root, "node_modules", "@virtkit", "driver-fake", "dist", "plugin.js")).href;
/** The environment without a private libvirtd, so no libvirt column or default appears by accident. */
export const CLEAN_ENV: NodeJS.ProcessEnv = Object.fromEntries(
  Object.entries(process.env).filter(([k]) => !k.startsWith("VIRTKIT_LIBVIRT")),
);

/** A running CLI: its output so far, a way to signal its process group, and its end. */
export interface CliProcess {
  readonly child: ChildProcess;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  group(signal: NodeJS.Signals): void;
  out(): string;
  err(): string;
}

/** Starts `virtkit args` in `cwd`, in its own process group. */
export function startCli(args: readonly string[], cwd: string): CliProcess {
  const child = spawn(process.execPath, [CLI_BIN, ...args], { cwd, env: CLEAN_ENV, detached: true, stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on("exit", (code, signal) => resolve({ code, signal })),
  );
  const group = (signal: NodeJS.Signals): void => {
    try {
      process.kill(-child.pid!, signal);
    } catch {
      // Already gone.
    }
  };
  return { child, exited, group, out: () => stdout, err: () => stderr };
}

/** Resolves once `check()` holds, polling every 50 ms; rejects after `timeoutMs`. */
export async function until(check: () => boolean, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * Writes `dir/name.mjs`: the fake under another name whose driver gets `defect`, the JavaScript
 * source of a function over the driver, applied where the kit and a service get the driver: through
 * `register`. `prelude`: module-level source (imports, state) the defect uses.
 */
export async function wrappedFakePlugin(dir: string, name: string, defect: string, prelude = ""): Promise<string> {
  const file = join(dir, `${name}.mjs`);
  await writeFile(
    file,
    `${prelude === "" ? "" : `${prelude}\n`}import { plugin as fake } from ${JSON.stringify(FAKE_PLUGIN_URL)};
const defect = ${defect};
export const plugin = {
  ...fake,
  name: ${JSON.stringify(name)},
  register(container, reg) {
    const inner = container.createChildContainer();
    fake.register(inner, reg);
    let driver;
    container.register(reg.token, { useFactory: () => (driver ??= (() => { const d = inner.resolve(reg.token); defect(d); return d; })()) });
  },
};
`,
  );
  return file;
}

/**
 * Writes `dir/name.mjs`: the fake under another name, each spawn slowed by `ms` (ignoring its
 * signal), touching `marker` when a spawn starts.
 */
export function slowSpawnPlugin(dir: string, name: string, ms: number, marker: string): Promise<string> {
  return wrappedFakePlugin(
    dir,
    name,
    `(d) => {
  const spawn = d.spawn.bind(d);
  d.spawn = async (...args) => { writeFileSync(${JSON.stringify(marker)}, ""); await new Promise((r) => setTimeout(r, ${ms})); return spawn(...args); };
}`,
    `import { writeFileSync } from "node:fs";`,
  );
}

/**
 * Writes `dir/name.mjs`: the fake under another name whose host does not answer when a driver is
 * made for it (every driver setup fails with ECONNREFUSED), as a driver pointed at a dead host.
 */
export async function unreachablePlugin(dir: string, name: string): Promise<string> {
  const file = join(dir, `${name}.mjs`);
  await writeFile(
    file,
    `import { plugin as fake } from ${JSON.stringify(FAKE_PLUGIN_URL)};
export const plugin = {
  ...fake,
  name: ${JSON.stringify(name)},
  conformanceEnvironment(options) {
    const inner = fake.conformanceEnvironment(options);
    return async (ctx) => {
      const env = await inner(ctx);
      const refuse = async () => { throw new Error("connect ECONNREFUSED 127.0.0.1:1"); };
      return { ...env, createDriver: refuse, ...(env.driverSetup ? { driverSetup: refuse } : {}) };
    };
  },
};
`,
  );
  return file;
}

/**
 * Writes `dir/name.mjs`: the fake under another name whose `killAt`-th spawn kills its own process
 * with SIGKILL, as the OOM killer would a worker (under the vitest runner: vitest's fork).
 */
export function dyingWorkerPlugin(dir: string, name: string, killAt: number): Promise<string> {
  return wrappedFakePlugin(
    dir,
    name,
    `(d) => {
  const spawn = d.spawn.bind(d);
  d.spawn = async (...args) => { if (++spawns === ${killAt}) process.kill(process.pid, "SIGKILL"); return spawn(...args); };
}`,
    "let spawns = 0;",
  );
}
