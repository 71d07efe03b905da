#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# usage: kernel.sh SERIES   (6.1: bookworm's linux-image-amd64; 6.12: linux-image-6.12-amd64)
# Fetch and unpack one of Debian's stock kernels and its headers into DUPCACHE_GUEST_CACHE
# (/var/cache/dupcache-guest), nothing installed: `apt-get install` of the headers would pull
# the image into the host's /boot (6.12's headers depend on it) and run its initramfs hooks.
# Prints KVER=, VMLINUZ=, VMLINUX= (uncompressed ELF, PVH bootable), MODDIR=, HEADERS= (a
# kernel source directory for out-of-tree builds, DKMS's --kernelsourcedir) and MODCOMP= (how
# the stock modules are compressed: none|xz|zst|gz) lines for eval.
set -euo pipefail

die() { echo "kernel.sh: $*" >&2; exit 1; }
series=${1:-}
case $series in
  6.1) meta=linux-image-amd64 ;;       # bookworm's own kernel
  6.12) meta=linux-image-6.12-amd64 ;; # trixie's series, built for bookworm (bookworm-security)
  *) die "usage: kernel.sh 6.1|6.12 (got '${series}')" ;;
esac
cache=${DUPCACHE_GUEST_CACHE:-/var/cache/dupcache-guest}
mkdir -p "$cache" || die "cannot create cache dir $cache"

# Depends of a package matching an extended regex, from apt-cache (alternatives, "|Depends",
# are left out: for the headers they are the image, which is not wanted here).
depends() { apt-cache depends "$1" 2>/dev/null | sed -nE "s/^  Depends: ($2)\$/\1/p"; }

# Downloads each package (to the cache, once) and unpacks it into the directory $1.
unpack() {
  local into=$1 p deb
  shift
  for p in "$@"; do
    if ! ls "$cache/${p}_"*.deb >/dev/null 2>&1; then
      (cd "$cache" && apt-get download -q -o APT::Sandbox::User=root "$p" >&2) ||
        { apt-get update -q >&2 && (cd "$cache" && apt-get download -q -o APT::Sandbox::User=root "$p" >&2); } ||
        die "apt-get download $p failed"
    fi
    deb=$(ls "$cache/${p}_"*.deb | tail -n1)
    dpkg-deb -x "$deb" "$into" || die "dpkg-deb -x $deb failed"
  done
}

# The real image package behind the metapackage. apt-cache takes ~1 s here, so the answer is
# kept until the package lists change.
if [ -s "$cache/image-pkg-$series" ] && [ "$cache/image-pkg-$series" -nt /var/lib/apt/lists ]; then
  pkg=$(cat "$cache/image-pkg-$series")
else
  pkg=$(depends "$meta" 'linux-image-[0-9].*-amd64' | head -n1)
  [ -n "$pkg" ] || die "cannot resolve $meta's Depends via apt-cache (run apt-get update?)"
  echo "$pkg" > "$cache/image-pkg-$series"
fi
kver=${pkg#linux-image-}
[[ $kver == "$series".* ]] || die "$meta resolves to $pkg, not a $series kernel"
root="$cache/$kver"
vmlinuz="$root/boot/vmlinuz-$kver"
vmlinux="$root/boot/vmlinux-$kver"
moddir="$root/lib/modules/$kver"
headers="$root/usr/src/linux-headers-$kver"

if [ ! -e "$root/.done" ]; then
  rm -rf "$root"
  unpack "$root" "$pkg"
  [ -f "$vmlinuz" ] || die "$pkg has no boot/vmlinuz-$kver"
  # Unpack the ELF vmlinux from the bzImage (payload_offset/length in the setup header): QEMU
  # boots it through PVH, skipping ~4 s of in-guest decompression. Debian's 6.1 compresses it
  # with xz, 6.12 with zstd, whose payload ends with the 4-byte uncompressed size that the
  # x86 boot code reads (not part of the zstd frame).
  rd() { od -An -t "u$2" -j "$1" -N "$2" "$vmlinuz" | tr -d ' '; }
  off=$(( ($(rd $((0x1f1)) 1) + 1) * 512 + $(rd $((0x248)) 4) ))
  len=$(rd $((0x24c)) 4)
  magic=$(od -An -t x1 -j "$off" -N 6 "$vmlinuz" | tr -d ' ')
  case $magic in
    fd377a585a00) unz=(xz -dc --single-stream) ;;
    28b52ffd*) unz=(zstd -qdc) len=$((len - 4)) ;;
    *) die "$vmlinuz: payload with magic $magic is neither xz nor zstd" ;;
  esac
  dd if="$vmlinuz" iflag=skip_bytes,count_bytes skip="$off" count="$len" bs=1M status=none |
    "${unz[@]}" > "$vmlinux" || die "cannot unpack the ${unz[0]} payload of $vmlinuz into $vmlinux"
  [ "$(od -An -c -N 4 "$vmlinux" | tr -d ' ')" = '177ELF' ] || die "$vmlinux: the payload is not an ELF kernel"
  # Index modules in the extracted tree (needed by modprobe --show-depends).
  depmod -b "$root" "$kver" || die "depmod on $root failed"
  touch "$root/.done"
fi

if [ ! -e "$root/.headers-done" ]; then
  hdeps=$(depends "linux-headers-$kver" 'linux-headers-.*-common|linux-kbuild-.*')
  [ "$(wc -w <<< "$hdeps")" = 2 ] ||
    die "linux-headers-$kver: expected a -common and a linux-kbuild Depends via apt-cache, got '$hdeps'"
  # shellcheck disable=SC2086 # two package names
  unpack "$root" "linux-headers-$kver" $hdeps
  # The arch Makefile includes the common one by its absolute /usr/src path; the scripts and
  # tools symlinks into linux-kbuild are relative and resolve inside $root already.
  sed -i -E "s|^include /usr/src/|include $root/usr/src/|" "$headers/Makefile"
  common=$(sed -n 's/^include //p' "$headers/Makefile")
  [ -f "$common" ] || die "$headers/Makefile includes $common, which is not there"
  [ -f "$headers/Module.symvers" ] || die "$headers/Module.symvers missing after unpacking"
  touch "$root/.headers-done"
fi

ko=$(find "$moddir/kernel" -name 'loop.ko*' -print -quit)
case $ko in
  *.ko) comp=none ;; *.ko.xz) comp=xz ;; *.ko.zst) comp=zst ;; *.ko.gz) comp=gz ;;
  *) comp=unknown ;;
esac
echo "KVER=$kver"
echo "VMLINUZ=$vmlinuz"
echo "VMLINUX=$vmlinux"
echo "MODDIR=$moddir"
echo "HEADERS=$headers"
echo "MODCOMP=$comp"
