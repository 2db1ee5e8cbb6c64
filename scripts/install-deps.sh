#!/usr/bin/env bash
# Installs every Debian package vrm needs to build, test and run its demo.
# A no-op when everything is already installed; needs root (or sudo) otherwise.
set -euo pipefail

packages=(
  build-essential cmake pkg-config
  libboost-dev            # Boost.ICL (calendars), Boost.Asio and Beast (web calendar)
  libzmq3-dev cppzmq-dev  # ZeroMQ transport
  libssl-dev              # SHA-256 of the web tokens vrmd stores; the web's HTTPS (OpenSSL)
  capnproto libcapnp-dev  # wire schemas
  libsqlite3-dev          # durable store
  sqlite3                 # e2e tests read vrmd's store (tests/e2e/qemu_test.sh)
  libgtest-dev libgmock-dev libbenchmark-dev
  libcli11-dev            # command lines
  libsystemd-dev          # sd_notify: readiness, status and watchdog under systemd (daemon/)
  libspdlog-dev libfmt-dev
  libyaml-cpp-dev         # cluster descriptions
  nlohmann-json3-dev      # --json output
  chromium curl           # the web calendar's browser tests (tests/e2e/web_test.sh, web_tls_test.sh)
  openssl                 # certificates made by the HTTPS test (tests/e2e/web_tls_test.sh)
  jq                      # JSON checks in the end-to-end tests
  python3-yaml            # vrmctl -f yaml read back by a real parser (tests/cli/vrmctl_formats_test.py)
  python3-icalendar       # the calendar feeds read back by a real parser (web/tests/check_ics.py)
  debootstrap             # the Debian packages installed into a clean root (tests/packaging/deb_test.sh)
  lintian                 # the Debian packages checked (tests/packaging/lintian_test.sh)
  man-db                  # the manual pages rendered (tests/packaging/man_pages_test.py)
  zsh                     # vrmctl's zsh completion loaded in a real zsh (tests/cli/vrmctl_help_test)
  etcd-server             # replicated store (issue 16): tests/ha start real 3-member clusters
  gnuplot-nox             # the week's plots (tests/week/run_week.sh, experiments.sh)
  libvirt-dev             # libvirt backend (the test:/// driver its unit tests use is in libvirt0)
  libvirt-daemon-system libvirt-daemon-driver-qemu libvirt-clients dnsmasq-base iproute2
                          # ... and the private libvirtd hosts of its slow tests (tests/libvirt/)
  qemu-system-x86 qemu-utils  # qemu backend (qemu-img for qcow2 overlays)
  busybox-static cpio         # the qemu tests' guest initramfs (tests/guest/build-guest.sh)
  dropbear-bin openssh-client # the test guest's SSH server, and the client the qemu tests log in with
  clang-format                # tests/lint/check_format.sh (formatting is checked in CI)
  clang libclang-rt-14-dev llvm-14  # fuzzing (tests/fuzz.sh): libFuzzer, sanitizers, symbolizer
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

echo "install-deps: installing ${missing[*]}" >&2
SUDO=""
[[ $(id -u) -ne 0 ]] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
