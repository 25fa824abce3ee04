/**
 * The nested-QEMU image, built here (no registry is reachable) in three layers, each tagged by a
 * hash of its inputs and built only when no image has that tag:
 *   base        Debian minbase by debootstrap from this machine's apt mirror, `docker import`ed
 *   hypervisor  libvirtd + QEMU, configured for a container (`host-layer.ts`)
 *   guest       the tiny guest's kernel and initramfs (`guest-layer.ts`)
 * A layer's hash covers its parent's tag, so a changed base rebuilds everything above it.
 */
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { createInterface } from "node:readline";
import type Docker from "dockerode";
import { abortable, deadlineSignal } from "./abortable.js";
import { debianSources, readAptEntries, type DebianSources } from "./apt-sources.js";
import { dockerClient } from "./docker-engine.js";
import { GUEST_CMDLINE, GUEST_FILES, GUEST_INITRD_PATH, GUEST_KERNEL_PATH, guestDockerfile } from "./guest-layer.js";
import { HOST_FILES, hostDockerfile } from "./host-layer.js";
import { LAYER_HASH_LABEL, LAYER_LABEL } from "./labels.js";

/** Bump when a layer's recipe changes in a way its inputs do not show. */
const RECIPE_VERSION = 1;
/** Image repositories of the layers; the tag is the hash of the inputs. */
export const IMAGE_REPOSITORY = "virtkit-nested-qemu";
/** The layers, bottom up. */
export type LayerName = "base" | "hypervisor" | "guest";

/** One progress report of {@link ensureImage}. */
export interface ImageProgress {
  readonly layer: LayerName;
  /**
   * `cached`: the tag holds this build's image; `foreign`: it holds another (rebuilt); `start` /
   * `done`: the layer's build; `output`: a line of it.
   */
  readonly phase: "cached" | "foreign" | "start" | "output" | "done";
  readonly message: string;
  /** Since `ensureImage` began. */
  readonly elapsedMs: number;
}

/** Options of {@link ensureImage}. */
export interface EnsureImageOptions {
  readonly onProgress?: (progress: ImageProgress) => void;
  readonly signal?: AbortSignal;
  /** Deadline of the whole build (default 15 minutes). */
  readonly timeoutMs?: number;
  /** Rebuild every layer even when its tag exists. */
  readonly force?: boolean;
  /** The engine (default: DOCKER_HOST, else scripts/docker.sh's socket). */
  readonly docker?: Docker;
  /** The apt configuration directory the mirror is read from (default /etc/apt). */
  readonly aptRoot?: string;
}

/** What {@link ensureImage} made or found. */
export interface NestedQemuImage {
  /** The image the hosts run (the guest layer's tag). */
  readonly image: string;
  /** The guest's kernel, initramfs and command line, inside the image. */
  readonly kernelPath: string;
  readonly initrdPath: string;
  readonly cmdline: string;
  readonly layers: readonly {
    readonly name: LayerName;
    readonly tag: string;
    readonly built: boolean;
    readonly ms: number;
  }[];
  readonly totalMs: number;
}

export interface LayerPlan {
  readonly name: LayerName;
  readonly tag: string;
  readonly hash: string;
  /** Builds the layer under `tag`. */
  build(ctx: BuildContext): Promise<void>;
}

interface BuildContext {
  readonly docker: Docker;
  readonly signal: AbortSignal;
  readonly report: (phase: ImageProgress["phase"], message: string) => void;
}

function hashOf(value: unknown): string {
  return createHash("sha256").update(JSON.stringify(value)).digest("hex").slice(0, 16);
}

/** apt settings of the image: the mirror may be a dated snapshot whose Release files have "expired". */
const APT_CONF = `Acquire::Check-Valid-Until "false";
Acquire::Languages "none";
APT::Install-Recommends "false";
`;
/** Keeps package scripts from starting services inside a build (as Docker's Debian images do). */
const POLICY_RC_D = "#!/bin/sh\nexit 101\n";

