#!/usr/bin/env bash
# Builds the test guest with an SSH server: the project's test guest (build-guest.sh beside this:
# Debian cloud kernel + busybox/memtouch initramfs) plus a second cpio archive appended to its
# initramfs (the kernel unpacks both) holding the kernel's virtio NIC modules, Debian's dropbear
# (dropbear-bin, with the host's shared libraries: the same Debian release) and /vrm-ssh-init,
# which the kernel runs first (rdinit=/vrm-ssh-init):
#
#   1. loads virtio_pci and virtio_net, brings eth0 up and asks for a DHCP lease (busybox
#      udhcpc; QEMU's user-mode network answers with 10.0.2.15, a bridge's DHCP server with its
#      own), renewing in the background;
#   2. writes the owner's key from the kernel command line to /root/.ssh/authorized_keys:
#        vrm.ssh_key=TYPE,BASE64   (the key's space written as a comma; the qemu backend puts it
#                                   there at clone time, clone_operation.cc)
#   3. starts dropbear on port 22, public-key logins only, and prints "vrm-ssh: dropbear up";
#   4. execs the test guest's /init (memtouch with the command line's memtouch.* settings).
#
# All clones share the host key made here (a test guest: the test's ssh does not check it).
# Usage: build-guest-ssh.sh GUEST_DIR   (GUEST_DIR as given to build-guest.sh, built first)
# Writes GUEST_DIR/initrd-ssh.img. Idempotent: does nothing when it is newer than its inputs.
# Needs: dpkg-deb, cpio, gzip, ldd, busybox-static, dropbear-bin (scripts/install-deps.sh).
set -euo pipefail
guest=${1:?usage: build-guest-ssh.sh GUEST_DIR}
here=$(cd "$(dirname "$0")" && pwd)
source "$here/initramfs-lib.sh"
"$here/build-guest.sh" "$guest"
guest=$(cd "$guest" && pwd)
cache=${VRM_GUEST_CACHE:-$guest/cache}
out=$guest/initrd-ssh.img
if [[ -s $out && $out -nt $guest/initrd.img && $out -nt $0 && $out -nt $here/initramfs-lib.sh ]]; then
  exit 0
fi
dropbear=$(command -v dropbear || echo /usr/sbin/dropbear)
[[ -x $dropbear ]] || { echo "build-guest-ssh: no dropbear (install dropbear-bin)" >&2; exit 1; }
command -v dropbearkey >/dev/null || { echo "build-guest-ssh: no dropbearkey (install dropbear-bin)" >&2; exit 1; }

root=$(mktemp -d)
work=$(mktemp -d)
trap 'rm -rf "$root" "$work"' EXIT
mkdir -p "$root"/{bin,sbin,etc/dropbear,root/.ssh,var/log,run,dev/pts,tmp}
chmod 700 "$root/root" "$root/root/.ssh"

# The cloud kernel builds virtio and its NIC as modules; dropbear is linked dynamically.
virtio_net_modules "$(ls "$cache"/linux-image-*-cloud-amd64*.deb | head -1)" "$root"
cp "$dropbear" "$root/sbin/dropbear"
with_libraries "$dropbear" "$root"
dropbearkey -t ed25519 -f "$root/etc/dropbear/dropbear_ed25519_host_key" >/dev/null 2>&1

# The logged-in shell gets all of busybox (the base image links only what /init uses).
# (Not busybox itself, which --list names too, and not init: the base image's /init is the init.)
for app in $(/bin/busybox --list); do
  [[ $app == busybox || $app == init || -e $root/bin/$app ]] || ln -s busybox "$root/bin/$app"
done
printf 'root:x:0:0:root:/root:/bin/sh\n' >"$root/etc/passwd"
printf 'root:x:0:\n' >"$root/etc/group"
printf '/bin/sh\n' >"$root/etc/shells"

udhcpc_script "$root" vrm-ssh

cat >"$root/vrm-ssh-init" <<'INIT'
#!/bin/busybox sh
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sys /sys
/bin/busybox mount -t devtmpfs dev /dev 2>/dev/null
/bin/busybox mkdir -p /dev/pts
/bin/busybox mount -t devpts devpts /dev/pts
export PATH=/bin:/sbin
for m in $(cat /lib/vrm-modules/order); do
  insmod /lib/vrm-modules/$m >/dev/console 2>&1 || echo "vrm-ssh: insmod $m failed" >/dev/console
done
ip link set lo up
if ip link show eth0 >/dev/null 2>&1; then
  ip link set eth0 up
  udhcpc -i eth0 -s /etc/udhcpc.script -b -t 20 -T 1 -A 2 >/dev/console 2>&1
else
  echo "vrm-ssh: no eth0" >/dev/console
fi
keys=0
for arg in $(cat /proc/cmdline); do
  case $arg in
    vrm.ssh_key=*)
      echo "${arg#*=}" | tr , ' ' >>/root/.ssh/authorized_keys
      keys=$((keys + 1)) ;;
  esac
done
chmod 600 /root/.ssh/authorized_keys 2>/dev/null
dropbear -r /etc/dropbear/dropbear_ed25519_host_key -p 22 -s -E 2>/tmp/dropbear.log &&
  echo "vrm-ssh: dropbear up, $keys key(s)" >/dev/console
exec /init
INIT
chmod +x "$root/vrm-ssh-init"

(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) >"$work/ssh.cpio.gz"
cat "$guest/initrd.img" "$work/ssh.cpio.gz" >"$out.tmp"
mv "$out.tmp" "$out"
