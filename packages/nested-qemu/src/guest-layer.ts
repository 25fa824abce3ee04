/**
 * The guest layer: a tiny guest that boots in seconds under TCG. The Debian kernel (extracted to
 * an uncompressed ELF vmlinux, which boots faster than the bzImage) and an initramfs with busybox,
 * the real qemu-guest-agent, the real chpasswd with PAM (pam_unix, pam_deny, pam_permit), the
 * account files, and busybox init running the agent and a login on the serial console.
 *
 * The files live in the image, so every host container has them at the same path: the domain
 * boots them directly (`<kernel>`, `<initrd>`), and a migrated guest finds them on the destination.
 */

/** Where the guest's kernel, initramfs and manifest are, inside the image. */
export const GUEST_DIR = "/opt/virtkit-guest";
export const GUEST_KERNEL_PATH = `${GUEST_DIR}/vmlinux`;
export const GUEST_INITRD_PATH = `${GUEST_DIR}/initrd.img`;
/**
 * The kernel command line the guest is made for: serial console, quiet, no reboot loop on panic,
 * no self-tests of the kernel's crypto algorithms at boot (about 0.3 s of a 3 s boot under TCG,
 * measured here; the guest's own work never depends on them), and PCI interrupts routed by the
 * BIOS's table instead of ACPI (`acpi=noirq`): enabling each virtio device's ACPI interrupt link
 * ran the firmware's AML under TCG, 0.1-0.4 s a device, about 0.6 s of every boot (measured here
 * with printk.time). ACPI itself stays on: the power button still reaches acpid. A test guest
 * with nothing to protect: no speculation mitigations (code patched at boot, slower context
 * switches), no timer IRQ check, expedited RCU grace periods (each a few 4 ms ticks otherwise), no
 * audit and no AppArmor; with the unsigned modules below, about 0.24 s of a 2.9 s boot to the
 * agent's first answer (bare QEMU, alternating rounds, medians of 7, measured here).
 */
export const GUEST_CMDLINE =
  "console=ttyS0 quiet panic=-1 cryptomgr.notests acpi=noirq mitigations=off no_timer_check rcupdate.rcu_expedited=1 audit=0 apparmor=0";
/** Accounts the guest has besides root: the admin users the conformance scenarios name. */
export const GUEST_EXTRA_ACCOUNTS = ["cloud-admin", "Administrator"] as const;
/** The guest's boot counter on its data disk (one more at every boot, written by rc.sysinit). */
export const GUEST_BOOT_COUNTER = "/data/.virtkit-boots";
/**
 * The guest's power log on its data disk, one line per fact, appended and synced by the guest
 * itself: `boot N` (rc.sysinit), `acpi N` (an ACPI power-button press received during boot N,
 * honoured or not), `clean N` (boot N ended in the guest's own shutdown). A boot without its
 * `clean` line ended hard (reset or cut off): nothing ran in the guest to record it.
 */
export const GUEST_POWER_LOG = "/data/.virtkit-power";
/** While this file exists on the data disk, the guest's ACPI handler counts presses and does nothing. */
export const GUEST_ACPI_IGNORE_FLAG = "/data/.virtkit-acpi-ignore";
/** Lines the guest writes to its serial console. */
export const GUEST_MARKERS = {
  init: "virtkit-guest: init",
  dataDisk: "virtkit-guest: data disk mounted on /data",
  agent: "virtkit-guest: qemu-ga starting on",
  acpid: "virtkit-guest: acpid listening",
  acpiPowerButton: "virtkit-guest: ACPI power button",
  cleanShutdown: "virtkit-guest: clean shutdown",
} as const;

/** Debian packages the guest is made from (the kernel is downloaded, not installed). */
export const GUEST_BUILD_PACKAGES = ["busybox-static", "qemu-guest-agent", "cpio", "kmod", "xz-utils", "zstd"] as const;

/**
 * Modules in load order. platform.md: the virtio modules must load in exactly this order; ext4
 * (with what it needs, found by modprobe) mounts the data disk; virtio_rng takes the host's entropy
 * (without it the first random bytes, mke2fs's uuid, wait a second of jitter entropy under TCG:
 * "random: crng init done" came exactly when mke2fs returned); button (the ACPI power button as an
 * input device) and evdev (its /dev/input/event node) let acpid hear QEMU's system_powerdown.
 */
