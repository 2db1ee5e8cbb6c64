#!/usr/bin/env bash
# Builds the tiny Linux guest the qemu backend's tests boot: a Debian cloud kernel (taken from
# its .deb with dpkg-deb -x, never installed) and an initramfs of busybox-static plus memtouch
# (memtouch.c beside this script, built with gcc -static).
#
# Usage: build-guest.sh OUT_DIR       writes OUT_DIR/vmlinuz and OUT_DIR/initrd.img
# Idempotent: does nothing when both outputs are newer than their inputs. The kernel .deb is
# cached in ${VRM_GUEST_CACHE:-OUT_DIR/cache}. Needs: apt-get (download only), dpkg-deb, gcc,
# cpio, gzip, busybox-static (scripts/install-deps.sh installs them).
#
# The guest's /init reads from the kernel command line:
#   memtouch.mb=N       mebibytes memtouch fills (default 16)
#   memtouch.rate=R     pages per second it rewrites (default 0)
#   memtouch.verify=S   seconds between self-checks of the whole region (default 2)
set -euo pipefail
out=${1:?usage: build-guest.sh OUT_DIR}
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$out"
out=$(cd "$out" && pwd)
cache=${VRM_GUEST_CACHE:-$out/cache}
mkdir -p "$cache"

# --- kernel -------------------------------------------------------------------------------
if [[ ! -s $out/vmlinuz ]]; then
  deb=$(ls "$cache"/linux-image-*-cloud-amd64*.deb 2>/dev/null | head -1 || true)
  if [[ -z $deb ]]; then
    pkg=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null |
      awk '/Depends: linux-image-[0-9]/{print $2; exit}')
    if [[ -z $pkg ]]; then
      echo "build-guest: cannot resolve linux-image-cloud-amd64 (run apt-get update?)" >&2
      exit 1
    fi
    (cd "$cache" && apt-get download -qq "$pkg")
    deb=$(ls "$cache"/linux-image-*-cloud-amd64*.deb | head -1)
  fi
  rm -rf "$cache/kernel"
  dpkg-deb -x "$deb" "$cache/kernel"
  cp "$(ls "$cache"/kernel/boot/vmlinuz-* | head -1)" "$out/vmlinuz.tmp"
  mv "$out/vmlinuz.tmp" "$out/vmlinuz"
  rm -rf "$cache/kernel"
fi

# --- initramfs ----------------------------------------------------------------------------
busybox=/bin/busybox
[[ -x $busybox ]] || busybox=$(command -v busybox)
if ! file -L "$busybox" 2>/dev/null | grep -q "statically linked"; then
  # busybox-static installs /bin/busybox statically linked; without `file`, trust it.
  command -v file >/dev/null && { echo "build-guest: $busybox is not static (install busybox-static)" >&2; exit 1; }
fi
if [[ -s $out/initrd.img && $out/initrd.img -nt $here/memtouch.c && $out/initrd.img -nt $0 ]]; then
  exit 0
fi
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root"/{bin,sbin,proc,sys,dev,tmp}
cp "$busybox" "$root/bin/busybox"
for app in sh mount cat echo sleep poweroff; do ln -s busybox "$root/bin/$app"; done
gcc -static -O2 -o "$root/bin/memtouch" "$here/memtouch.c"
cat > "$root/init" <<'INIT'
#!/bin/sh
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev 2>/dev/null
mb=16; rate=0; verify=2
for arg in $(cat /proc/cmdline); do
  case $arg in
    memtouch.mb=*) mb=${arg#*=} ;;
    memtouch.rate=*) rate=${arg#*=} ;;
    memtouch.verify=*) verify=${arg#*=} ;;
  esac
done
echo "vrm-guest: up, memtouch mb=$mb rate=$rate verify=$verify"
exec /bin/memtouch "$mb" "$rate" "$verify" </dev/console >/dev/console 2>&1
INIT
chmod +x "$root/init"
(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) > "$out/initrd.img.tmp"
mv "$out/initrd.img.tmp" "$out/initrd.img"
