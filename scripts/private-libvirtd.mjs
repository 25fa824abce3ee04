// The private libvirtd's socket for the benchmarks: from the environment (scripts/with-services.sh),
// else started through scripts/libvirtd.sh.
/* global process */
import { execFileSync } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const script = join(dirname(fileURLToPath(import.meta.url)), "libvirtd.sh");

/** The UNIX socket path of the private daemon, starting it if needed. */
export function privateDaemonSocket() {
  if (process.env.VIRTKIT_LIBVIRT_SOCKET) return process.env.VIRTKIT_LIBVIRT_SOCKET;
  execFileSync("bash", [script, "start"], { stdio: "inherit" });
  const env = execFileSync("bash", [script, "env"], { encoding: "utf8" });
  const m = /VIRTKIT_LIBVIRT_SOCKET=(\S+)/.exec(env);
  if (!m) throw new Error("scripts/libvirtd.sh env printed no socket");
  return m[1];
}