export const GUEST_MODULES = [
  "virtio_ring",
  "virtio",
  "virtio_pci_legacy_dev",
  "virtio_pci_modern_dev",
  "virtio_pci",
  "virtio_console",
  "virtio_blk",
  "virtio_rng",
  "ext4",
  "button",
  "evdev",
] as const;

/** /init: mounts the pseudo file systems, then hands over to busybox init. */
const INIT = `#!/bin/sh
export PATH=/usr/sbin:/usr/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /run /tmp /data
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /run
exec </dev/console >/dev/console 2>&1
echo "${GUEST_MARKERS.init} $(cut -d' ' -f1 /proc/uptime)s"
exec /usr/bin/busybox init
`;

const INITTAB = `::sysinit:/etc/virtkit/rc.sysinit
::respawn:/etc/virtkit/run-acpid
::respawn:/etc/virtkit/run-qemu-ga
ttyS0::respawn:/usr/bin/getty -L 115200 ttyS0 vt100
::ctrlaltdel:/usr/bin/reboot
::shutdown:/etc/virtkit/shutdown
`;

/** Modules, host name, and the data disk: mounted, or formatted first when it is blank. */
const RC_SYSINIT = `#!/bin/sh
export PATH=/usr/sbin:/usr/bin
hostname virtkit-guest
while read -r m; do
  insmod "/lib/modules/$m" || echo "virtkit-guest: insmod $m failed"
done < /etc/virtkit/modules
echo "virtkit-guest: modules loaded $(cut -d' ' -f1 /proc/uptime)s"
i=0
while [ ! -b /dev/vda ] && [ $i -lt 20 ]; do sleep 0.1; i=$((i + 1)); done
if [ -b /dev/vda ]; then
  if ! mount -t ext4 /dev/vda /data 2>/dev/null; then
    # Only a disk whose first MiB is all zeros is formatted: never someone's data.
    if [ -z "$(dd if=/dev/vda bs=65536 count=16 2>/dev/null | tr -d '\\000' | head -c 1)" ]; then
      echo "virtkit-guest: formatting the blank data disk /dev/vda $(cut -d' ' -f1 /proc/uptime)s"
      # One inode per MiB (1,024 on the 1 GiB disk, plenty for the markers): fewer tables to write.
      mke2fs -F -i 1048576 -m 0 /dev/vda >/dev/null && mount -t ext4 /dev/vda /data
    fi
  fi
  if grep -q " /data " /proc/mounts; then
    # Boots counted on the guest's own disk: what a reboot or power cycle did, seen from inside.
    n=$(( $(cat /data/.virtkit-boots 2>/dev/null || echo 0) + 1 ))
    echo $n > /data/.virtkit-boots && echo "boot $n" >> ${GUEST_POWER_LOG} && sync
    echo "${GUEST_MARKERS.dataDisk} $(cut -d' ' -f1 /proc/uptime)s"
  fi
fi
`;

/** The agent, on the virtio port named org.qemu.guest_agent.0 (its vportNpM number varies). */
const RUN_QEMU_GA = `#!/bin/sh
export PATH=/usr/sbin:/usr/bin
port=""
i=0
while [ -z "$port" ] && [ $i -lt 100 ]; do
  for d in /sys/class/virtio-ports/*; do
    if [ -f "$d/name" ] && [ "$(cat "$d/name")" = org.qemu.guest_agent.0 ]; then port="/dev/$(basename "$d")"; fi
  done
  [ -n "$port" ] || sleep 0.1
  i=$((i + 1))
done
if [ -z "$port" ]; then
  echo "virtkit-guest: no org.qemu.guest_agent.0 port" >/dev/console
  sleep 5
  exit 1
fi
mkdir -p /run/qemu-ga
echo "${GUEST_MARKERS.agent} $port $(cut -d' ' -f1 /proc/uptime)s" >/dev/console
exec qemu-ga -m virtio-serial -p "$port" -t /run/qemu-ga -f /run/qemu-ga/qemu-ga.pid
`;

/**
 * busybox acpid on the power button's input device (/dev/input/event*, from the button and evdev
 * modules). Without the device it waits before exiting, so init does not respawn it in a loop.
 */
