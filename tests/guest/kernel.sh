#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# Fetch and unpack Debian's stock kernel image matching linux-headers-amd64
# (no install: no /boot, no initramfs hooks), make sure the matching headers
# are installed, and print KVER=, VMLINUZ=, VMLINUX= (uncompressed ELF, PVH
# bootable), MODDIR=, HEADERS= lines for eval.
# Modules are left as shipped; MODCOMP= says how they are compressed (none|xz|zst|gz).
set -euo pipefail

die() { echo "kernel.sh: $*" >&2; exit 1; }
cache=${DUPCACHE_GUEST_CACHE:-/var/cache/dupcache-guest}
mkdir -p "$cache" || die "cannot create cache dir $cache"

# Resolve the real image package behind the linux-image-amd64 metapackage.
# apt-cache takes ~1 s here, so the answer is kept until the package lists change.
if [ -s "$cache/image-pkg" ] && [ "$cache/image-pkg" -nt /var/lib/apt/lists ]; then
  pkg=$(cat "$cache/image-pkg")
else
  pkg=$(apt-cache depends linux-image-amd64 2>/dev/null |
        sed -n 's/^ *Depends: \(linux-image-[0-9].*-amd64\)$/\1/p' | head -n1)
  [ -n "$pkg" ] || die "cannot resolve linux-image-amd64's Depends via apt-cache (run apt-get update?)"
  echo "$pkg" > "$cache/image-pkg"
fi
kver=${pkg#linux-image-}
root="$cache/$kver"
vmlinuz="$root/boot/vmlinuz-$kver"
vmlinux="$root/boot/vmlinux-$kver"
moddir="$root/lib/modules/$kver"

if [ ! -e "$root/.done" ]; then
  if ! ls "$cache/${pkg}_"*.deb >/dev/null 2>&1; then
    (cd "$cache" && apt-get download -q -o APT::Sandbox::User=root "$pkg" >&2) ||
      { apt-get update -q >&2 && (cd "$cache" && apt-get download -q -o APT::Sandbox::User=root "$pkg" >&2); } ||
      die "apt-get download $pkg failed"
  fi
  deb=$(ls "$cache/${pkg}_"*.deb | tail -n1)
  rm -rf "$root"
  dpkg-deb -x "$deb" "$root" || die "dpkg-deb -x $deb failed"
  [ -f "$vmlinuz" ] || die "$deb has no boot/vmlinuz-$kver"
  # Unpack the ELF vmlinux from the bzImage (payload_offset/length in the setup
  # header): QEMU boots it through PVH, skipping ~4 s of in-guest decompression.
  rd() { od -An -t "u$2" -j "$1" -N "$2" "$vmlinuz" | tr -d ' '; }
  off=$(( ($(rd $((0x1f1)) 1) + 1) * 512 + $(rd $((0x248)) 4) ))
  dd if="$vmlinuz" iflag=skip_bytes,count_bytes skip="$off" count="$(rd $((0x24c)) 4)" \
      bs=1M status=none | xz -dc --single-stream > "$vmlinux" ||
    die "cannot unpack an xz payload from $vmlinuz into $vmlinux (not CONFIG_KERNEL_XZ?)"
  # Index modules in the extracted tree (needed by modprobe --show-depends).
  depmod -b "$root" "$kver" || die "depmod on $root failed"
  touch "$root/.done"
fi

headers=/usr/src/linux-headers-$kver
if [ ! -f "$headers/Module.symvers" ]; then
  apt-get install -y -q "linux-headers-$kver" >&2 || die "apt-get install linux-headers-$kver failed"
  [ -f "$headers/Module.symvers" ] || die "$headers/Module.symvers missing after install"
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
