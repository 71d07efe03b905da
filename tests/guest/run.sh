#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# Boot one of Debian's stock kernels (--kernel 6.1|6.12, see kernel.sh) under QEMU/TCG with a busybox
# initramfs, load the requested modules, run a guest script and exit with its
# status.  Each --disk is a virtio-blk drive: /dev/vda, /dev/vdb, ... in order.
# Exit 125 when the guest gave no status (panic, crash, timeout), 123 when a
# module failed to load (the script is then not run), 2 on a usage error.
set -euo pipefail

usage() {
  cat >&2 <<'U'
usage: run.sh --kernel SERIES --script GUEST_SCRIPT [--module NAME]... [--ko PATH]... [--bin PATH]...
              [--file SRC:DEST]... [--disk IMAGE]... [--mem MiB] [--timeout SECONDS]
U
  exit 2
}
die() { echo "run.sh: $*" >&2; exit 2; }

here=$(cd "$(dirname "$0")" && pwd)
kernel="" script="" mem=1024 tmo=300
mods=() kos=() bins=() files=() disks=()
while [ $# -gt 0 ]; do
  [ $# -ge 2 ] || usage
  case $1 in
    --kernel) kernel=$2 ;; --script) script=$2 ;; --module) mods+=("$2") ;; --ko) kos+=("$2") ;;
    --bin) bins+=("$2") ;; --file) files+=("$2") ;; --disk) disks+=("$2") ;;
    --mem) mem=$2 ;; --timeout) tmo=$2 ;; *) usage ;;
  esac
  shift 2
done
[ -n "$script" ] && [ -n "$kernel" ] || usage
[[ $mem =~ ^[0-9]+$ ]] || die "--mem $mem: not a number of MiB"
[[ $tmo =~ ^[0-9]+$ ]] || die "--timeout $tmo: not a number of seconds"
[ -f "$script" ] || die "guest script $script: not a file"
for f in "${kos[@]}" "${bins[@]}" "${disks[@]}"; do [ -f "$f" ] || die "$f: not a file"; done
busybox=$(command -v busybox) || die "busybox not found (apt-get install busybox-static)"
file -L "$busybox" | grep -q 'statically linked' || die "$busybox is not static (install busybox-static)"