/** The three layers with their tags, from this machine's apt sources. */
export async function planLayers(aptRoot = "/etc/apt"): Promise<LayerPlan[]> {
  const sources = debianSources(await readAptEntries(aptRoot));
  const baseHash = hashOf({
    layer: "base",
    RECIPE_VERSION,
    sources,
    APT_CONF,
    POLICY_RC_D,
    DPKG_UNSAFE_IO,
    BASE_SCRIPT,
  });
  const baseTag = `${IMAGE_REPOSITORY}/base:${baseHash}`;
  const hostHash = hashOf({
    layer: "hypervisor",
    RECIPE_VERSION,
    parent: baseTag,
    files: HOST_FILES,
    df: hostDockerfile("P", {}),
  });
  const hostTag = `${IMAGE_REPOSITORY}/hypervisor:${hostHash}`;
  const guestHash = hashOf({
    layer: "guest",
    RECIPE_VERSION,
    parent: hostTag,
    files: GUEST_FILES,
    df: guestDockerfile("P", {}),
  });
  const guestTag = `${IMAGE_REPOSITORY}/guest:${guestHash}`;
  return [
    {
      name: "base",
      tag: baseTag,
      hash: baseHash,
      build: (ctx) => buildBase(ctx, baseTag, sources, { [LAYER_LABEL]: "base", [LAYER_HASH_LABEL]: baseHash }),
    },
    {
      name: "hypervisor",
      tag: hostTag,
      hash: hostHash,
      build: (ctx) =>
        buildFromDockerfile(
          ctx,
          hostTag,
          hostDockerfile(baseTag, { [LAYER_LABEL]: "hypervisor", [LAYER_HASH_LABEL]: hostHash }),
          HOST_FILES,
        ),
    },
    {
      name: "guest",
      tag: guestTag,
      hash: guestHash,
      build: (ctx) =>
        buildFromDockerfile(
          ctx,
          guestTag,
          guestDockerfile(hostTag, { [LAYER_LABEL]: "guest", [LAYER_HASH_LABEL]: guestHash }),
          GUEST_FILES,
        ),
    },
  ];
}

/**
 * Whether `plan`'s tag holds this build's image: `missing`, `ours`, or `foreign` (an image retagged
 * or built from other inputs under the same tag: its layer labels say what it is). Exported for tests.
 */
export async function imageState(docker: Docker, plan: LayerPlan, signal: AbortSignal): Promise<"missing" | "ours" | { foreign: string }> {
  let labels: Record<string, string> | null | undefined;
  try {
    const info = await abortable(docker.getImage(plan.tag).inspect(), { signal, timeoutMs: 30_000, what: `docker image inspect ${plan.tag}` });
    labels = info.Config?.Labels;
  } catch (err) {
    if ((err as { statusCode?: number }).statusCode === 404) return "missing";
    throw err;
  }
  const layer = labels?.[LAYER_LABEL];
  const inputs = labels?.[LAYER_HASH_LABEL];
  if (layer === plan.name && inputs === plan.hash) return "ours";
  return { foreign: `labelled ${LAYER_LABEL}=${layer ?? "(none)"} ${LAYER_HASH_LABEL}=${inputs ?? "(none)"}, not ${plan.name} ${plan.hash}` };
}

/**
 * The nested-QEMU image: found by the tags of its inputs, or built (only the layers whose inputs
 * changed). Reports progress through `onProgress`.
 */
