/**
 * The `nested-qemu` conformance environment: two libvirtd hosts in containers (started once per
 * run through testcontainers by `@virtkit/nested-qemu`, removed when the run ends), real QEMU
 * guests (TCG) that boot a tiny Linux with the real qemu-guest-agent, chpasswd and PAM.
 *
 * The driver reaches each daemon over TCP through a port mapped to loopback; the hosts reach each
 * other on the run's Docker network for peer-to-peer migration. The environment checks guests by
 * means that do not trust the driver: the guest agent asked through each host's libvirtd on the
 * environment's own connection (shadow entries, files on the guest's disk, exec), never through
 * the driver's, and `virsh`/`qemu-img` inside the host container for what is on its disks.
 */
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  HypervisorUnavailableError,
  InMemoryImageService,
  InvalidInputError,
  type ConformanceEnvironmentFactory,
  type GuestAgentMode,
  type GuestShutdownRecord,
  type HostFacts,
  type ImageMeta,
  type ImageService,
  type Instance,
  type PluginEnvironment,
  type Secret,
} from "@virtkit/core";
import type * as NestedQemuModule from "@virtkit/nested-qemu";
import type { GuestPowerLog, NestedHost, NestedHosts } from "@virtkit/nested-qemu";
import { buildLibvirtEnvironment, type LibvirtEnvironmentHost } from "./conformance-environment.js";
import type { LibvirtOptionsValidator } from "./plugin-environments.js";

type NestedQemu = typeof NestedQemuModule;

/** The flavor the kit's instances get here: the guest's kernel and initramfs need this much RAM. */
const NESTED_FLAVOR = { name: "m1.nano-nested", memoryMb: 256, vcpus: 1, rootGb: 1 } as const;

/**
 * Seconds a guest agent stays frozen once made unresponsive (it cannot be woken through itself, so
 * the kit's "ok" waits this out). Long enough for what the kit does meanwhile: see it stop answering
 * (0.2 s after the order), then one call with a 0.3 s deadline that must fail within 1.3 s.
 */
const AGENT_FREEZE_SEC = 3;

/** The package, or why it cannot be loaded (it is an optional peer of this one). */
async function loadNestedQemu(): Promise<NestedQemu | string> {
  try {
    return await import("@virtkit/nested-qemu");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? "";
    return `the nested-QEMU environment needs the package @virtkit/nested-qemu installed beside @virtkit/driver-libvirt${code ? ` (${code})` : ""}`;
  }
}

/** Runs a local tool (openssl, qemu-img, debugfs) with a deadline and optional stdin; resolves with its stdout. */
function tool(cmd: string, args: readonly string[], options: { stdin?: string; timeoutMs?: number } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      cmd,
      args,
      { timeout: options.timeoutMs ?? 60_000, maxBuffer: 16 * 1024 * 1024 },
      (err, stdout, stderr) => {
        if (err) reject(new Error(`${cmd} failed: ${(stderr || err.message).split("\n")[0] ?? ""}`));
        else resolve(stdout);
      },
    );
    // A tool that exits without reading its stdin makes the write fail with EPIPE; its exit status
    // (above) is what counts, so the stream error must not become an uncaught exception.
    child.stdin?.on("error", () => undefined);
    child.stdin?.end(options.stdin ?? "");
  });
}

/** SHA-512 crypt by `openssl passwd -6`, the password on stdin (never in argv, where `ps` would show it). */
async function sha512Crypt(salt: string, password: string): Promise<string> {
  return (await tool("openssl", ["passwd", "-6", "-salt", salt, "-stdin"], { stdin: `${password}\n`, timeoutMs: 10_000 })).trim();
}

/** The boot image of this environment: the guest's kernel and initramfs, booted directly. */
export function nestedGuestImage(nq: Pick<NestedQemu, "GUEST_KERNEL_PATH" | "GUEST_INITRD_PATH" | "GUEST_CMDLINE">): ImageMeta {
  return {
    id: "00000000-0000-4000-8000-0000000e5fed",
    name: "virtkit-nested-guest",
    diskFormat: "qcow2",
    containerFormat: "bare",
    properties: {
      hw_qemu_guest_agent: true,
      // The host's entropy through virtio-rng: the guest's first random bytes do not wait.
      hw_rng_model: "virtio",
      os_type: "linux",
      virtkit_kernel_path: nq.GUEST_KERNEL_PATH,
      virtkit_ramdisk_path: nq.GUEST_INITRD_PATH,
      os_command_line: nq.GUEST_CMDLINE,
    },
  };
}