env=$("$here/kernel.sh" "$kernel") || die "cannot fetch the $kernel kernel"
eval "$env"
root=${MODDIR%/lib/modules/*}

tmp=$(mktemp -d /tmp/dupcache-guest.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
ir=$tmp/root
mkdir -p "$ir"/{bin,sbin,usr/bin,usr/sbin,proc,sys,dev,tmp,mnt,boot,etc,lib/modules/extra,lib/modules/stock}
cp "$busybox" "$ir/bin/busybox"   # applet symlinks are made at boot by /init
# kernel config (the stock kernel has no /proc/config.gz)
cp "$root/boot/config-$KVER" "$ir/boot/config-$KVER"

# Stock modules plus their dependencies, in load order, deduplicated.
[ ${#disks[@]} -eq 0 ] || mods=(virtio_pci virtio_blk "${mods[@]}")
: > "$ir/modules.list"
for m in "${mods[@]}"; do
  deps=$(modprobe -d "$root" -S "$KVER" --show-depends "$m" 2>&1) ||
    die "module $m: not found in stock kernel $KVER ($deps)"
  while read -r kind path _; do
    [ "$kind" = insmod ] || continue
    name=$(basename "$path") cat=cat
    case $name in   # busybox insmod wants plain .ko files
      *.ko.xz) cat="xz -dc" ;; *.ko.zst) cat="zstd -qdc" ;; *.ko.gz) cat="gzip -dc" ;;
      *.ko) ;; *) die "module $m: unknown module file type $path" ;;
    esac
    name=${name%.ko*}.ko
    [ -e "$ir/lib/modules/stock/$name" ] && continue
    $cat "$path" > "$ir/lib/modules/stock/$name" || die "module $m: cannot unpack $path"
    echo "/lib/modules/stock/$name" >> "$ir/modules.list"
  done <<< "$deps"
done
for k in "${kos[@]}"; do
  cp "$k" "$ir/lib/modules/extra/"
  echo "/lib/modules/extra/$(basename "$k")" >> "$ir/modules.list"
done

# Host executables (debug info stripped) with their shared libraries and ELF
# interpreter, at the same absolute paths.
for b in "${bins[@]}"; do
  real=$(realpath "$b")
  mkdir -p "$ir$(dirname "$real")"
  objcopy --strip-debug "$real" "$ir$real" 2>/dev/null || cp "$real" "$ir$real"
  ! ldd "$b" 2>/dev/null | grep 'not found' || die "--bin $b: ldd reports missing libraries"
  for lib in $(ldd "$b" 2>/dev/null | grep -o '/[^ ]*' || true); do
    [ -e "$ir$lib" ] && continue
    mkdir -p "$ir$(dirname "$lib")"
    cp -L "$lib" "$ir$lib" || die "--bin $b: cannot copy library $lib"
  done
done
for f in "${files[@]}"; do
  src=${f%%:*} dst=${f#*:}
  [ "$src" != "$f" ] && [ -n "$dst" ] || die "--file $f: expected SRC:DEST"
  [ -e "$src" ] || die "--file $f: $src does not exist"
  mkdir -p "$ir$(dirname "$dst")"
  cp -a "$src" "$ir$dst"
done
cp "$script" "$ir/test.sh"

cat > "$ir/init" <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/tmp
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
# tmpfs /tmp, keeping whatever --bin/--file put under /tmp
mkdir /.tmp && mount -t tmpfs tmpfs /.tmp && cp -a /tmp/. /.tmp/ && rm -rf /tmp/* && mount -o move /.tmp /tmp
mount -t debugfs debugfs /sys/kernel/debug
mount -t tracefs tracefs /sys/kernel/tracing
mount -t cgroup2 cgroup2 /sys/fs/cgroup
mount -t bpf bpf /sys/fs/bpf 2>/dev/null
status=0
while read -r ko; do
  insmod "$ko" || { echo "init: insmod $ko failed"; status=123; }
done < /modules.list
[ $status -ne 0 ] || { cd /tmp; sh /test.sh; status=$?; cd /; }
echo; echo "DUPCACHE-GUEST-EXIT=$status"
sync
poweroff -f
INIT
chmod +x "$ir/init" "$ir/test.sh"
(cd "$ir" && find . | cpio -o -H newc --quiet | gzip -1) > "$tmp/initrd.gz"

drives=()
for d in "${disks[@]}"; do drives+=(-drive "file=$d,format=raw,if=virtio"); done
log=$tmp/console.log
rc=0
timeout --foreground -k 5 "$tmo" qemu-system-x86_64 -accel tcg -cpu max -m "$mem" -smp 2 \
  -bios qboot.rom -nographic -no-reboot -nodefaults -serial stdio -monitor none \
  -kernel "$VMLINUX" -initrd "$tmp/initrd.gz" "${drives[@]}" \
  -append "console=ttyS0 panic=-1 quiet loglevel=3 mitigations=off tsc=reliable" \
  < /dev/null 2>&1 | sed -u 's/\r//g' | tee "$log" || rc=$?
status=$(sed -n 's/.*DUPCACHE-GUEST-EXIT=\([0-9]*\)$/\1/p' "$log" | tail -n1)
if [ -z "$status" ]; then
  case $rc in
    0) why="guest panicked or crashed (qemu exited normally)" ;;
    124) why="timed out after ${tmo}s" ;;
    *) why="qemu failed with status $rc" ;;
  esac
  echo "run.sh: no DUPCACHE-GUEST-EXIT marker: $why; last 40 console lines:" >&2
  tail -n 40 "$log" >&2
  exit 125
fi
exit "$status"
