/**
 * The named conformance environments the libvirt plugin offers (`virtkit conformance run --driver
 * libvirt --env <name>`, one matrix column each): `test` and `qemu` on the private libvirtd
 * (`scripts/libvirtd.sh`), and `nested-qemu`, two libvirtd hosts in containers with real guests.
 */
import { connect } from "node:net";
import { InvalidInputError, type ConformanceEnvironmentFactory, type PluginEnvironment } from "@virtkit/core";
import { createLibvirtConformanceEnvironment, type LibvirtConformanceOptions } from "./conformance-environment.js";
import { nestedQemuEnvironment } from "./nested-qemu-environment.js";

/** Validates raw `--option`s with the plugin's schema (the plugin passes its own validator in). */
export type LibvirtOptionsValidator = (raw: Readonly<Record<string, string>>) => LibvirtConformanceOptions;

type Env = Readonly<Record<string, string | undefined>>;

const SOCKET_HINT =
  'no private libvirtd configured: VIRTKIT_LIBVIRT_SOCKET is unset (start one: bash scripts/libvirtd.sh start; eval "$(scripts/libvirtd.sh env)")';

/** Whether something accepts connections on the unix socket `path` within `timeoutMs`. */
function socketAnswers(path: string, timeoutMs: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const s = connect({ path });
    const done = (reason: string | undefined) => {
      clearTimeout(timer);
      s.destroy();
      resolve(reason);
    };
    const timer = setTimeout(() => done(`libvirtd at ${path} did not answer within ${timeoutMs} ms`), timeoutMs);
    s.once("connect", () => done(undefined));
    s.once("error", (err: NodeJS.ErrnoException) => done(`no libvirtd at ${path} (${err.code ?? err.message}); is it running? bash scripts/libvirtd.sh status`));
  });
}

/** An environment on the private daemon, `uri` built from its socket. */
function daemonEnvironment(
  name: string,
  description: string,
  uriFor: (socket: string) => string,
  validate: LibvirtOptionsValidator,
  fair: Pick<PluginEnvironment, "scenarioTimeoutMs"> = {},
): PluginEnvironment {
  return {
    name,
    description,
    ...fair,
    async unavailable(env: Env, options) {
      const socket = env.VIRTKIT_LIBVIRT_SOCKET;
      if (!socket) return SOCKET_HINT;
      return socketAnswers(socket, options?.timeoutMs ?? 5_000);
    },
    async conformanceEnvironment(raw, env): Promise<ConformanceEnvironmentFactory> {
      if (raw.uri !== undefined) {
        throw new InvalidInputError(
          "option.uri",
          `the ${name} environment sets the URI itself; to test a libvirtd of your own, run without --env and give --option uri=...`,
        );
      }
      const socket = env.VIRTKIT_LIBVIRT_SOCKET;
      if (!socket) throw new InvalidInputError("env", SOCKET_HINT);
      return createLibvirtConformanceEnvironment(validate({ ...raw, uri: uriFor(socket) }));
    },
  };
}

/** Every environment of the libvirt plugin, in matrix order. */
export function libvirtEnvironments(validate: LibvirtOptionsValidator): readonly PluginEnvironment[] {
  return [
    daemonEnvironment(
      "test",
      "libvirt's test:///default hypervisor through the private libvirtd: the driver's RPC and state handling against a simulated hypervisor (no guests, no migration)",
      (socket) => `test+unix:///default?socket=${socket}`,
      validate,
    ),
    daemonEnvironment(
      "qemu",
      "real QEMU domains (TCG) on the private libvirtd: define, boot, power, snapshots, managed save, destroy; no guest login and one host",
      (socket) => `qemu+unix:///system?socket=${socket}`,
      validate,
      // Real TCG guests on a loaded 2-core machine: two internal snapshots of a running guest and a
      // destroy took over 42 s in a first matrix run (the 60 s run deadline scaled by the cell).
      { scenarioTimeoutMs: 120_000 },
    ),
    nestedQemuEnvironment(validate),
  ];
}
