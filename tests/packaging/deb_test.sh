#!/usr/bin/env bash
# Ensures the Debian packages install and work as a user meets them: `cpack -G DEB` from the
# finished build (nothing is compiled again), the four packages installed with apt into a clean
# Debian root (debootstrap, cached; chroot), their maintainer scripts run (system user vrm,
# /var/lib/vrm, units enabled, not started without keys), the -dev package used by a CMake and a
# pkg-config build, and the README's demo run against the installed /usr/bin programs.
# Label slow; run it under the e2e lock. Skipped (77) without root, debootstrap or chroot.
#
# Environment: VRM_BUILD_DIR (required), VRM_DEB_ROOT_CACHE (default
# /var/cache/vrm-packaging/bookworm: made once with debootstrap, a few minutes), PORT (demo).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=$(cd "${VRM_BUILD_DIR:?VRM_BUILD_DIR is the build directory}" && pwd)
cache=${VRM_DEB_ROOT_CACHE:-/var/cache/vrm-packaging/bookworm}
[[ $(id -u) -eq 0 ]] || { echo "skip: needs root (chroot)"; exit 77; }
command -v debootstrap >/dev/null || { echo "skip: no debootstrap"; exit 77; }
passed=0 failed=0
ok() { echo "ok: $*"; passed=$((passed + 1)); }
bad() { echo "FAIL: $*"; failed=$((failed + 1)); }
check() { local what=$1; shift; if "$@"; then ok "$what"; else bad "$what"; fi; }

work=$(mktemp -d -t vrm-deb.XXXXXX)
jail=$work/root
cleanup() {
  for m in dev/pts dev proc; do umount -l "$jail/$m" 2>/dev/null || true; done
  # Never remove a tree something is still mounted on.
  if ! grep -q " $work/" /proc/mounts; then rm -rf "$work"; fi
}
trap cleanup EXIT

echo "== cpack -G DEB from $build"
(cd "$build" && timeout 600 cpack -G DEB -B "$work/debs" >"$work/cpack.log" 2>&1) ||
  { cat "$work/cpack.log"; echo "0 passed, 1 failed"; exit 1; }
