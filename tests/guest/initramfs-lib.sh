# Shared by the scripts that add a network to the test guest's initramfs (build-guest-ssh.sh;
# tests/libvirt/build-guest-net.sh can use it too). Source it; each function states its effect.

# virtio_net_modules KERNEL_DEB ROOT [EXTRA_MODULE...]: copies the cloud kernel's virtio PCI,
# NIC and block (a data disk is /dev/vda) modules (and any EXTRA_MODULE, a path under the
# kernel's module tree) into
# ROOT/lib/vrm-modules with a load order in ROOT/lib/vrm-modules/order.
virtio_net_modules() {
  local deb=$1 root=$2
  shift 2
  local modules=(drivers/virtio/virtio_ring.ko drivers/virtio/virtio.ko
    drivers/virtio/virtio_pci_modern_dev.ko drivers/virtio/virtio_pci_legacy_dev.ko
    drivers/virtio/virtio_pci.ko net/core/failover.ko drivers/net/net_failover.ko
    drivers/net/virtio_net.ko drivers/block/virtio_blk.ko "$@")
  local unpacked
  unpacked=$(mktemp -d)
  dpkg-deb -x "$deb" "$unpacked"
  local kdir
  kdir=$(ls -d "$unpacked"/lib/modules/*/kernel)
  mkdir -p "$root/lib/vrm-modules"
  for m in "${modules[@]}"; do cp "$kdir/$m" "$root/lib/vrm-modules/"; done
  printf '%s\n' "${modules[@]##*/}" >"$root/lib/vrm-modules/order"
  rm -rf "$unpacked"
}

# with_libraries BINARY ROOT: copies the shared libraries BINARY needs (ldd's list, the loader
# too) from this Debian host to the same paths under ROOT.
with_libraries() {
  local bin=$1 root=$2 lib
  for lib in $(ldd "$bin" | awk '/=>/ {print $3} /ld-linux/ {print $1}'); do
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
  done
  # ldd names the loader by the path the binary asks for (/lib64/ld-linux-x86-64.so.2).
  [[ -e $root/lib64/ld-linux-x86-64.so.2 ]] || { mkdir -p "$root/lib64"; cp -L /lib64/ld-linux-x86-64.so.2 "$root/lib64/"; }
}

# udhcpc_script ROOT TAG: writes ROOT/etc/udhcpc.script, busybox udhcpc's hook, which configures
# the interface with its lease and prints "TAG: IFACE ADDR/MASK" on the console.
udhcpc_script() {
  mkdir -p "$1/etc"
  sed "s/@TAG@/$2/" >"$1/etc/udhcpc.script" <<'SCRIPT'
#!/bin/sh
# busybox udhcpc's hook: configures the interface with the lease it got.
case $1 in
  deconfig) ip addr flush dev "$interface"; ip link set "$interface" up ;;
  bound|renew)
    ip addr flush dev "$interface"
    ip addr add "$ip/${mask:-24}" dev "$interface"
    [ -n "$router" ] && ip route add default via "${router%% *}" dev "$interface"
    echo "@TAG@: $interface $ip/${mask:-24}" >/dev/console ;;
esac
exit 0
SCRIPT
  chmod +x "$1/etc/udhcpc.script"
}
