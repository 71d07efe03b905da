#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# The companion module, proven where it can load: builds kmod/ against Debian's stock kernel
# headers, boots that kernel under qemu (TCG) with the module, btrfs, the dupcache binary and the
# test programs, and runs kmod_guest.sh there on a btrfs and an XFS image made here. Also loads dupcache's BPF
# programs on that kernel. Exit 77 (skipped) where it cannot run; under CI=true that is a failure.
# usage: kmod_test.sh [DUPCACHE_BINARY]
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
die() { echo "kmod_test.sh: $*" >&2; exit 1; }
skip() {
  [ "${CI:-}" = true ] && die "cannot run under CI: $*"
  echo "kmod_test.sh: skipped: $*"
  exit 77
}
[ "$(id -u)" = 0 ] || skip "needs root (loop mounts, installing the kernel headers)"
for tool in qemu-system-x86_64 mkfs.btrfs gcc make jq cpio busybox; do
  command -v "$tool" >/dev/null || skip "$tool is not installed (run ./scripts/setup)"
done
bin=${1:-$(find "$here/../../build" -name dupcache -type f -executable -print -quit 2>/dev/null || true)}
[ -n "$bin" ] && [ -x "$bin" ] || die "dupcache binary not found (build with ./scripts/build or pass its path)"
bin=$(realpath "$bin")

eval "$("$here/kernel.sh")"
tmp=$(mktemp -d /tmp/dupcache-kmod.XXXXXX)
trap 'mountpoint -q "$tmp/mnt" && umount "$tmp/mnt"; rm -rf "$tmp"' EXIT

# The module, built as DKMS would: out of tree against the target kernel's headers. A warning
# fails the test.
cp -r "$here/../../kmod" "$tmp/kmod"
rm -f "$tmp/kmod"/*.ko "$tmp/kmod"/*.o
if ! make -C "$HEADERS" M="$tmp/kmod" W=1 modules >"$tmp/kbuild.log" 2>&1; then
  cat "$tmp/kbuild.log" >&2
  die "building kmod/ against $HEADERS failed"
fi
if grep -q 'warning:' "$tmp/kbuild.log"; then
  grep -B2 -A4 'warning:' "$tmp/kbuild.log" >&2
  die "building kmod/ against $HEADERS printed warnings"
fi
echo "kmod_test.sh: built dupcache.ko for $KVER"

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
  echo "DUPCACHE=$bin"
  cat "$here/kmod_guest.sh"
} >"$tmp/guest.sh"
status=0
"$here/run.sh" --script "$tmp/guest.sh" --module btrfs --module xfs --ko "$tmp/kmod/dupcache.ko" \
  --bin "$bin" --bin "$(command -v jq)" --file "$tmp/mapper:/tmp/mapper" --file "$tmp/probe:/tmp/probe" \
  --disk "$img" --disk "$ximg" --mem 1024 --timeout 300 || status=$?
exit $status