mapfile -t debs < <(ls "$work/debs"/*.deb)
for p in vrmd vmschedd vrmctl libvrm-client-dev; do
  check "package $p built" bash -c "compgen -G '$work/debs/${p}_*.deb' >/dev/null"
done
check "vrmctl's package ships its bash completion" \
  bash -c "dpkg-deb -c $work/debs/vrmctl_*.deb | grep -q ' ./usr/share/bash-completion/completions/vrmctl$'"
check "vrmctl's package ships its zsh completion" \
  bash -c "dpkg-deb -c $work/debs/vrmctl_*.deb | grep -q ' ./usr/share/zsh/vendor-completions/_vrmctl$'"
check "vrmd's control has a postinst and conffiles" \
  bash -c "dpkg-deb -I $work/debs/vrmd_*.deb | grep -q postinst &&
           dpkg-deb -I $work/debs/vrmd_*.deb | grep -q conffiles"

if [[ ! -x $cache/bin/bash ]]; then
  echo "== debootstrap a clean Debian root into $cache (once)"
  mkdir -p "$(dirname "$cache")"
  timeout 1200 debootstrap --variant=minbase --include=systemd,systemd-sysv,dbus,adduser,procps \
    bookworm "$cache.tmp" http://deb.debian.org/debian >"$work/debootstrap.log" 2>&1 ||
    { tail -5 "$work/debootstrap.log"; echo "0 passed, 1 failed"; exit 1; }
  mv "$cache.tmp" "$cache"
fi
echo "== a fresh copy of the clean root"
cp -a "$cache" "$jail"
mount -t proc proc "$jail/proc"
mount --bind /dev "$jail/dev"
mount --bind /dev/pts "$jail/dev/pts"
cp /etc/resolv.conf "$jail/etc/resolv.conf" 2>/dev/null || true
mkdir -p "$jail/debs" && cp "${debs[@]}" "$jail/debs/"
in_root() { chroot "$jail" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
  DEBIAN_FRONTEND=noninteractive "$@"; }

echo "== apt-get install the packages (their dependencies from Debian)"
in_root apt-get update -qq >"$work/apt.log" 2>&1 || true
if in_root bash -c 'apt-get install -y -qq --no-install-recommends /debs/*.deb' >>"$work/apt.log" 2>&1; then
  ok "apt-get install of ${#debs[@]} packages"
else
  tail -20 "$work/apt.log"; bad "apt-get install"
fi
check "postinst says vrmd is not started without keys" \
  grep -q "vrmd: enabled but not started: it needs /etc/vrm/cluster.yaml and keys" "$work/apt.log"
check "postinst says vmschedd is not started without a host" \
  grep -q "vmschedd: enabled but not started: set host" "$work/apt.log"
check "system user vrm" in_root getent passwd vrm
# stat inside the root: the vrm user exists only there.
check "/var/lib/vrm belongs to vrm" bash -c "[[ \$(chroot $jail stat -c %U:%a /var/lib/vrm) == vrm:750 ]]"
check "units installed and enabled" bash -c \
  "[[ -f $jail/lib/systemd/system/vrmd.service &&
     -L $jail/etc/systemd/system/multi-user.target.wants/vrmd.service &&
     -L $jail/etc/systemd/system/multi-user.target.wants/vmschedd.service ]]"
check "default configs are conffiles" in_root bash -c \
  "dpkg-query -W -f='\${Conffiles}' vrmd | grep -q /etc/vrm/vrmd.conf"
out=$(in_root vrmd --config /etc/vrm/vrmd.conf 2>&1) && rc=0 || rc=$?
check "the installed vrmd without keys exits 2 saying what is missing ($out)" \
  env RC="$rc" OUT="$out" bash -c '[[ $RC -eq 2 ]] && grep -q "vrmctl keygen" <<<"$OUT"'

echo "== the -dev package: find_package(vrm) and pkg-config vrm-client"
if in_root apt-get install -y -qq --no-install-recommends g++ cmake make pkg-config \
  >>"$work/apt.log" 2>&1; then
  mkdir -p "$jail/src/jm"
  cp "$root/examples/job_manager.cc" "$jail/src/jm/"
  cat >"$jail/src/jm/CMakeLists.txt" <<'CMAKE'
cmake_minimum_required(VERSION 3.25)
project(jm LANGUAGES C CXX)
set(CMAKE_CXX_STANDARD 20)
find_package(vrm REQUIRED)
find_package(CLI11 CONFIG REQUIRED)
add_executable(job_manager job_manager.cc)
target_link_libraries(job_manager PRIVATE vrm::vrm_client CLI11::CLI11)
CMAKE
  in_root apt-get install -y -qq --no-install-recommends libcli11-dev >>"$work/apt.log" 2>&1 || true
  check "job_manager builds with find_package(vrm)" in_root bash -c \
    "cd /src/jm && cmake -S . -B b >/dev/null && cmake --build b >/dev/null"
  check "pkg-config vrm-client" in_root bash -c \
    "pkg-config --cflags --libs vrm-client | grep -q -- -lvrm_client"
else
  bad "toolchain for the -dev check"
fi

echo "== the demo against the installed programs"
# demo.sh runs \$VRM_BUILD_DIR/{vrm/vrmd,vmscheduler/vmschedd,clients/vrmctl}: point those at /usr/bin.
mkdir -p "$jail/opt/installed/vrm" "$jail/opt/installed/vmscheduler" "$jail/opt/installed/clients"
ln -s /usr/bin/vrmd "$jail/opt/installed/vrm/vrmd"
ln -s /usr/bin/vmschedd "$jail/opt/installed/vmscheduler/vmschedd"
ln -s /usr/bin/vrmctl "$jail/opt/installed/clients/vrmctl"
mkdir -p "$jail/src/vrm"
cp -r "$root/examples" "$root/scripts" "$jail/src/vrm/"
if in_root bash -c "VRM_DEMO_NO_BUILD=1 VRM_BUILD_DIR=/opt/installed VRM_DEMO_PORT=${PORT:-16655} \
    timeout 300 /src/vrm/examples/demo.sh" >"$work/demo.log" 2>&1; then
  ok "demo ran to the end on the installed programs"
else
  tail -30 "$work/demo.log"; bad "demo on the installed programs"
fi
check "demo admitted, vacated and tore down" bash -c \
  "grep -q 'admitted on node' $work/demo.log && grep -q 'moved ci-1' $work/demo.log &&
   grep -q 'Done: admitted' $work/demo.log"
echo "== under a real systemd: the packaged units booted in the root (systemd-nspawn)"
if ! command -v systemd-nspawn >/dev/null; then
  echo "skip: no systemd-nspawn (the units were checked with systemd-analyze verify)"
else
  # Configure as an operator would: keys, who may connect, the cluster, the agent's host.
  in_root bash -c 'vrmctl keygen --dir /etc/vrm vrmd node1 admin >/dev/null &&
    { echo "agent node1 $(cat /etc/vrm/node1.pub)"; echo "client admin admin $(cat /etc/vrm/admin.pub)"; } \
      >/etc/vrm/authorized &&
    chown vrm: /etc/vrm/vrmd.key /etc/vrm/node1.key /etc/vrm/authorized &&
    cp /src/vrm/examples/cluster.yaml /etc/vrm/cluster.yaml &&
    printf "clients = \"tcp://127.0.0.1:*\"\nagents = \"tcp://127.0.0.1:*\"\nevents = \"off\"\nhttp = \"127.0.0.1:0\"\n" \
      >>/etc/vrm/vrmd.conf &&
    printf "host = \"node1\"\ncurve-secret = \"/etc/vrm/node1.key\"\nserver-key = \"/etc/vrm/vrmd.pub\"\n" \
      >>/etc/vrm/vmschedd.conf'
  # vmschedd learns vrmd's OS-chosen agent port from vrmd's READY STATUS, so it starts later.
  rm -f "$jail/etc/systemd/system/multi-user.target.wants/vmschedd.service"
  cat >"$jail/usr/local/bin/vrm-check" <<'CHECK'
#!/bin/bash
# Runs once the container's systemd is up; results into /results, then powers off.
exec >/results 2>&1
say() { echo "$*"; }
systemctl is-active vrmd && say "vrmd-active"
status=$(systemctl show -p StatusText --value vrmd)
say "vrmd-status: $status"
agents=$(tr ' ' '\n' <<<"$status" | sed -n 's/^agents=//p')
clients=$(tr ' ' '\n' <<<"$status" | sed -n 's/^clients=//p')
mkdir -p /etc/systemd/system/vmschedd.service.d
printf '[Service]\nExecStart=\nExecStart=/usr/bin/vmschedd --config /etc/vrm/vmschedd.conf --vrmd %s\n' \
  "$agents" >/etc/systemd/system/vmschedd.service.d/port.conf
systemctl daemon-reload
timeout 60 systemctl start vmschedd && say "vmschedd-active"
say "vmschedd-status: $(systemctl show -p StatusText --value vmschedd)"
VRM_ENDPOINT=$clients VRM_SERVER_KEY=/etc/vrm/vrmd.pub VRM_CLIENT_KEY=/etc/vrm/admin.key \
  vrmctl hosts -f csv -c name -c reachable && say "vrmctl-ok"
systemctl reload vrmd && sleep 1 && journalctl -u vrmd --no-pager | grep -q "SIGHUP: reloaded" &&
  say "vrmd-reloaded"
journalctl -u vrmd --no-pager -o cat | head -3
timeout 60 systemctl stop vrmd vmschedd
say "vrmd-after-stop: $(systemctl show -p ActiveState,ExecMainStatus --value vrmd | tr '\n' ' ')"
say "done"
systemctl poweroff
CHECK
  chmod +x "$jail/usr/local/bin/vrm-check"
  cat >"$jail/etc/systemd/system/vrm-check.service" <<'UNIT'
[Unit]
After=vrmd.service
Wants=vrmd.service
[Service]
Type=oneshot
ExecStart=/usr/local/bin/vrm-check
[Install]
WantedBy=multi-user.target
UNIT
  ln -sf /etc/systemd/system/vrm-check.service \
    "$jail/etc/systemd/system/multi-user.target.wants/vrm-check.service"
  for m in dev/pts dev proc; do umount -l "$jail/$m" 2>/dev/null || true; done
  # Bounded: a container that does not finish in time is killed (the results say how far it got).
  timeout -k 10 240 systemd-nspawn --quiet --register=no --keep-unit --private-network --boot \
    --console=passive -D "$jail" >"$work/nspawn.log" 2>&1 || true
  results=$(cat "$jail/results" 2>/dev/null || true)
  echo "$results" | sed 's/^/  | /'
  for want in vrmd-active vmschedd-active vrmctl-ok vrmd-reloaded done; do
    check "in the booted root: $want" grep -qx "$want" <<<"$results"
  done
  check "vrmd's STATUS names OS-chosen ports" \
    grep -Eq '^vrmd-status: clients=tcp://127.0.0.1:[0-9]+ agents=tcp://127.0.0.1:[0-9]+' <<<"$results"
  check "vmschedd's STATUS says registered" grep -q "^vmschedd-status: registered host node1" <<<"$results"
  check "vrmctl reached the systemd-started vrmd with CURVE keys" grep -Eqx $'node1,true\r?' <<<"$results"  # csv lines end in CRLF
  check "systemctl stop: vrmd inactive, exit status 0" \
    grep -Eq "^vrmd-after-stop: (inactive 0|0 inactive)" <<<"$results"  # either order
  [[ $failed -eq 0 ]] || tail -20 "$work/nspawn.log"
fi

echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
