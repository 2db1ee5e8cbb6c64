#!/usr/bin/env bash
# Starts and stops private libvirt hosts on this machine for the libvirt backend's tests: each
# host is a libvirtd (QEMU driver, TCG guests) in a network namespace and a mount namespace of its
# own, so two of them can migrate to each other like two machines, and neither sees nor disturbs
# a system libvirtd (its sockets, /etc/libvirt, /var/lib/libvirt, /run, firewall, bridges).
#
# Usage:
#   libvirt-hosts.sh start DIR [N] [--owner PID] [--cache DIR2]
#                                                  N hosts (default 2) under DIR
#   libvirt-hosts.sh stop DIR                      stops them and removes their namespaces
#
# start writes DIR/hosts.env, one KEY=VALUE per line (i = 1..N):
#   VRM_LV_HOSTS=N
#   VRM_LV_H<i>_URI      qemu+unix:///system?socket=DIR/h<i>/sock/libvirt-sock (for the agent)
#   VRM_LV_H<i>_TCP_URI  qemu+tcp://10.250.0.<i>/system (reachable from the other hosts only:
#                        what a source libvirtd connects to for peer-to-peer migration)
#   VRM_LV_H<i>_NETNS    the host's network namespace (ip netns exec NETNS ping ...)
#   VRM_LV_H<i>_NETWORK  its libvirt network with DHCP (vrm-net, 192.168.10<i>.0/24)
#   VRM_LV_H<i>_BRIDGE   that network's bridge (inside the namespace)
# and exits 0. It exits 77 (skip) with the reason on stderr when this machine cannot run them
# (not root, a command missing, namespaces refused, libvirtd failing to start); any other failure
# is exit 1. With --owner PID, a watcher stops the hosts once PID has exited (a test that crashed
# leaves nothing behind). With --cache DIR2, libvirtd's QEMU capabilities cache is kept in DIR2
# (one subdirectory per host) instead of DIR: libvirtd probes QEMU for seconds (minutes on a loaded
# machine) when the cache is new. stop is idempotent; it kills only the processes inside the hosts'
# network namespaces (libvirtd, its QEMUs and dnsmasq), by pid.
#
# Each host's libvirtd runs as root with its own
#   /etc/libvirt      DIR/h<i>/etc   (libvirtd.conf: host_uuid, sockets in DIR/h<i>/sock, TCP
#                                     on 10.250.0.<i> without auth; qemu.conf: no cgroups,
#                                     security driver or namespaces, migration_host 10.250.0.<i>)
#   /var/lib/libvirt  DIR/h<i>/lib   /var/log/libvirt DIR/h<i>/log
#   /var/cache/libvirt  DIR/cache/h<i> (or DIR2/h<i>)
#   /run              a tmpfs (so it finds no systemd, D-Bus or firewalld of the machine)
# The hosts' namespaces are wired to one bridge in a namespace "wire" of their own (10.250.0.0/24);
# the machine's own network namespace gets nothing but the namespaces' names.
set -euo pipefail

skip() {
  echo "libvirt-hosts: cannot run private libvirt hosts here: $*" >&2
  exit 77
}
die() {
  echo "libvirt-hosts: $*" >&2
  exit 1
}

cmd=${1:-}
dir=${2:-}
[[ -n $cmd && -n $dir ]] || die "usage: libvirt-hosts.sh start|stop DIR [N] [--owner PID]"

# A short tag, unique per DIR, so concurrent runs (other worktrees) never share a namespace name.
tag_of() { printf '%s' "$(realpath -m "$1")" | md5sum | cut -c1-6; }

wait_for() {  # wait_for SECONDS COMMAND...: polls COMMAND every 0.1 s
  local deadline=$((SECONDS + $1))
  shift
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || return 1
    sleep 0.1
  done
}

ns_empty() { [[ -z $(ip netns pids "$1" 2>/dev/null) ]]; }

stop_hosts() {
  local d=$1 tag ns pid
  [[ -d $d ]] || return 0
  tag=$(tag_of "$d")
  for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep "^vrmlv-$tag-" || true); do
    # Everything at once: the host is thrown away, nothing in it needs an orderly shutdown.
    for signal in TERM KILL; do
      for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -"$signal" "$pid" 2>/dev/null || true; done
      wait_for 5 ns_empty "$ns" && break
    done
    ip netns del "$ns" 2>/dev/null || true
  done
  if [[ -f $d/watcher.pid ]]; then
    pid=$(cat "$d/watcher.pid")
    [[ $pid != "${BASHPID:-$$}" ]] && kill "$pid" 2>/dev/null || true
    rm -f "$d/watcher.pid"
  fi
  rm -f "$d/hosts.env"
}