/** What one run shares between its scenarios: the package and the started hosts. */
interface NestedRun {
  readonly nq: NestedQemu;
  readonly hosts: NestedHosts;
}

/**
 * Reads a marker the guest wrote (`/data/virtkit-<key>`, the root of the guest's disk) from an
 * uploaded image, by the environment's own means: `qemu-img info` says what the data is, `qemu-img
 * convert` makes it raw, `debugfs` reads the file out of the ext4 file system. Undefined: no such file.
 */
export async function readMarkerFromImage(images: ImageService, imageId: string, key: string): Promise<string | undefined> {
  const record = await images.get(imageId);
  const data = await images.download(imageId);
  const dir = await mkdtemp(join(tmpdir(), "virtkit-nq-image-"));
  try {
    const file = join(dir, "image");
    await writeFile(file, data);
    const info = JSON.parse(await tool("qemu-img", ["info", "--output=json", file])) as { format?: string };
    if (record.diskFormat !== undefined && info.format !== record.diskFormat) {
      throw new Error(`image ${imageId} says ${record.diskFormat}, qemu-img finds ${String(info.format)}`);
    }
    const raw = join(dir, "image.raw");
    await tool("qemu-img", ["convert", "-O", "raw", file, raw]);
    const out = await tool(DEBUGFS, ["-R", `cat /virtkit-${markerName(key)}`, raw]).catch((err: Error) => {
      if (/not found|File not found/i.test(err.message)) return undefined;
      throw err;
    });
    return out === undefined || out === "" ? undefined : out;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** e2fsprogs' debugfs lives in sbin, which a non-login PATH may lack. */
const DEBUGFS = ["/usr/sbin/debugfs", "/sbin/debugfs"].find((p) => existsSync(p)) ?? "debugfs";

/** What the agent answers for a file the guest does not have. */
const NOT_FOUND = /No such file|not found|ENOENT/i;

/** A marker key as a file name. */
const markerName = (key: string) => key.replace(/[^A-Za-z0-9._-]/g, "_");

/**
 * What the guest saw of its reboots and power offs, from its power log: a boot ended clean when
 * the guest recorded its own shutdown, else hard. Whether an ended boot was a reboot or a power off
 * is not in the guest (a Nova reboot is a shutdown and a start, like a power cycle): an end counts
 * as a power off when the environment saw the instance off after it (`poweredOff`), else as a
 * reboot. `offNow`: the instance is off, and how its last run ended as the hypervisor host saw it
 * (a run cut off before the guest could record its boot is in no guest log).
 */
export function shutdownRecordOf(
  log: GuestPowerLog,
  poweredOff: ReadonlySet<number>,
  offNow: false | "clean" | "hard",
): GuestShutdownRecord {
  const how = (boot: number): "clean" | "hard" => (log.cleanEnds.has(boot) ? "clean" : "hard");
  let lastReboot: "clean" | "hard" | undefined;
  let lastPowerOff: "clean" | "hard" | undefined;
  for (let boot = 1; boot < log.lastBoot; boot++) {
    if (poweredOff.has(boot)) lastPowerOff = how(boot);
    else lastReboot = how(boot);
  }
  if (offNow !== false) lastPowerOff = offNow;
  return {
    acpiRequests: log.acpiRequests,
    ...(lastReboot !== undefined ? { lastReboot } : {}),
    ...(lastPowerOff !== undefined ? { lastPowerOff } : {}),
  };
}

/** The guest checks and controls, through the agent asked inside the host that runs the guest. */
function guestAccess(run: NestedRun, images: ImageService) {
  const { nq } = run;
  const agentOptions = { timeoutMs: 30_000 };
  /** Per instance, the boots the environment saw end in a power off (the instance off after them). */
  const poweredOff = new Map<string, Set<number>>();

  /** The host that has the instance's domain, and its state there (running hosts first). */
  const locate = async (inst: Instance): Promise<{ host: NestedHost; state: string }> => {
    let defined: { host: NestedHost; state: string } | undefined;
    for (const host of run.hosts.hosts) {
      const state = await host.domainState(inst.uuid, { timeoutMs: 15_000 });
      if (state === undefined) continue;
      if (/^(running|paused)/.test(state)) return { host, state };
      defined ??= { host, state };
    }
    if (defined) return defined;
    throw new Error(`no nested host has instance ${inst.uuid}`);
  };

  /** A running guest's agent, once it answers (a guest that just booted takes seconds). */
  const agentOf = async (inst: Instance): Promise<NestedHost> => {
    const { host, state } = await locate(inst);
    if (!state.startsWith("running")) throw new Error(`instance ${inst.uuid} is ${state}: its agent cannot answer`);
    await nq.waitForAgent(host, inst.uuid, { timeoutMs: 150_000 });
    return host;
  };

  /**
   * A file of the guest's disk (`/data/...` in the guest, `/...` on the disk): through the agent
   * while the guest runs, else read off the disk image inside the host (`qemu-img convert -U`, then
   * `debugfs`), which is what a paused or stopped guest has written.
   */
  const readGuest = async (inst: Instance, pathOnDisk: string): Promise<string | undefined> => {
    const { host, state } = await locate(inst);
    if (state.startsWith("running")) {
      await nq.waitForAgent(host, inst.uuid, { timeoutMs: 150_000 });
      try {
        return await nq.readGuestFile(host, inst.uuid, `/data${pathOnDisk}`, agentOptions);
      } catch (err) {
        if (NOT_FOUND.test((err as Error).message)) return undefined;
        throw err;
      }
    }
    const script = `set -eu
disk=$(virsh -q -c qemu:///system domblklist --details "$1" | awk '$2 == "disk" && $3 == "vda" { print $4 }')
[ -n "$disk" ] || { echo "no vda disk" >&2; exit 3; }
raw=$(mktemp /tmp/virtkit-read-XXXXXX)
trap 'rm -f "$raw"' EXIT
qemu-img convert -U -O raw "$disk" "$raw"
debugfs -R "cat $2" "$raw" 2>/dev/null`;
    const out = await host.exec(["sh", "-c", script, "sh", inst.uuid, pathOnDisk], { timeoutMs: 60_000 });
    if (out.exitCode !== 0) throw new Error(`reading ${pathOnDisk} off ${inst.uuid}'s disk failed: ${out.stderr.trim()}`);
    return out.stdout === "" ? undefined : out.stdout;
  };

  /**
   * Runs a shell command in the running guest through its agent (guest-exec returns at once), then
   * waits until `done` says its effect shows, through the agent that just answered.
   */
  const guestShell = async (inst: Instance, command: string, what: string, done: (host: NestedHost) => Promise<boolean>): Promise<void> => {
    const host = await agentOf(inst);
    await nq.agentCommand(host, inst.uuid, { execute: "guest-exec", arguments: { path: "/bin/sh", arg: ["-c", command] } }, agentOptions);
    const until = Date.now() + 15_000;
    while (!(await done(host))) {
      if (Date.now() > until) throw new Error(`the guest of ${inst.uuid} did not ${what} within 15 s`);
      await new Promise((r) => setTimeout(r, 200));
    }
  };
  /** A file of the running guest through its agent; undefined when absent. */
  const agentRead = (host: NestedHost, inst: Instance, path: string): Promise<string | undefined> =>
    nq.readGuestFile(host, inst.uuid, path, agentOptions).catch((err: Error) => {
      if (NOT_FOUND.test(err.message)) return undefined;
      throw err;
    });

  const answers = async (host: NestedHost, inst: Instance): Promise<boolean> =>
    nq
      .agentCommand(host, inst.uuid, { execute: "guest-ping" }, { timeoutMs: 1_000 })
      .then(() => true)
      .catch(() => false);

  /**
   * Which system the running guest is: the guest kernel boots from the host (not from a disk), so
   * the rescue system is told by what the guest sees: this environment's instances have one disk,
   * and a rescued guest sees its rescue disk as well (a second virtio disk, /sys/block/vdb).
   */
  const systemOf = async (host: NestedHost, inst: Instance): Promise<"rescue" | "instance"> =>
    (await agentRead(host, inst, "/sys/block/vdb/size")) === undefined ? "instance" : "rescue";

  /** Whether `password` opens `user` of the running guest: its shadow entry (in RAM) checked here. */
  const opens = async (host: NestedHost, inst: Instance, user: string, password: Secret): Promise<boolean> => {
    const shadow = await nq.readGuestFile(host, inst.uuid, "/etc/shadow", agentOptions);
    const hash = shadow
      .split("\n")
      .find((l) => l.startsWith(`${user}:`))
      ?.split(":")[1];
    // The guest's PAM writes SHA-512 crypt; anything else (locked, absent) is not this password.
    const salt = hash !== undefined ? /^\$6\$([^$]+)\$/.exec(hash)?.[1] : undefined;
    if (hash === undefined || salt === undefined) return false;
    return (await sha512Crypt(salt, password.reveal())) === hash;
  };

  return {
    async verifyAdminPassword(inst: Instance, user: string, password: Secret): Promise<boolean> {
      // The guest keeps /etc/shadow in RAM (its initramfs): a guest that is not running has no
      // password in effect but the image's, which no test sets; nor has one running its rescue system.
      const { state } = await locate(inst);
      if (!state.startsWith("running")) return false;
      const host = await agentOf(inst);
      if ((await systemOf(host, inst)) === "rescue") return false;
      return opens(host, inst, user, password);
    },
    async verifyRescuePassword(inst: Instance, user: string, password: Secret): Promise<boolean> {
      const { state } = await locate(inst);
      if (!state.startsWith("running")) return false;
      const host = await agentOf(inst);
      if ((await systemOf(host, inst)) !== "rescue") return false;
      // A driver may give the password once the rescue system's agent is up (libvirt does, like a
      // cloud-init reading Nova's config drive at boot): asked again for a while before "no".
      const until = Date.now() + 120_000;
      for (;;) {
        if (await opens(host, inst, user, password)) return true;
        if (Date.now() > until) return false;
        await new Promise((r) => setTimeout(r, 2_000));
      }
    },
    agentControls: {
      async setAgent(inst: Instance, mode: GuestAgentMode): Promise<void> {
        if (mode === "ok") {
          // A frozen agent wakes by itself (it cannot be woken through itself): wait for it.
          const { host } = await locate(inst);
          await nq.waitForAgent(host, inst.uuid, { timeoutMs: (AGENT_FREEZE_SEC + 60) * 1000 });
          return;
        }
        // "absent" and "unresponsive" alike: the agent stops answering (SIGSTOP) for a while.
        const host = await agentOf(inst);
        await nq.agentCommand(
          host,
          inst.uuid,
          {
            execute: "guest-exec",
            arguments: {
              path: "/bin/sh",
              arg: [
                "-c",
                `p=$(pidof qemu-ga); setsid sh -c "sleep 0.2; kill -STOP $p; sleep ${AGENT_FREEZE_SEC}; kill -CONT $p" >/dev/null 2>&1 </dev/null &`,
              ],
            },
          },
          agentOptions,
        );
        const until = Date.now() + 10_000;
        while (await answers(host, inst)) {
          if (Date.now() > until) throw new Error(`the agent of ${inst.uuid} still answers after being stopped`);
        }
      },
    },
    guestControls: {
      async whenBooted(inst: Instance, options?: { readonly signal?: AbortSignal; readonly timeoutMs?: number }): Promise<void> {
        // Without an agent channel the environment has no way into the guest, and with less
        // memory than this environment's flavor the guest's kernel cannot boot: nothing to wait for.
        if (inst.imageMeta.properties.hw_qemu_guest_agent !== true) return;
        if (inst.flavor.memoryMb < NESTED_FLAVOR.memoryMb) return;
        const { host } = await locate(inst);
        await nq.waitForAgent(host, inst.uuid, {
          timeoutMs: Math.min(options?.timeoutMs ?? 150_000, 150_000),
          ...(options?.signal ? { signal: options.signal } : {}),
        });
      },
      readImageData: (imageId: string, key: string) => readMarkerFromImage(images, imageId, key),
      async bootedSystem(inst: Instance): Promise<"rescue" | "instance"> {
        return systemOf(await agentOf(inst), inst);
      },
      async removeAccount(inst: Instance, user: string): Promise<void> {
        if (!/^[A-Za-z0-9._-]+$/.test(user)) throw new Error(`cannot remove account ${JSON.stringify(user)}: not a plain account name`);
        // The guest's account files live in RAM (its initramfs): gone until the next boot.
        const listed = async (host: NestedHost) =>
          ((await agentRead(host, inst, "/etc/passwd")) ?? "").split("\n").some((l) => l.startsWith(`${user}:`));
        await guestShell(inst, `sed -i '/^${user}:/d' /etc/passwd /etc/shadow /etc/group`, `remove account ${user}`, async (host) => !(await listed(host)));
      },
      async bootCount(inst: Instance): Promise<number> {
        const text = (await readGuest(inst, nq.GUEST_BOOT_COUNTER.replace(/^\/data/, ""))) ?? "";
        const n = Number(text.trim());
        if (!Number.isInteger(n) || n < 1) throw new Error(`the guest's boot counter reads "${text.trim().slice(0, 20)}"`);
        return n;
      },
      async ignoreAcpi(inst: Instance, ignore: boolean): Promise<void> {
        // The guest's acpid handler keeps counting presses but does nothing while the flag is on
        // its disk (so it survives the guest's reboots, as a guest without a handler would).
        const flag = nq.GUEST_ACPI_IGNORE_FLAG;
        await guestShell(
          inst,
          ignore ? `echo ignore > ${flag} && sync` : `rm -f ${flag} && sync`,
          ignore ? "start ignoring ACPI" : "honour ACPI again",
          async (host) => ((await agentRead(host, inst, flag)) !== undefined) === ignore,
        );
      },
      async shutdownRecord(inst: Instance): Promise<GuestShutdownRecord> {
        const { host, state } = await locate(inst);
        const text = (await readGuest(inst, nq.GUEST_POWER_LOG.replace(/^\/data/, ""))) ?? "";
        const log = nq.parseGuestPowerLog(text);
        if (log.lastBoot < 1) throw new Error(`the guest's power log of ${inst.uuid} records no boot`);
        let offNow: false | "clean" | "hard" = false;
        if (state.startsWith("shut off")) {
          // Off unless saved (a managed save is a suspended guest). How the last run ended, from
          // libvirt's log of the domain on the host: "reason=shutdown" only when the guest itself
          // powered the machine off; destroyed, crashed, or a dropped save are hard.
          const script = `virsh -q -c qemu:///system dominfo "$1" | grep -q '^Managed save: *yes' && { echo saved-now; exit 0; }
n=$(virsh -q -c qemu:///system domname "$1") || exit 3
grep -o 'shutting down, reason=[a-z ]*' "/var/log/libvirt/qemu/$n.log" 2>/dev/null | tail -n 1 | sed 's/.*reason=//'`;
          const out = await host.exec(["sh", "-c", script, "sh", inst.uuid], { timeoutMs: 15_000 });
          if (out.exitCode !== 0) throw new Error(`reading how ${inst.uuid} last stopped failed: ${out.stderr.trim()}`);
          const reason = out.stdout.trim();
          if (reason !== "saved-now") {
            offNow = reason === "shutdown" ? "clean" : reason === "" ? (log.cleanEnds.has(log.lastBoot) ? "clean" : "hard") : "hard";
          }
        }
        const seen = poweredOff.get(inst.uuid) ?? new Set<number>();
        if (offNow !== false) poweredOff.set(inst.uuid, seen.add(log.lastBoot));
        return shutdownRecordOf(log, seen, offNow);
      },
      async writeData(inst: Instance, key: string, value: string): Promise<void> {
        const b64 = Buffer.from(value).toString("base64");
        const path = `/data/virtkit-${markerName(key)}`;
        // Done when the file reads back.
        await guestShell(inst, `echo ${b64} | base64 -d > "${path}" && sync`, `write ${key}`, async (host) => (await agentRead(host, inst, path)) === value);
      },
      readData: (inst: Instance, key: string) => readGuest(inst, `/virtkit-${markerName(key)}`),
    },
  };
}

/**
 * Why no Docker engine can be used, naming where it looked (DOCKER_HOST, scripts/docker.sh's
 * socket or Docker's default) and how to start one; undefined when one answers. Points
 * testcontainers at the engine (it writes DOCKER_HOST into `env`).
 */
async function engineUnavailable(nq: NestedQemu, env: NodeJS.ProcessEnv, timeoutMs: number): Promise<string | undefined> {
  const given = env.DOCKER_HOST !== undefined && env.DOCKER_HOST !== "";
  const at = nq.configureTestcontainers(env);
  if (await nq.engineAnswers(undefined, { timeoutMs })) return undefined;
  const where = given
    ? `${at} (from DOCKER_HOST)`
    : at === "unix:///var/run/docker.sock"
      ? `${at} (Docker's default socket; DOCKER_HOST is unset)`
      : `${at} (scripts/docker.sh's socket; DOCKER_HOST is unset)`;
  return `no Docker engine answers at ${where}: start virtkit's private one with bash scripts/docker.sh start, then eval "$(bash scripts/docker.sh env)", or set DOCKER_HOST to a running engine`;
}

/** The session this process was given by its parent (the CLI, to its vitest worker), read before any factory sets one. */
const INHERITED_SESSION = process.env.VIRTKIT_NESTED_QEMU_SESSION || undefined;

/**
 * Removes what this process's children left in `session` (a worker killed while its hosts were
 * starting). `handedOn`: the hosts were started by a child, not here; a create it sent just before
 * it died may still land, so a second pass follows a moment later.
 */
async function sweepSession(nq: NestedQemu, session: string, handedOn: boolean): Promise<void> {
  for (let pass = 0; pass < (handedOn ? 2 : 1); pass++) {
    if (pass > 0) await new Promise((r) => setTimeout(r, 1_000));
    const swept = await nq.sweepNestedQemu({ session, timeoutMs: 30_000 }).catch((err: unknown) => ({
      containers: [],
      networks: [],
      volumes: [],
      failures: [err instanceof Error ? err.message : String(err)],
    }));
    if (swept.failures.length > 0) {
      process.stderr.write(`virtkit: nested-qemu: could not remove ${swept.failures.join("; ")} (the next run sweeps it)\n`);
    }
  }
}

/** The driver's options on the nested hosts unless the run sets them. */
export const NESTED_DRIVER_DEFAULTS = { softRebootTimeoutSec: 5, timeoutMs: 120_000 } as const;

/**
 * The guest CPU unless the run names its own cpuMode or cpuModels (the two go together): the one an
 * operator running TCG would pick (Nova's cpu_mode=custom, cpu_models=qemu64), and the CPU of the
 * bare boot the figures compare with. The host-model default there is the container host's EPYC,
 * whose AVX2 and 5-level paging QEMU emulates too: about 0.5 s more per boot, measured.
 */
export const NESTED_GUEST_CPU = { cpuMode: "custom", cpuModels: ["qemu64"] } as const;

/** Why the nested column leaves a scenario to the libvirt-qemu column (the start of each reason). */
const COVERED_ON_ONE_HOST = "covered by the libvirt-qemu column (the same daemon code on one host)";

/**
 * Scenarios outside the skipped groups that ask nothing of a booted guest or a second host: argument
 * checks, deadlines, events, CPU time, snapshot metadata, the service's own bookkeeping. Each costs a
 * guest boot or more here (6-17 s under TCG) and shows nothing the libvirt-qemu column does not.
 */
export const SAME_ON_ONE_HOST = [
  "input.bad-arguments",
  "input.options-omitted",
  "lifecycle.deadlines",
  "lifecycle.events",
  "lifecycle.cpu-time",
  "lifecycle.cpu-time-grows",
  "lifecycle.power-off-hard",
  "events.listeners-independent",
  "snapshot.image-callback-stall",
  "snapshot.image-inherits-properties",
  "service.lifecycle",
  "service.image-snapshot",
  "service.instance-snapshots",
] as const;

/** The `nested-qemu` environment of the libvirt plugin. */
export function nestedQemuEnvironment(validate: LibvirtOptionsValidator): PluginEnvironment {
  return {
    name: "nested-qemu",
    // A scenario boots one to three guests under TCG on two cores: seconds each, more under load.
    scenarioTimeoutMs: 180_000,
    // Two cores, TCG: a third guest booting at once only makes every deadline unfair.
    maxParallel: 2,
    description:
      "two libvirtd hosts in containers (testcontainers) with real QEMU guests (TCG) that boot a Linux with the real guest agent: password set and checked in the guest, live and block migration between the hosts, snapshots with the guest's data",
    async unavailable(env, options) {
      const nq = await loadNestedQemu();
      if (typeof nq === "string") return nq;
      return engineUnavailable(nq, env as NodeJS.ProcessEnv, options?.timeoutMs ?? 5_000);
    },
    async toBuild(_env, options) {
      const nq = await loadNestedQemu();
      if (typeof nq === "string") return undefined;
      // Asked where the environment is available (the engine answers): no second ping here.
      const layers = await nq.layersToBuild({
        ...(options?.signal ? { signal: options.signal } : {}),
        timeoutMs: options?.timeoutMs ?? 10_000,
      });
      if (layers.length === 0) return undefined;
      return `the first run builds the image first (about a minute from nothing; ${layers.join(", ")}), or build it now: virtkit env build nested-qemu`;
    },
    async prepare(progress, options) {
      const nq = await loadNestedQemu();
      if (typeof nq === "string") throw new HypervisorUnavailableError("nested-qemu", nq);
      // Said plainly up front, not as the socket's raw ENOENT from the first build step.
      const noEngine = await engineUnavailable(nq, process.env, Math.min(options?.timeoutMs ?? 5_000, 5_000));
      if (noEngine !== undefined) throw new HypervisorUnavailableError("nested-qemu", noEngine);
      await nq.ensureImage({
        ...(options?.signal ? { signal: options.signal } : {}),
        onProgress: (p) => {
          if (p.phase !== "output") progress(`${p.layer}: ${p.phase} ${p.message}`);
        },
      });
    },
    async conformanceEnvironment(raw): Promise<ConformanceEnvironmentFactory> {
      for (const key of ["uri", "virtType", "liveMigrationInboundAddr", "allowPasswordOverTcp"] as const) {
        if (raw[key] !== undefined) {
          throw new InvalidInputError(`option.${key}`, `the nested-qemu environment sets ${key} for each of its hosts itself`);
        }
      }
      // Validated with a stand-in URI: each host gets its own below.
      const { uri: _placeholder, ...options } = validate({ ...raw, uri: "qemu+tcp://127.0.0.1/system" });
      const nqOrReason = await loadNestedQemu();
      if (typeof nqOrReason === "string") throw new HypervisorUnavailableError("nested-qemu", nqOrReason);
      const nq = nqOrReason;
      nq.configureTestcontainers();

      // This process's children (the CLI's vitest worker) label what they start with this
      // factory's session; its dispose removes what they left (a worker killed at the end of an
      // interrupted run cannot). Only the first factory of a process hands its session on.
      const session = `${process.pid.toString(36)}-${randomBytes(4).toString("hex")}`;
      const ownsSession = process.env[nq.SESSION_ENV] === undefined;
      if (ownsSession) process.env[nq.SESSION_ENV] = session;

      let started: Promise<NestedRun> | undefined;
      // Aborted by dispose: a start under way stops, removes what it created, and only then rejects.
      let startAbort = new AbortController();
      const start = (): Promise<NestedRun> =>
        (started ??= (async () => {
          const signal = startAbort.signal;
          // Built here only when missing or out of date (`virtkit env build nested-qemu` builds it
          // ahead of time): a build of a minute must show, a cached image says nothing.
          const image = await nq.ensureImage({
            signal,
            onProgress: (p) => {
              if (p.phase === "start" || p.phase === "done" || p.phase === "foreign") process.stderr.write(`virtkit: nested-qemu image: ${p.layer}: ${p.phase} ${p.message}\n`);
            },
          });
          const hosts = await nq.startNestedHosts({
            image: image.image,
            count: 2,
            timeoutMs: 180_000,
            signal,
            // The runner owns SIGINT/SIGTERM and disposes this environment: a handler here that
            // raised the signal again would be taken for a second Ctrl-C (exit at once, no report).
            handleSignals: false,
            ...(INHERITED_SESSION !== undefined ? { session: INHERITED_SESSION } : {}),
          });
          return { nq, hosts };
        })());

      const factory = async (context: Parameters<ConformanceEnvironmentFactory>[0]) => {
        const run = await start();
        const hosts: LibvirtEnvironmentHost[] = run.hosts.hosts.map((h) => ({
          // The driver knows each host by its address on the run's network: the name the other
          // host's libvirtd dials for a peer-to-peer migration.
          name: h.address,
          options: {
            ...NESTED_DRIVER_DEFAULTS,
            ...(options.cpuMode === undefined && options.cpuModels === undefined ? NESTED_GUEST_CPU : {}),
            ...options,
            uri: h.uri,
            virtType: "qemu",
            liveMigrationInboundAddr: h.address,
            // The daemon's TCP port is mapped to 127.0.0.1 only: the password stays on this machine.
            allowPasswordOverTcp: true,
          },
        }));
        const imageService = new InMemoryImageService();
        const access = guestAccess(run, imageService);
        const hostFacts = async (name: string): Promise<HostFacts> => {
          const host = run.hosts.hosts.find((x) => x.address === name);
          if (!host) throw new Error(`no nested host ${name}`);
          // What the host's kernel says, read inside its container (not through libvirtd): the
          // memory of its NUMA nodes where it has them (a machine with hot-plugged memory shows
          // more in /proc/meminfo than its nodes hold, and the nodes are what guests get).
          const script =
            "nproc --all; if ls /sys/devices/system/node/node*/meminfo >/dev/null 2>&1; then " +
            "cat /sys/devices/system/node/node*/meminfo | awk '/MemTotal:/ { s += $4 } END { print s }'; " +
            "else awk '/^MemTotal:/ { print $2 }' /proc/meminfo; fi";
          const out = await host.exec(["sh", "-c", script], { timeoutMs: 15_000 });
          const [cpus, memKiB] = out.stdout.trim().split("\n").map(Number);
          return { vcpus: cpus ?? 0, memoryMb: Math.floor((memKiB ?? 0) / 1024) };
        };
        return buildLibvirtEnvironment(context, {
          hosts,
          imageService,
          bootImage: nestedGuestImage(nq),
          // The guest's kernel and initramfs do not boot in the kit's default 64 MiB.
          flavor: NESTED_FLAVOR,
          ...access,
          // Less than the guest's RAM holds once booted (its kernel, a 66 MB file, and its 12 MB
          // initramfs unpacked; a move capped at 1 MiB/s took 88 s): a cap from it keeps a slowed
          // move at least as long as asked.
          migrationFloorMiB: 32,
          hostFacts,
          // Each host keeps its disks in its own container: a live migration must copy them.
          sharesStorage: () => false,
          async environmentFault() {
            const faults = await Promise.all(run.hosts.hosts.map((h) => h.fault().catch(() => undefined)));
            const found = faults.filter((f): f is string => f !== undefined);
            return found.length > 0 ? found.join("; ") : undefined;
          },
          // Real guests cost seconds each: what a single QEMU host proves as well runs in the
          // libvirt-qemu column; this one runs what needs a guest that boots, or two hosts.
          limits: {
            ...Object.fromEntries(
              ["deadlines", "explore"].map((group) => [
                group,
                `${COVERED_ON_ONE_HOST}; the nested environment runs what needs a booted guest or two hosts`,
              ]),
            ),
            // Not all of it: the cells that need a guest agent (set-admin-password on a running or
            // rescued guest) or a crash are skipped there too and run in no libvirt column yet.
            state:
              "the state table runs in the libvirt-qemu column (the same daemon code on one host), except its cells that need a guest agent (set-admin-password on a running or rescued guest) or a crashed guest, which no libvirt column runs yet",
            "lifecycle.concurrent-instances":
              `${COVERED_ON_ONE_HOST}; four guests booting at once here would prove nothing more, slowly`,
            ...Object.fromEntries(
              SAME_ON_ONE_HOST.map((id) => [
                id,
                `${COVERED_ON_ONE_HOST}: it checks the driver's own answers, not what the guest does`,
              ]),
            ),
            "migration.force-complete":
              "this environment slows a migration by capping its bandwidth, which neither a pause nor post-copy can overcome; the faithful control (a guest dirtying memory faster than the link) is not built yet",
          },
          notes: [
            ...(run.hosts.swept.length > 0
              ? [`swept ${run.hosts.swept.length} leftovers of an earlier nested-qemu run whose process is gone (killed before its cleanup): ${run.hosts.swept.join(", ")}`]
              : []),
            `nested QEMU: two libvirtd hosts in containers (image ${run.hosts.image}), real guests under TCG; guests checked through their agent, asked on the environment's own connection to each host's libvirtd, never through the driver`,
            "the guest honours ACPI (busybox acpid powers it off cleanly) and records every power-button press and every clean shutdown on its own disk; made to ignore ACPI, it counts the presses and does nothing, and a soft reboot falls back to hard after 5 s (softRebootTimeoutSec)",
          ],
        });
      };
      return Object.assign(factory, {
        // A guest start here: libvirt's start of QEMU (about 1 s) and a TCG boot to the agent (3-4 s
        // on two idle cores, more while the other lane boots too). Runs start the scenarios with
        // the most starts first, so a 30 s one does not run alone at the end.
        guestStartMs: 5_000,
        // Two hosts for the whole run: a scenario that fills one must run alone.
        sharedHosts: true,
        async dispose() {
          // A start under way (an interrupt during the hosts' start) is told to stop and waited for:
          // the run ends with nothing of it left, not with containers still being created.
          const startedHere = started !== undefined;
          startAbort.abort(new Error("the nested-qemu environment was disposed"));
          const run = await started?.catch(() => undefined);
          started = undefined;
          startAbort = new AbortController();
          try {
            await run?.hosts.stop({ timeoutMs: 60_000 });
          } finally {
            if (ownsSession) {
              await sweepSession(nq, session, !startedHere);
              if (process.env[nq.SESSION_ENV] === session) delete process.env[nq.SESSION_ENV];
            }
          }
        },
      });
    },
  };
}