const RUN_ACPID = `#!/bin/sh
export PATH=/usr/sbin:/usr/bin
i=0
while [ ! -e /dev/input/event0 ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
if [ ! -e /dev/input/event0 ]; then
  echo "virtkit-guest: no input event device: ACPI requests go unheard" >/dev/console
  sleep 30
  exit 1
fi
echo "${GUEST_MARKERS.acpid} $(cut -d' ' -f1 /proc/uptime)s" >/dev/console
exec acpid -f -c /etc/acpi -a /etc/acpid.conf -l /run/acpid.log
`;

/** acpid's action file: the power button (PWRF) runs /etc/acpi/PWRF/00000080. */
const ACPID_CONF = `PWRF PWRF/00000080
`;

/**
 * The power button's handler: every press is logged on the data disk first (what the guest was
 * asked, honoured or not), then the guest powers itself off cleanly, unless told to ignore ACPI.
 */
const ACPI_POWER_BUTTON = `#!/bin/sh
export PATH=/usr/sbin:/usr/bin
n=$(cat /data/.virtkit-boots 2>/dev/null || echo 0)
if grep -q " /data " /proc/mounts; then echo "acpi $n" >> ${GUEST_POWER_LOG} && sync; fi
if [ -e ${GUEST_ACPI_IGNORE_FLAG} ]; then
  echo "${GUEST_MARKERS.acpiPowerButton} ignored $(cut -d' ' -f1 /proc/uptime)s" >/dev/console
  exit 0
fi
echo "${GUEST_MARKERS.acpiPowerButton}: powering off $(cut -d' ' -f1 /proc/uptime)s" >/dev/console
exec poweroff
`;

/**
 * init's shutdown action: runs only when the guest shuts itself down (poweroff or reboot from
 * inside), never on a reset or a hard stop. Records the clean end of this boot on the data disk.
 */
const SHUTDOWN = `#!/bin/sh
export PATH=/usr/sbin:/usr/bin
n=$(cat /data/.virtkit-boots 2>/dev/null || echo 0)
if grep -q " /data " /proc/mounts; then
  echo "clean $n" >> ${GUEST_POWER_LOG} && sync
  umount /data 2>/dev/null || mount -o remount,ro /data 2>/dev/null
fi
echo "${GUEST_MARKERS.cleanShutdown} (boot $n) $(cut -d' ' -f1 /proc/uptime)s" >/dev/console
sync
`;

/**
 * Runs in the image build: downloads and unpacks the kernel package (installing it would run
 * initramfs-tools for nothing), extracts vmlinux, and assembles the initramfs.
 */