export async function ensureImage(options: EnsureImageOptions = {}): Promise<NestedQemuImage> {
  const started = Date.now();
  const docker = options.docker ?? dockerClient();
  const signal = deadlineSignal(options.signal, options.timeoutMs ?? 15 * 60_000);
  const plans = await planLayers(options.aptRoot);
  const layers: { name: LayerName; tag: string; built: boolean; ms: number }[] = [];
  let rebuildFromHere = options.force === true;
  for (const plan of plans) {
    const report = (phase: ImageProgress["phase"], message: string) =>
      options.onProgress?.({ layer: plan.name, phase, message, elapsedMs: Date.now() - started });
    const layerStart = Date.now();
    // A rebuilt parent changes no tag above it (tags hash inputs, not image ids), so the layers
    // above a rebuilt one are rebuilt too: they must be FROM the new parent.
    if (!rebuildFromHere) {
      const state = await imageState(docker, plan, signal);
      if (state === "ours") {
        report("cached", plan.tag);
        layers.push({ name: plan.name, tag: plan.tag, built: false, ms: Date.now() - layerStart });
        continue;
      }
      // Not trusted: every guest of the run would boot whatever it is.
      if (state !== "missing") report("foreign", `${plan.tag} holds another image (${state.foreign}): building it anew`);
    }
    rebuildFromHere = true;
    report("start", plan.tag);
    await plan.build({ docker, signal, report });
    const ms = Date.now() - layerStart;
    report("done", `${plan.tag} in ${(ms / 1000).toFixed(1)} s`);
    layers.push({ name: plan.name, tag: plan.tag, built: true, ms });
  }
  if (layers.some((l) => l.built))
    await pruneOldTags(docker, plans, signal, (m) =>
      options.onProgress?.({ layer: "guest", phase: "output", message: m, elapsedMs: Date.now() - started }),
    );
  return {
    image: plans[plans.length - 1]!.tag,
    kernelPath: GUEST_KERNEL_PATH,
    initrdPath: GUEST_INITRD_PATH,
    cmdline: GUEST_CMDLINE,
    layers,
    totalMs: Date.now() - started,
  };
}

/**
 * The layers a run would have to build before it starts (missing, or another image under the tag),
 * by tag; empty when the image is built. Asks the engine only, builds nothing.
 */
export async function layersToBuild(
  options: Pick<EnsureImageOptions, "docker" | "aptRoot" | "signal" | "timeoutMs"> = {},
): Promise<string[]> {
  const docker = options.docker ?? dockerClient();
  const signal = deadlineSignal(options.signal, options.timeoutMs ?? 30_000);
  const out: string[] = [];
  for (const plan of await planLayers(options.aptRoot)) {
    // Above a layer to build, every layer is rebuilt (its parent changes).
    if (out.length > 0 || (await imageState(docker, plan, signal)) !== "ours") out.push(plan.tag);
  }
  return out;
}

/**
 * Removes the layers' images of earlier inputs (each is hundreds of MB). Best effort: an image a
 * container still uses, or another tag's parent, stays.
 */
async function pruneOldTags(
  docker: Docker,
  plans: readonly LayerPlan[],
  signal: AbortSignal,
  say: (m: string) => void,
) {
  const current = new Set(plans.map((p) => p.tag));
  // Top layer first, so a parent is no longer in use when its turn comes.
  for (const plan of [...plans].reverse()) {
    const repo = plan.tag.slice(0, plan.tag.lastIndexOf(":"));
    const images = await abortable(docker.listImages({ filters: { reference: [repo] } }), {
      signal,
      timeoutMs: 30_000,
      what: "docker images",
    }).catch(() => []);
    for (const image of images) {
      for (const tag of image.RepoTags ?? []) {
        if (current.has(tag) || !tag.startsWith(`${repo}:`)) continue;
        try {
          await abortable(docker.getImage(tag).remove(), { signal, timeoutMs: 60_000, what: `docker rmi ${tag}` });
          say(`removed the outdated image ${tag}`);
        } catch {
          // In use or a parent of another image: left for later.
        }
      }
    }
  }
}

/** Makes dpkg skip fsync in later layers' apt installs (as Docker's own Debian images do). */
const DPKG_UNSAFE_IO = "force-unsafe-io\n";

/**
 * Runs debootstrap and streams the root file system as a tar to stdout. In a private mount
 * namespace the target is a tmpfs (dpkg's fsyncs cost nothing there: 80 s instead of 140-175 s
 * on this disk), freed when the namespace ends, whatever happens to this process.
 */
