#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# Real LXC (Debian's lxc 5.0, privileged containers) on a loop btrfs mounted at the default
# lxcpath, /var/lib/lxc: a base container made by the busybox template with the btrfs backing
# store, the payloads added to its rootfs, three snapshot clones web-1..3 (lxc-copy -s) reading
# the same payloads. Checks dupcache's report, container rows, --container, a stopped
# container's row, evict and unprivileged attribution against fincore (see lib.sh). Exit 77
# (skipped) where it cannot run; under CI=true that is a failure.
# usage: lxc_test.sh [DUPCACHE_BINARY]
set -euo pipefail
. "$(dirname "$0")/lib.sh"

rt_init lxc "$@"
rt_need lxc-create lxc-copy lxc-start lxc-stop lxc-attach lxc-destroy lxc-info lxc-config
[ -x /usr/share/lxc/templates/lxc-busybox ] || rt_skip "LXC's busybox template is missing (run ./scripts/setup)"

lxcpath=$(lxc-config lxc.lxcpath)
base=dupcache-base

rt_loop_btrfs "$lxcpath"
# Left outside the test's directories by LXC: its lock directory, its cgroups (the monitor's,
# the payload's, and lxc.pivot, where the monitor parks itself).
rt_forget_path /run/lxc
rt_forget_cgroups lxc.pivot 'lxc.monitor.*' 'lxc.payload.*'

# No network (the host has no lxcbr0) and no AppArmor profile (this kernel has no AppArmor); the
# host's default.conf would ask for both.
cat >"$rt_tmp/lxc.conf" <<'EOF'
lxc.net.0.type = empty
lxc.apparmor.profile = unconfined
EOF
rt_at_exit "destroy_all"
destroy_all() {
  local n
  for n in "${rt_names[@]}" "$base"; do
    lxc-info -n "$n" >/dev/null 2>&1 || continue
    lxc-stop -n "$n" -k >/dev/null 2>&1 || true
    lxc-destroy -n "$n"
  done
}
lxc-create -n "$base" -t busybox -B btrfs -f "$rt_tmp/lxc.conf" -- --busybox-path "$rt_busybox" \
  >"$rt_tmp/lxc-create.log" 2>&1 || { cat "$rt_tmp/lxc-create.log" >&2; rt_die "lxc-create $base failed"; }
# The template bind-mounts the host's /lib, /usr/lib, /lib64 and /usr/lib64 read-only into the
# container for a dynamic busybox; they would hide the payloads under /usr/lib, and busybox here
# is static.
sed -i -E '/^lxc\.mount\.entry = \/(usr\/)?lib(64)? /d' "$lxcpath/$base/config"
rt_image_root=$lxcpath/$base/rootfs
rt_write_payloads "$rt_image_root$rt_payload_dir"
# Written extents before the snapshots, so every clone shares them.
sync

rt_exec() {
  local n=$1
  shift
  lxc-attach -n "$n" -- "$@"
}
rt_pid() { lxc-info -n "$1" -p -H; }
# The command is given to lxc-start, not as lxc.init.cmd: LXC splits that value on blanks and
# does not honour quotes.
rt_start() {
  rm -f "${rt_root[$1]}/tmp/ready"
  lxc-start -n "$1" -d -- /bin/sh -c "$rt_container_cmd"
  rt_wait_ready "$1"
}
rt_stop() { lxc-stop -n "$1" -k; }

for n in "${rt_names[@]}"; do
  lxc-copy -s -n "$base" -N "$n"
  rt_root[$n]=$lxcpath/$n/rootfs
  rt_id[$n]=$n
  lxc-start -n "$n" -d -- /bin/sh -c "$rt_container_cmd"
done
rt_wait_ready "${rt_names[@]}"

# The image layer's (the base's) copies were cached when written: rt_run_checks drops them.
rt_run_checks web-3