const MAKE_GUEST = `#!/bin/sh
set -eu
OUT="$1"
HERE="$(cd "$(dirname "$0")" && pwd)"
W="$(mktemp -d)"
IR="$W/initramfs"
export LC_ALL=C
mkdir -p "$OUT"
cd "$W"
KPKG="$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/ { print $2; exit }')"
echo "make-guest: kernel package $KPKG"
apt-get download -qq "$KPKG" 2>/dev/null
dpkg-deb -x ./linux-image-*.deb k
KVER="$(ls k/lib/modules | head -n 1)"
IMG="k/boot/vmlinuz-$KVER"

# vmlinux: find the compressed payload inside the bzImage (as the kernel's extract-vmlinux does)
# and keep the first candidate that decompresses to an ELF.
is_elf() { [ "$(head -c 4 "$1" | od -An -c | tr -d ' \\n')" = '177ELF' ]; }
try_payload() {
  pattern="$1"; shift
  for off in $(grep -obUaP "$pattern" "$IMG" | cut -d: -f1); do
    tail -c +$((off + 1)) "$IMG" | "$@" > "$W/vmlinux" 2>/dev/null || true
    if is_elf "$W/vmlinux"; then return 0; fi
  done
  return 1
}
if try_payload '\\xfd\\x37\\x7a\\x58\\x5a\\x00' xz -dc || try_payload '\\x28\\xb5\\x2f\\xfd' zstd -dcq || try_payload '\\x1f\\x8b\\x08' gzip -dc; then
  cp "$W/vmlinux" "$OUT/vmlinux"
  KFORMAT=elf
else
  echo "make-guest: no ELF vmlinux found, booting the bzImage instead"
  cp "$IMG" "$OUT/vmlinux"
  KFORMAT=bzimage
fi
echo "make-guest: kernel $KVER ($KFORMAT, $(wc -c < "$OUT/vmlinux") bytes)"

# A merged-/usr initramfs: /bin, /sbin, /lib, /lib64 point into /usr, so every path a library or
# PAM was built with resolves.
mkdir -p "$IR/usr/bin" "$IR/usr/sbin" "$IR/usr/lib" "$IR/usr/lib64" "$IR/etc/virtkit" "$IR/etc/pam.d" \\
  "$IR/proc" "$IR/sys" "$IR/dev" "$IR/run" "$IR/tmp" "$IR/data" "$IR/root" "$IR/var"
for d in bin sbin lib lib64; do ln -s "usr/$d" "$IR/$d"; done
ln -s ../run "$IR/var/run"
chmod 1777 "$IR/tmp"
mknod -m 600 "$IR/dev/console" c 5 1
mknod -m 666 "$IR/dev/null" c 1 3

# Copies a file to the same (canonical) path in the initramfs.
put() {
  real="$(readlink -f "$1")"
  case "$real" in
    /usr/*) dest="$IR$real" ;;
    *) dest="$IR/usr$real" ;;
  esac
  mkdir -p "$(dirname "$dest")"
  [ -e "$dest" ] || cp "$real" "$dest"
  # Keep the name it was asked for too (a library's soname link).
  want="$1"
  case "$want" in /usr/*) ;; *) want="/usr$want" ;; esac
  [ -e "$IR$want" ] || ln -s "$real" "$IR$want" 2>/dev/null || true
}
# A binary or library with every library ldd finds for it.
put_with_libs() {
  for f in "$@"; do
    put "$f"
    for lib in $(ldd "$f" 2>/dev/null | awk '$2 == "=>" && $3 ~ /^\\// { print $3 } $1 ~ /^\\// { print $1 }'); do
      put "$lib"
    done
  done
}

# busybox: every applet but chpasswd and passwd (the real ones must answer; platform.md).
cp /bin/busybox "$IR/usr/bin/busybox"
for a in $(/bin/busybox --list); do
  case "$a" in chpasswd|passwd) continue ;; esac
  [ -e "$IR/usr/bin/$a" ] || ln -s busybox "$IR/usr/bin/$a"
done

# The agent, chpasswd, and PAM's modules and helper.
PAMDIR="$(dirname "$(readlink -f "$(find /lib /usr/lib -name pam_unix.so -path '*security*' | head -n 1)")")"
put_with_libs /usr/sbin/qemu-ga /usr/sbin/chpasswd /usr/sbin/unix_chkpwd \\
  "$PAMDIR/pam_unix.so" "$PAMDIR/pam_deny.so" "$PAMDIR/pam_permit.so"
for f in chpasswd common-password common-auth common-account common-session other; do
  cp "/etc/pam.d/$f" "$IR/etc/pam.d/$f"
done
# SHA-512 instead of Debian's yescrypt: busybox login and \`openssl passwd -6\` can check it.
sed -i 's/\\byescrypt\\b/sha512/' "$IR/etc/pam.d/common-password"
cp /etc/login.defs /etc/passwd /etc/group "$IR/etc/"
cp /etc/shadow "$IR/etc/shadow" && chmod 640 "$IR/etc/shadow"
# The accounts an image may name as its admin user (os_admin_user, Windows' Administrator), locked
# until a password is set through the agent.
for u in ${GUEST_EXTRA_ACCOUNTS.join(" ")}; do
  n=$(( $(cut -d: -f3 "$IR/etc/passwd" | sort -n | tail -n 1) + 1 ))
  echo "$u:x:$n:$n::/root:/bin/sh" >> "$IR/etc/passwd"
  echo "$u:x:$n:" >> "$IR/etc/group"
  echo "$u:!:19000:0:99999:7:::" >> "$IR/etc/shadow"
done
[ -f /etc/gshadow ] && cp /etc/gshadow "$IR/etc/gshadow" && chmod 640 "$IR/etc/gshadow"
printf 'passwd: files\\ngroup: files\\nshadow: files\\n' > "$IR/etc/nsswitch.conf"
printf '/usr/lib/x86_64-linux-gnu\\n/usr/lib\\n' > "$IR/etc/ld.so.conf"
ldconfig -r "$IR"

# Modules, in load order, with their dependencies (modprobe resolves them; built-ins are skipped).
depmod -b "$W/k" "$KVER"
mkdir -p "$IR/lib/modules"
: > "$W/modules"
for m in $(cat "$HERE/modules"); do
  modprobe -d "$W/k" -S "$KVER" --show-depends "$m" | awk '$1 == "insmod" { print $2 }' >> "$W/modules"
done
# Not the CPU-accelerated variants (crc32c-intel needs SSE4.2, which TCG's qemu64 CPU lacks):
# the generic ones they stand in for are in the list anyway.
for path in $(awk '!seen[$0]++' "$W/modules" | grep -v -- '-intel\\.ko'); do
  [ -f "$path" ] || path="$W/k$path"
  name="$(basename "$path")"
  case "$name" in
    *.ko.xz) xz -dc "$path" > "$IR/lib/modules/\${name%.xz}"; name="\${name%.xz}" ;;
    *.ko.zst) zstd -dcq "$path" > "$IR/lib/modules/\${name%.zst}"; name="\${name%.zst}" ;;
    *) cp "$path" "$IR/lib/modules/$name" ;;
  esac
  # Debian signs its modules; the kernel hashes each one it loads to check the signature (ext4's
  # megabyte and its helpers: about 0.1 s of every boot under TCG, measured). Unsigned, it loads
  # them unchecked (its signature check is not enforced) and only marks itself tainted.
  f="$IR/lib/modules/$name"
  if [ "$(tail -c 28 "$f")" = "~Module signature appended~" ]; then
    # struct module_signature (12 bytes, its last 4 the signature's length, big-endian) precedes the marker.
    set -- $(tail -c 32 "$f" | head -c 4 | od -An -tu1)
    keep=$(( $(wc -c < "$f") - 28 - 12 - (($1 << 24) | ($2 << 16) | ($3 << 8) | $4) ))
    head -c "$keep" "$f" > "$f.unsigned" && mv "$f.unsigned" "$f"
  fi
  echo "$name" >> "$IR/etc/virtkit/modules"
done
echo "make-guest: modules $(tr '\\n' ' ' < "$IR/etc/virtkit/modules")"

install -m 755 "$HERE/init" "$IR/init"
install -m 644 "$HERE/inittab" "$IR/etc/inittab"
install -m 755 "$HERE/rc.sysinit" "$IR/etc/virtkit/rc.sysinit"
install -m 755 "$HERE/run-qemu-ga" "$IR/etc/virtkit/run-qemu-ga"
install -m 755 "$HERE/run-acpid" "$IR/etc/virtkit/run-acpid"
install -m 755 "$HERE/shutdown" "$IR/etc/virtkit/shutdown"
install -m 644 "$HERE/acpid.conf" "$IR/etc/acpid.conf"
mkdir -p "$IR/etc/acpi/PWRF"
install -m 755 "$HERE/acpi-power-button" "$IR/etc/acpi/PWRF/00000080"

# Uncompressed: under TCG, decompressing costs more than loading the bigger file.
(cd "$IR" && find . | sort | cpio -o -H newc -R 0:0 --quiet) > "$OUT/initrd.img"
printf 'kernel_version=%s\\nkernel_format=%s\\n' "$KVER" "$KFORMAT" > "$OUT/manifest"
echo "make-guest: initramfs $(wc -c < "$OUT/initrd.img") bytes"
rm -rf "$W"
`;

