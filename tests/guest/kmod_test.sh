#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# One kernel of the guest matrix (matrix.sh runs them all): fetches Debian's stock kernel SERIES
# and its headers (kernel.sh), builds the companion module for it with DKMS (dkms_build.sh),
# boots it under qemu (TCG) with the module, btrfs, XFS, the dupcache binary and the test
# programs, and there runs observe_guest.sh (doctor, trace, report and top --json on a btrfs and
# an XFS image made here, exact numbers) and kmod_guest.sh (the module's merge tests). Exit 77
# (skipped) where it cannot run; under CI=true that is a failure.
# usage: kmod_test.sh SERIES DUPCACHE_BINARY DKMS_SOURCE
#   SERIES       6.1 or 6.12 (see kernel.sh)
#   DKMS_SOURCE  a module tree with its dkms.conf (a package's /usr/src/dupcache-VER), or a
#                configured dkms.conf (the build tree's kmod/dkms.conf), completed with kmod/'s
#                sources
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
die() { echo "kmod_test.sh: $*" >&2; exit 1; }
skip() {
  [ "${CI:-}" = true ] && die "cannot run under CI: $*"
  echo "kmod_test.sh: skipped: $*"
  exit 77
}
[ "$(id -u)" = 0 ] || skip "needs root (loop mounts, the kernel cache in /var/cache)"
for tool in qemu-system-x86_64 mkfs.btrfs mkfs.xfs gcc make dkms pahole zstd jq cpio busybox; do
  command -v "$tool" >/dev/null || skip "$tool is not installed (run ./scripts/setup)"
done
[ $# -eq 3 ] || { echo "usage: kmod_test.sh 6.1|6.12 DUPCACHE_BINARY DKMS_SOURCE" >&2; exit 2; }
series=$1 bin=$2 dkms_source=$3
[ -x "$bin" ] || die "$bin: not an executable (build with ./scripts/build)"
bin=$(realpath "$bin")

env=$("$here/kernel.sh" "$series") || die "cannot fetch the $series kernel"
eval "$env"
tmp=$(mktemp -d /tmp/dupcache-kmod.XXXXXX)
trap 'mountpoint -q "$tmp/mnt" && umount "$tmp/mnt"; rm -rf "$tmp"' EXIT

# The module, built by DKMS from the tree the dupcache-dkms package ships, on the host: the
# guest is a busybox initramfs with no compiler, make or headers to run DKMS in. A warning fails.
if [ -d "$dkms_source" ]; then
  src=$dkms_source
else
  [ -f "$dkms_source" ] || die "DKMS_SOURCE $dkms_source: neither a module tree nor a dkms.conf"
  src=$tmp/dkms-source
  mkdir "$src"
  cp "$here"/../../kmod/{dupcache.c,dupcache_kmod.h,Kbuild,Makefile} "$src/"
  cp "$dkms_source" "$src/dkms.conf"
fi
mkdir "$tmp/kmod"
"$here/dkms_build.sh" "$src" "$KVER" "$HEADERS" "$tmp/kmod"

gcc -static -O2 -Wall -Wextra -Werror -o "$tmp/mapper" "$here/mapper.c"
gcc -static -O2 -Wall -Wextra -Werror -I"$here/../../kmod" -o "$tmp/probe" "$here/probe.c"

# The filesystem: lib (4 MiB, like a shared library) and four reflink copies of it, c1..c4.
img=$tmp/btrfs.img
truncate -s 256M "$img"
mkfs.btrfs -q "$img" >"$tmp/mkfs.log" 2>&1 || { cat "$tmp/mkfs.log" >&2; die "mkfs.btrfs $img failed"; }
mkdir "$tmp/mnt"
mount -o loop "$img" "$tmp/mnt" || die "cannot loop-mount $img"
head -c 4M /dev/urandom >"$tmp/mnt/lib"
for i in 1 2 3 4; do cp --reflink=always "$tmp/mnt/lib" "$tmp/mnt/c$i"; done
umount "$tmp/mnt"

# The same on XFS (reflink=1): lib and two reflink copies, x1 and x2.
ximg=$tmp/xfs.img
truncate -s 320M "$ximg"
mkfs.xfs -q -m reflink=1 "$ximg" >"$tmp/mkfs.log" 2>&1 || { cat "$tmp/mkfs.log" >&2; die "mkfs.xfs $ximg failed"; }
mount -o loop "$ximg" "$tmp/mnt" || die "cannot loop-mount $ximg"
head -c 2M /dev/urandom >"$tmp/mnt/lib"
for i in 1 2; do cp --reflink=always "$tmp/mnt/lib" "$tmp/mnt/x$i"; done
umount "$tmp/mnt"

{
  echo "DUPCACHE=$bin SERIES=$series"
  cat "$here/guest_lib.sh" "$here/observe_guest.sh" "$here/kmod_guest.sh"
} >"$tmp/guest.sh"
status=0
"$here/run.sh" --kernel "$series" --script "$tmp/guest.sh" --module btrfs --module xfs --ko "$tmp/kmod/dupcache.ko" \
  --bin "$bin" --bin "$(command -v jq)" --file "$tmp/mapper:/tmp/mapper" --file "$tmp/probe:/tmp/probe" \
  --disk "$img" --disk "$ximg" --mem 1024 --timeout 600 || status=$?
exit $status
