#!/usr/bin/env bash
# The <emulator> of the libvirt tests' guests: qemu-system-x86_64 with 8 KiB more guest RAM than
# libvirt asks for.
#
# Why: QEMU 7.2 under TCG loses guest writes during live migration when a RAM block's size is a
# multiple of 256 KiB (its dirty-bitmap fast path clears dirty bits without bringing the TCG TLB
# up to date; fixed upstream in QEMU 9.0). The qemu backend avoids it by giving -m in KiB plus
# 8 KiB; libvirt cannot: it rounds every domain's memory up to a whole MiB (a multiple of 256 KiB),
# and a 128 MiB (or 129 MiB) guest writing 8 MiB/s crashed after a live migration here (kernel
# page fault on the destination). KVM hosts track dirty pages in the kernel and do not need this.
#
# It rewrites "-m N" (MiB) to "-m <N MiB + 8 KiB>k" and the "size" of the memory-backend-ram
# "pc.ram" to match, and passes everything else through (capability probes included).
set -euo pipefail
args=()
expect_m=0
for a in "$@"; do
  if [[ $expect_m == 1 ]]; then
    expect_m=0
    if [[ $a =~ ^([0-9]+)$ ]]; then
      a="$((a * 1024 + 8))k"
    elif [[ $a =~ ^size=([0-9]+)k$ ]]; then
      a="size=$((BASH_REMATCH[1] + 8))k"
    fi
  elif [[ $a == -m ]]; then
    expect_m=1
  elif [[ $a == *'"qom-type":"memory-backend-ram"'* && $a == *'"id":"pc.ram"'* &&
    $a =~ \"size\":([0-9]+) ]]; then
    a=${a/\"size\":${BASH_REMATCH[1]}/\"size\":$((BASH_REMATCH[1] + 8192))}
  fi
  args+=("$a")
done
exec /usr/bin/qemu-system-x86_64 "${args[@]}"
