#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# usage: dkms_build.sh SOURCE_TREE KVER KERNEL_SOURCE_DIR OUT_DIR
# Builds the companion module with DKMS, as the dupcache-dkms package has it built on install:
# SOURCE_TREE holds the module's sources and its dkms.conf (a package's /usr/src/dupcache-VER, or
# the build tree's kmod/ that CMake assembles from kmod/), KVER and KERNEL_SOURCE_DIR name the
# target kernel and its headers (kernel.sh's KVER and HEADERS), and the module ends in
# OUT_DIR/dupcache.ko. The DKMS tree is a temporary directory (--dkmstree, --sourcetree): the
# host's /var/lib/dkms, /usr/src and /lib/modules are not touched. A compiler warning fails the
# build (W=1, as kmod/ is kept).
set -euo pipefail

die() { echo "dkms_build.sh: $*" >&2; exit 1; }
[ $# -eq 4 ] || { echo "usage: dkms_build.sh SOURCE_TREE KVER KERNEL_SOURCE_DIR OUT_DIR" >&2; exit 2; }
src=$(realpath "$1") kver=$2 ksrc=$3 out=$4
command -v dkms >/dev/null || die "dkms is not installed (run ./scripts/setup)"
[ -f "$src/dkms.conf" ] || die "$src/dkms.conf: no such file (SOURCE_TREE is a module tree with its dkms.conf)"
[ -f "$ksrc/Module.symvers" ] || die "$ksrc: not a kernel source directory (no Module.symvers)"
conf() { sed -nE "s/^$1=\"?([^\"]*)\"?\$/\1/p" "$src/dkms.conf"; }
name=$(conf PACKAGE_NAME) ver=$(conf PACKAGE_VERSION)
[ -n "$name" ] && [[ $ver =~ ^[0-9A-Za-z.+~-]+$ ]] ||
  die "$src/dkms.conf: PACKAGE_NAME '$name' / PACKAGE_VERSION '$ver' unusable (an unconfigured kmod/dkms.conf?)"

tmp=$(mktemp -d /tmp/dupcache-dkms.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/tree" "$tmp/src"
ln -s "$src" "$tmp/src/$name-$ver"
trees=(--dkmstree "$tmp/tree" --sourcetree "$tmp/src")
# dkms signs what it builds when the kernel has module signing: with a key made here, not the
# host's /var/lib/dkms/mok.key, and with the target kernel's own sign-file. The guests boot
# without Secure Boot, so the key being unknown to the kernel only taints it, as an unsigned
# module would.
export sign_file="$ksrc/scripts/sign-file" mok_signing_key="$tmp/mok.key" mok_certificate="$tmp/mok.pub"
export KBUILD_EXTRA_WARN=1
dkms add "${trees[@]}" -m "$name" -v "$ver" >"$tmp/dkms.log" 2>&1 ||
  { cat "$tmp/dkms.log" >&2; die "dkms add $name/$ver failed"; }
if ! dkms build "${trees[@]}" -m "$name" -v "$ver" -k "$kver" --kernelsourcedir "$ksrc" >>"$tmp/dkms.log" 2>&1; then
  cat "$tmp/dkms.log" "$tmp/tree/$name/$ver/build/make.log" >&2 2>/dev/null || true
  die "dkms build $name/$ver for $kver against $ksrc failed"
fi
# dkms keeps the build's log beside the module: TREE/NAME/VER/KVER/ARCH/log/make.log.
log=$(find "$tmp/tree/$name/$ver/$kver" -path '*/log/make.log' -print -quit)
[ -n "$log" ] || die "dkms left no make.log under $tmp/tree/$name/$ver/$kver"
if grep -q 'warning:' "$log"; then
  grep -B2 -A4 'warning:' "$log" >&2
  die "building $name/$ver for $kver printed warnings"
fi
ko=$(find "$tmp/tree/$name/$ver/$kver" -name "$name.ko*" -print -quit)
[ -n "$ko" ] || die "dkms build reported success but left no $name.ko under $tmp/tree/$name/$ver/$kver"
case $ko in
  *.ko) cat "$ko" ;; *.ko.xz) xz -dc "$ko" ;; *.ko.zst) zstd -qdc "$ko" ;; *.ko.gz) gzip -dc "$ko" ;;
  *) die "$ko: unknown module file type" ;;
esac >"$out/$name.ko" || die "cannot write $out/$name.ko"
grep -q '^Signing module' "$tmp/dkms.log" && signed=signed || signed=unsigned
echo "dkms_build.sh: dkms built $name/$ver for $kver ($signed)"