write_config() {  # write_config HOSTDIR INDEX
  local h=$1 i=$2
  rm -rf "$h"  # a fresh host every start: no domains, networks or leases of an earlier run
  mkdir -p "$h"/{etc/qemu/networks,etc/nwfilter,lib,log/qemu,sock}
  cat >"$h/etc/libvirtd.conf" <<EOF
# Written by tests/libvirt/libvirt-hosts.sh for host h$i.
host_uuid = "$(cat /proc/sys/kernel/random/uuid)"
unix_sock_dir = "$h/sock"
unix_sock_group = "root"
unix_sock_rw_perms = "0700"
auth_unix_rw = "none"
auth_unix_ro = "none"
listen_tls = 0
listen_tcp = 1
listen_addr = "10.250.0.$i"
auth_tcp = "none"
log_filters = "${VRM_LV_LOG_FILTERS:-}"
log_outputs = "${VRM_LV_LOG_LEVEL:-3}:file:/var/log/libvirt/libvirtd.log"
EOF
  cat >"$h/etc/qemu.conf" <<EOF
# Written by tests/libvirt/libvirt-hosts.sh for host h$i.
user = "root"
group = "root"
dynamic_ownership = 0
remember_owner = 0
security_driver = "none"
cgroup_controllers = [ ]
namespaces = [ ]
stdio_handler = "file"
migration_address = "10.250.0.$i"
migration_host = "10.250.0.$i"
EOF
  cat >"$h/etc/libvirt.conf" <<EOF
EOF
}

