#!/usr/bin/env bash
# Builds the libvirt tests' guest: the project's test guest (tests/guest/build-guest.sh: Debian
# cloud kernel + busybox/memtouch initramfs) with a network. The initramfs gets a second cpio
# archive appended (the kernel unpacks both) holding the virtio NIC and console modules of that
# kernel, the QEMU guest agent, and /vrm-net-init, which the kernel runs first (rdinit=):
#
#   1. loads virtio_pci, virtio_net and virtio_console;
#   2. brings eth0 up and asks for a DHCP lease (busybox udhcpc; renews in the background), so
#      the host's libvirt network (dnsmasq) knows the guest's address;
#   3. starts qemu-ga (Debian's, with the host's shared libraries, which are the same Debian
#      release) on the org.qemu.guest_agent.0 virtio port when the domain has that channel;
#   4. execs the test guest's /init (memtouch with the kernel command line's memtouch.* settings).
#
# Usage: build-guest-net.sh GUEST_DIR   (GUEST_DIR as given to build-guest.sh, built first)
# Writes GUEST_DIR/initrd-net.img. Idempotent: does nothing when it is newer than its inputs.
# Needs: apt-get (download only), dpkg-deb, cpio, gzip, ldd, busybox-static.
set -euo pipefail
guest=${1:?usage: build-guest-net.sh GUEST_DIR}
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../guest/initramfs-lib.sh
source "$here/../guest/initramfs-lib.sh"
"$here/../guest/build-guest.sh" "$guest"
guest=$(cd "$guest" && pwd)
cache=${VRM_GUEST_CACHE:-$guest/cache}
out=$guest/initrd-net.img
if [[ -s $out && $out -nt $guest/initrd.img && $out -nt $0 &&
      $out -nt $here/../guest/initramfs-lib.sh ]]; then
  exit 0
fi

deb=$(ls "$cache"/linux-image-*-cloud-amd64*.deb | head -1)
qga=$(ls "$cache"/qemu-guest-agent_*.deb 2>/dev/null | head -1 || true)
if [[ -z $qga ]]; then
  (cd "$cache" && apt-get download -qq qemu-guest-agent)
  qga=$(ls "$cache"/qemu-guest-agent_*.deb | head -1)
fi

root=$(mktemp -d)
work=$(mktemp -d)
trap 'rm -rf "$root" "$work"' EXIT
mkdir -p "$root"/{bin,lib/vrm-modules,etc,var/run,run}

# Kernel modules, in load order (the cloud kernel builds virtio and its NIC as modules).
modules=(drivers/virtio/virtio_ring.ko drivers/virtio/virtio.ko
  drivers/virtio/virtio_pci_modern_dev.ko drivers/virtio/virtio_pci_legacy_dev.ko
  drivers/virtio/virtio_pci.ko net/core/failover.ko drivers/net/net_failover.ko
  drivers/net/virtio_net.ko drivers/char/virtio_console.ko)
dpkg-deb -x "$deb" "$work/kernel"
kdir=$(ls -d "$work"/kernel/lib/modules/*/kernel)
for m in "${modules[@]}"; do
  cp "$kdir/$m" "$root/lib/vrm-modules/"
done
printf '%s\n' "${modules[@]##*/}" >"$root/lib/vrm-modules/order"

# The guest agent and the shared libraries it needs, from this (Debian) host.
dpkg-deb -x "$qga" "$work/qga"
cp "$work/qga/usr/sbin/qemu-ga" "$root/bin/qemu-ga"
for lib in $(ldd "$root/bin/qemu-ga" | awk '/=>/ {print $3} /ld-linux/ {print $1}'); do
  mkdir -p "$root$(dirname "$lib")"
  cp -L "$lib" "$root$lib"
done
# ldd names the loader by the path the binary asks for (/lib64/ld-linux-x86-64.so.2).
[[ -e $root/lib64/ld-linux-x86-64.so.2 ]] || { mkdir -p "$root/lib64"; cp -L /lib64/ld-linux-x86-64.so.2 "$root/lib64/"; }

for app in insmod ip udhcpc; do
  ln -sf busybox "$root/bin/$app"
done

udhcpc_script "$root" vrm-net

cat >"$root/vrm-net-init" <<'INIT'
#!/bin/sh
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev 2>/dev/null
for m in $(cat /lib/vrm-modules/order); do
  insmod /lib/vrm-modules/$m >/dev/console 2>&1 || echo "vrm-net: insmod $m failed" >/dev/console
done
ip link set lo up
if ip link show eth0 >/dev/null 2>&1; then
  ip link set eth0 up
  # -b: go to the background once a lease is bound or the first tries fail; renews after.
  udhcpc -i eth0 -s /etc/udhcpc.script -b -t 20 -T 1 -A 2 >/dev/console 2>&1
else
  echo "vrm-net: no eth0" >/dev/console
fi
for port in /sys/class/virtio-ports/*; do
  [ -e "$port/name" ] || continue
  if [ "$(cat "$port/name")" = org.qemu.guest_agent.0 ]; then
    /bin/qemu-ga -m virtio-serial -p "/dev/${port##*/}" -d -t /run >/dev/null 2>&1 &&
      echo "vrm-net: qemu-ga on /dev/${port##*/}" >/dev/console
  fi
done
exec /init
INIT
chmod +x "$root/vrm-net-init"

(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) >"$work/net.cpio.gz"
cat "$guest/initrd.img" "$work/net.cpio.gz" >"$out.tmp"
mv "$out.tmp" "$out"