const BASE_SCRIPT = `set -eu
if [ "$IN_TMPFS" = 1 ]; then
  mount --make-rprivate /
  mount -t tmpfs -o size=4g,mode=0755 virtkit-nq-base "$WORK/target"
fi
R="$WORK/target/rootfs"
"$DEBOOTSTRAP" --variant=minbase "$SUITE" "$R" "$MIRROR" >&2
rm -f "$R/etc/apt/sources.list"
cp -a "$WORK/overlay/." "$R/"
# What the engine provides at run time, and what only served debootstrap.
rm -rf "$R/dev" "$R/proc" "$R/sys" "$R/var/cache/apt/archives" "$R/var/lib/apt/lists"
mkdir -p "$R/dev" "$R/proc" "$R/sys" "$R/var/cache/apt/archives/partial" "$R/var/lib/apt/lists/partial"
echo "importing the root file system" >&2
tar --numeric-owner -C "$R" -c .
`;

/** Layer (a): debootstrap minbase from the machine's mirror, imported as an image. */
async function buildBase(ctx: BuildContext, tag: string, sources: DebianSources, labels: Readonly<Record<string, string>>): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error("building the base image runs debootstrap, which needs root");
  const debootstrap = ["/usr/sbin/debootstrap", "/sbin/debootstrap"].find((p) => existsSync(p));
  if (debootstrap === undefined) {
    throw new Error("debootstrap is not installed (`bash scripts/docker.sh start` installs it)");
  }
  const work = await mkdtemp(join(tmpdir(), "virtkit-nq-base-"));
  try {
    const overlay: Record<string, { content: string; mode: number }> = {
      "etc/apt/sources.list.d/debian.sources": { content: sources.sourcesFile, mode: 0o644 },
      "etc/apt/apt.conf.d/90virtkit": { content: APT_CONF, mode: 0o644 },
      "etc/dpkg/dpkg.cfg.d/90virtkit-unsafe-io": { content: DPKG_UNSAFE_IO, mode: 0o644 },
      "usr/sbin/policy-rc.d": { content: POLICY_RC_D, mode: 0o755 },
    };
    for (const [name, file] of Object.entries(overlay)) {
      await mkdir(dirname(join(work, "overlay", name)), { recursive: true });
      await writeFile(join(work, "overlay", name), file.content, { mode: file.mode });
    }
    await mkdir(join(work, "target"));
    const inTmpfs = await canUnshareMount(ctx.signal);
    ctx.report(
      "output",
      `debootstrap --variant=minbase ${sources.suite} from ${sources.mirror}${inTmpfs ? " (on a tmpfs)" : ""}`,
    );
    const [command, args] = inTmpfs ? ["unshare", ["-m", "sh", "-c", BASE_SCRIPT]] : ["sh", ["-c", BASE_SCRIPT]];
    const child = spawn(command, args, {
      signal: ctx.signal,
      stdio: ["ignore", "pipe", "pipe"],
      env: {
        ...process.env,
        WORK: work,
        SUITE: sources.suite,
        MIRROR: sources.mirror,
        DEBOOTSTRAP: debootstrap,
        IN_TMPFS: inTmpfs ? "1" : "0",
      },
    });
    const tail: string[] = [];
    createInterface({ input: child.stderr }).on("line", (line) => {
      tail.push(line);
      if (tail.length > 20) tail.shift();
      ctx.report("output", line);
    });
    const exited = new Promise<void>((resolve, reject) => {
      child.on("error", reject);
      child.on("close", (code, sig) =>
        code === 0
          ? resolve()
          : reject(new Error(`debootstrap failed (${sig ?? `exit ${code}`}):\n${tail.join("\n")}`)),
      );
    });
    // A failed debootstrap ends the tar stream early: the import then fails too, but the exit
    // status (with the log's tail) is the error worth reporting.
    const imported = importImage(ctx, child.stdout, tag, labels);
    const [exit, imp] = await Promise.allSettled([exited, imported]);
    if (exit.status === "rejected") throw exit.reason;
    if (imp.status === "rejected") throw imp.reason;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** Whether `unshare -m` works here (root with CAP_SYS_ADMIN). */
function canUnshareMount(signal: AbortSignal): Promise<boolean> {
  return new Promise((resolve) => {
    const child = spawn("unshare", ["-m", "true"], { signal, stdio: "ignore" });
    child.on("error", () => resolve(false));
    child.on("close", (code) => resolve(code === 0));
  });
}

/** `docker import - tag` of a tar stream, through the engine's API. */
async function importImage(ctx: BuildContext, tar: NodeJS.ReadableStream, tag: string, labels: Readonly<Record<string, string>>): Promise<void> {
  const colon = tag.lastIndexOf(":");
  const response = await ctx.docker.importImage(tar, {
    repo: tag.slice(0, colon),
    tag: tag.slice(colon + 1),
    changes: [
      "ENV DEBIAN_FRONTEND=noninteractive",
      'CMD ["/bin/bash"]',
      ...Object.entries(labels).map(([k, v]) => `LABEL ${k}=${JSON.stringify(v)}`),
    ],
    abortSignal: ctx.signal,
  });
  await followJsonStream(response, ctx.signal, (line) => ctx.report("output", line));
}

/** Layers (b) and (c): a Dockerfile build. RUN steps use the host's network to reach the mirror. */
async function buildFromDockerfile(
  ctx: BuildContext,
  tag: string,
  dockerfile: string,
  files: Readonly<Record<string, string>>,
): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), "virtkit-nq-build-"));
  try {
    const all: Record<string, string> = { Dockerfile: dockerfile, ...files };
    for (const [name, content] of Object.entries(all)) {
      await mkdir(dirname(join(dir, name)), { recursive: true });
      await writeFile(join(dir, name), content, { mode: 0o644 });
    }
    const stream = await ctx.docker.buildImage(
      { context: dir, src: Object.keys(all) },
      { t: tag, networkmode: "host", rm: true, forcerm: true, pull: false, abortSignal: ctx.signal },
    );
    await followJsonStream(stream, ctx.signal, (line) => ctx.report("output", line));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Reads the engine's JSON progress stream; rejects on an `error` entry. */
function followJsonStream(
  stream: NodeJS.ReadableStream,
  signal: AbortSignal,
  onLine: (line: string) => void,
): Promise<void> {
  return new Promise((resolve, reject) => {
    let failure: string | undefined;
    const tail: string[] = [];
    const onAbort = () => {
      (stream as NodeJS.ReadableStream & { destroy?: () => void }).destroy?.();
      reject(signal.reason instanceof Error ? signal.reason : new Error("image build aborted"));
    };
    signal.addEventListener("abort", onAbort, { once: true });
    const lines = createInterface({ input: stream as NodeJS.ReadableStream & AsyncIterable<string> });
    lines.on("line", (raw) => {
      if (raw.trim() === "") return;
      let entry: { stream?: string; status?: string; error?: string; errorDetail?: { message?: string } };
      try {
        entry = JSON.parse(raw) as typeof entry;
      } catch {
        return;
      }
      if (entry.error !== undefined) failure = entry.errorDetail?.message ?? entry.error;
      for (const text of [entry.stream, entry.status]) {
        if (text === undefined) continue;
        for (const line of text.split("\n")) {
          if (line.trim() === "") continue;
          tail.push(line);
          if (tail.length > 30) tail.shift();
          onLine(line.trimEnd());
        }
      }
    });
    lines.on("close", () => {
      signal.removeEventListener("abort", onAbort);
      if (signal.aborted) return;
      if (failure !== undefined) reject(new Error(`image build failed: ${failure}\n${tail.join("\n")}`));
      else resolve();
    });
    stream.on("error", (err: Error) => {
      signal.removeEventListener("abort", onAbort);
      reject(err);
    });
  });
}
