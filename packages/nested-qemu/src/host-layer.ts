/**
 * The hypervisor layer: libvirtd and QEMU from Debian, configured as platform.md found to work in
 * a container (root, no cgroups, no namespaces, no security driver), listening on TCP without
 * auth so the driver's RPC client and the peer's libvirtd reach it, with a host UUID made at start.
 */

/** libvirtd's TCP port inside the container (libvirt's default, so `qemu+tcp://<address>/system` reaches it). */
export const LIBVIRTD_TCP_PORT = 16509;

/** Debian packages of the hypervisor layer. */
export const HOST_PACKAGES = [
  "libvirt-daemon",
  "libvirt-daemon-driver-qemu",
  "libvirt-clients",
  "qemu-system-x86",
  "qemu-utils",
  // Reaps the QEMU processes libvirtd double-forks, as PID 1.
  "tini",
] as const;

/** /etc/libvirt/libvirtd.conf. `host_uuid` is replaced by the entrypoint on every start. */
export const LIBVIRTD_CONF = `# virtkit nested-QEMU host: reachable on the run's Docker network and through a port mapped to loopback.
listen_tls = 0
listen_tcp = 1
listen_addr = "0.0.0.0"
tcp_port = "${LIBVIRTD_TCP_PORT}"
auth_tcp = "none"
auth_unix_ro = "none"
auth_unix_rw = "none"
unix_sock_ro_perms = "0777"
unix_sock_rw_perms = "0770"
host_uuid = "REPLACED-AT-START"
max_clients = 512
max_workers = 20
max_client_requests = 64
log_outputs = "3:stderr"
`;

/** /etc/libvirt/qemu.conf: platform.md's settings, plus a migration listener on every address. */
export const QEMU_CONF = `user = "root"
group = "root"
dynamic_ownership = 0
remember_owner = 0
security_driver = "none"
stdio_handler = "file"
namespaces = []
cgroup_controllers = []
# The incoming migration and NBD (block migration) listeners: IPv4, as the run's network has no IPv6.
migration_address = "0.0.0.0"
`;

/** The container's entrypoint (under tini). */
export const HOST_ENTRYPOINT = `#!/bin/sh
# A nested-QEMU host: a private libvirtd on TCP, with a host UUID of its own (libvirt refuses to
# migrate between hosts that share one).
set -eu
uuid=$(cat /proc/sys/kernel/random/uuid)
sed -i "s/^host_uuid = .*/host_uuid = \\"$uuid\\"/" /etc/libvirt/libvirtd.conf
mkdir -p /var/lib/libvirt/images /var/log/libvirt/qemu /var/cache/libvirt /run/libvirt
echo "virtkit-host: host_uuid $uuid"
exec /usr/sbin/libvirtd --listen
`;

/** The Dockerfile of the layer, FROM `parent`. */
export function hostDockerfile(parent: string, labels: Readonly<Record<string, string>>): string {
  return `FROM ${parent}
LABEL ${Object.entries(labels)
    .map(([k, v]) => `${k}="${v}"`)
    .join(" ")}
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update -qq \\
 && apt-get install -y -qq --no-install-recommends ${HOST_PACKAGES.join(" ")} >/dev/null \\
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb
# The qemu driver resolves its compiled-in default user before it reads qemu.conf.
RUN (getent group libvirt-qemu >/dev/null || groupadd -r libvirt-qemu) \\
 && (getent passwd libvirt-qemu >/dev/null || useradd -r -g libvirt-qemu -d /var/lib/libvirt -s /usr/sbin/nologin libvirt-qemu)
COPY libvirtd.conf qemu.conf /etc/libvirt/
COPY virtkit-host /usr/local/sbin/virtkit-host
RUN chmod 755 /usr/local/sbin/virtkit-host && : > /etc/libvirt/libvirt.conf
EXPOSE ${LIBVIRTD_TCP_PORT}
ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/sbin/virtkit-host"]
`;
}

/** The build context of the layer (besides the Dockerfile). */
export const HOST_FILES: Readonly<Record<string, string>> = {
  "libvirtd.conf": LIBVIRTD_CONF,
  "qemu.conf": QEMU_CONF,
  "virtkit-host": HOST_ENTRYPOINT,
};