/** The Dockerfile of the layer, FROM `parent`. */
export function guestDockerfile(parent: string, labels: Readonly<Record<string, string>>): string {
  return `FROM ${parent}
LABEL ${Object.entries(labels)
    .map(([k, v]) => `${k}="${v}"`)
    .join(" ")}
ENV DEBIAN_FRONTEND=noninteractive
COPY guest/ /usr/local/lib/virtkit-guest/
RUN apt-get update -qq \\
 && apt-get install -y -qq --no-install-recommends ${GUEST_BUILD_PACKAGES.join(" ")} >/dev/null \\
 && sh /usr/local/lib/virtkit-guest/make-guest.sh ${GUEST_DIR} \\
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb
`;
}

/** The build context of the layer (besides the Dockerfile). */
export const GUEST_FILES: Readonly<Record<string, string>> = {
  "guest/make-guest.sh": MAKE_GUEST,
  "guest/init": INIT,
  "guest/inittab": INITTAB,
  "guest/rc.sysinit": RC_SYSINIT,
  "guest/run-qemu-ga": RUN_QEMU_GA,
  "guest/run-acpid": RUN_ACPID,
  "guest/acpid.conf": ACPID_CONF,
  "guest/acpi-power-button": ACPI_POWER_BUTTON,
  "guest/shutdown": SHUTDOWN,
  "guest/modules": GUEST_MODULES.join("\n") + "\n",
};
