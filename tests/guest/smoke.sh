#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# Smoke test of the guest harness: boot the stock kernel with btrfs, loop and
# xfs, check BTF, run `dupcache --version` and `dupcache doctor` in the guest,
# and compare a file with its reflink copy on a btrfs image made on the host.
# usage: smoke.sh [DUPCACHE_BINARY]   (default: the one found under build/)
set -euo pipefail

die() { echo "smoke.sh: $*" >&2; exit 1; }
here=$(cd "$(dirname "$0")" && pwd)
bin=${1:-$(find "$here/../../build" -name dupcache -type f -executable -print -quit 2>/dev/null || true)}
[ -n "$bin" ] && [ -x "$bin" ] || die "dupcache binary not found (build with ./scripts/build or pass its path)"
bin=$(realpath "$bin")
command -v mkfs.btrfs >/dev/null || die "mkfs.btrfs not found (apt-get install btrfs-progs)"

tmp=$(mktemp -d /tmp/dupcache-smoke.XXXXXX)
trap 'mountpoint -q "$tmp/mnt" && umount "$tmp/mnt"; rm -rf "$tmp"' EXIT

# A small btrfs image holding a file and its reflink copy.
img=$tmp/btrfs.img
truncate -s 256M "$img"
mkfs.btrfs -q "$img" >"$tmp/mkfs.log" 2>&1 || { cat "$tmp/mkfs.log" >&2; die "mkfs.btrfs $img failed"; }
mkdir "$tmp/mnt"
mount -o loop "$img" "$tmp/mnt" || die "cannot loop-mount $img on the host (btrfs or loop missing?)"
head -c 8M /dev/urandom > "$tmp/mnt/a"
cp --reflink=always "$tmp/mnt/a" "$tmp/mnt/b" || die "cp --reflink=always failed on host btrfs"
umount "$tmp/mnt"

cat > "$tmp/guest.sh" <<G
fail=0
echo "uptime at test start: \$(cut -d' ' -f1 /proc/uptime) s"
echo "uname: \$(uname -r)"
if [ -e /sys/kernel/btf/vmlinux ]; then echo "btf: present"; else echo "btf: MISSING"; fail=1; fi
mkdir -p /mnt/b && mount -t btrfs /dev/vda /mnt/b || { echo "mount /dev/vda failed"; exit 1; }
cmp /mnt/b/a /mnt/b/b && echo "reflink copy: identical" || fail=1
$bin --version || { echo "dupcache --version failed: \$?"; fail=1; }
$bin doctor; rc=\$?; echo "dupcache doctor exit: \$rc"; [ \$rc -ne 127 ] || fail=1
echo "uptime at test end: \$(cut -d' ' -f1 /proc/uptime) s"
umount /mnt/b
exit \$fail
G
start=$(date +%s%N)
rc=0
"$here/run.sh" --script "$tmp/guest.sh" --module btrfs --module loop --module xfs \
  --bin "$bin" --disk "$img" || rc=$?
echo "smoke.sh: guest exit $rc, run.sh took $(( ($(date +%s%N) - start) / 1000000 )) ms"
exit $rc