start_one() {  # start_one DIR INDEX NETNS CACHE
  local d=$1 i=$2 ns=$3 cache=$4 h=$1/h$2
  write_config "$h" "$i"
  # The mount namespace: /run is a fresh tmpfs, the libvirt dirs are this host's. libvirtd runs
  # in the foreground of the namespace's first shell (exec), its log in h<i>/log.
  setsid ip netns exec "$ns" unshare --mount --propagation private sh -c "
    set -e
    mount -t tmpfs -o mode=0755 vrm-run /run
    mkdir -p /run/libvirt /run/lock
    # No /dev/kvm: guests here are TCG. Where /dev/kvm exists but QEMU cannot use it (as on
    # these machines), libvirtd's capabilities cache says \"KVM was not enabled when probing,
    # but it should be usable now\" at every lookup and probes QEMU again (16 s per define).
    # Hiding it needs stat() to fail, so /dev is a tmpfs with the machine's other entries.
    if [ -e /dev/kvm ]; then
      mkdir /run/vrm-dev
      mount -t tmpfs -o mode=0755 vrm-dev /run/vrm-dev
      for e in /dev/* /dev/.[!.]*; do
        [ -e \"\$e\" ] || [ -L \"\$e\" ] || continue
        n=/run/vrm-dev/\${e#/dev/}
        if [ \"\$e\" = /dev/kvm ]; then continue
        elif [ -L \"\$e\" ]; then ln -s \"\$(readlink \"\$e\")\" \"\$n\"
        elif [ -d \"\$e\" ]; then mkdir \"\$n\" && mount --rbind \"\$e\" \"\$n\"
        else touch \"\$n\" && mount --bind \"\$e\" \"\$n\"
        fi
      done
      mount --move /run/vrm-dev /dev
    fi
    mount --bind '$h/etc' /etc/libvirt
    mount --bind '$h/lib' /var/lib/libvirt
    mount --bind '$h/log' /var/log/libvirt
    mount --bind '$cache/h$i' /var/cache/libvirt
    exec libvirtd --listen -f /etc/libvirt/libvirtd.conf
  " </dev/null >"$h/libvirtd.out" 2>&1 &
  echo $! >"$h/libvirtd.pid"
}

define_network() {  # define_network URI INDEX
  local uri=$1 i=$2
  cat >"$dir/h$i/net.xml" <<EOF
<network>
  <name>vrm-net</name>
  <forward mode='open'/>
  <bridge name='virbr-vrm' stp='off' delay='0'/>
  <ip address='192.168.10$i.1' netmask='255.255.255.0'>
    <dhcp><range start='192.168.10$i.10' end='192.168.10$i.250'/></dhcp>
  </ip>
</network>
EOF
  virsh -q -c "$uri" net-define "$dir/h$i/net.xml" >/dev/null &&
    virsh -q -c "$uri" net-start vrm-net >/dev/null
}

case $cmd in
  stop)
    stop_hosts "$dir"
    ;;
  start)
    n=2
    owner=""
    cache=""
    shift 2
    while [[ $# -gt 0 ]]; do
      case $1 in
        --owner) owner=$2; shift 2 ;;
        --cache) cache=$2; shift 2 ;;
        *) n=$1; shift ;;
      esac
    done
    [[ $n =~ ^[1-9]$ ]] || die "N must be 1..9, got '$n'"
    [[ $(id -u) -eq 0 ]] || skip "needs root (network and mount namespaces, bridges)"
    for c in libvirtd virsh ip unshare setsid qemu-system-x86_64 dnsmasq md5sum; do
      command -v "$c" >/dev/null || skip "'$c' is not installed (scripts/install-deps.sh)"
    done
    for d in /etc/libvirt /var/lib/libvirt /var/log/libvirt /var/cache/libvirt; do
      [[ -d $d ]] || skip "$d is missing (libvirt-daemon-system not installed?)"
    done
    mkdir -p "$dir"
    dir=$(realpath "$dir")
    stop_hosts "$dir"  # leftovers of a crashed run with the same DIR
    tag=$(tag_of "$dir")
    cache=${cache:-$dir/cache}
    mkdir -p "$cache"
    cache=$(realpath "$cache")
    mkdir -p "$cache"/h{1..9}
    wire=vrmlv-$tag-wire
    ip netns add "$wire" 2>"$dir/netns.err" || skip "ip netns add failed: $(cat "$dir/netns.err")"
    ip -n "$wire" link add br0 type bridge
    ip -n "$wire" link set br0 up
    env=$dir/hosts.env.tmp
    echo "VRM_LV_HOSTS=$n" >"$env"
    for i in $(seq "$n"); do
      ns=vrmlv-$tag-h$i
      ip netns add "$ns"
      ip -n "$ns" link set lo up
      ip -n "$ns" link add eth0 type veth peer name h$i netns "$wire"
      ip -n "$wire" link set h$i master br0 up
      ip -n "$ns" addr add 10.250.0.$i/24 dev eth0
      ip -n "$ns" link set eth0 up
      start_one "$dir" "$i" "$ns" "$cache"
      sock=$dir/h$i/sock/libvirt-sock
      {
        echo "VRM_LV_H${i}_URI=qemu+unix:///system?socket=$sock"
        echo "VRM_LV_H${i}_TCP_URI=qemu+tcp://10.250.0.$i/system"
        echo "VRM_LV_H${i}_NETNS=$ns"
        echo "VRM_LV_H${i}_NETWORK=vrm-net"
        echo "VRM_LV_H${i}_BRIDGE=virbr-vrm"
      } >>"$env"
    done
    for i in $(seq "$n"); do
      uri="qemu+unix:///system?socket=$dir/h$i/sock/libvirt-sock"
      if ! wait_for 60 virsh -q -c "$uri" version; then
        reason=$(tail -3 "$dir/h$i/libvirtd.out" "$dir/h$i/log/libvirtd.log" 2>/dev/null | tr '\n' ' ')
        stop_hosts "$dir"
        skip "libvirtd of h$i did not answer within 60 s: $reason"
      fi
      define_network "$uri" "$i" || { stop_hosts "$dir"; die "h$i: cannot start network vrm-net"; }
      # Let libvirtd probe QEMU now (seconds; minutes on a loaded machine without a cache), not
      # in the middle of the first define.
      virsh -q -c "$uri" domcapabilities --virttype qemu >/dev/null ||
        { stop_hosts "$dir"; die "h$i: libvirtd cannot probe qemu-system-x86_64"; }
    done
    mv "$env" "$dir/hosts.env"
    if [[ -n $owner ]]; then
      script=$(realpath "$0")
      setsid bash -c "while kill -0 $owner 2>/dev/null; do sleep 1; done; '$script' stop '$dir'" \
        </dev/null >/dev/null 2>&1 &
      echo $! >"$dir/watcher.pid"
    fi
    ;;
  *)
    die "unknown command '$cmd' (start, stop)"
    ;;
esac
