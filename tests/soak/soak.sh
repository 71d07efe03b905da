#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
# Runs dupcache_soak on a btrfs and an XFS (reflink=1) image of its own, loop-mounted under
# /var/tmp/dupcache-soak.XXXXXX (names no other suite uses), and removes them on every exit, on
# SIGINT, SIGTERM and SIGHUP too (it stops the soak and its processes first); what a SIGKILL
# leaves behind, the next soak.sh removes.
# Pauses nothing: DAMON stays as it is (on, on this host).
#   soak.sh [--seconds N] [--check-every S] [--seed N] [--json FILE] [--snapshots on|off] ... DUPCACHE DUPCACHE_SOAK
# (every option is passed to dupcache_soak; it prints them with a wrong one)
# Exit 77 (skip) when not root, unless CI=true, where that is a failure.
set -euo pipefail
args=()
while [[ $# -gt 2 ]]; do
  case $1 in
    --seconds|--check-every|--seed|--json|--ring-buffer|--cgroup-limit|--burst-ms|--snapshots) args+=("$1" "$2"); shift 2 ;;
    *) echo "soak.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
[[ $# -eq 2 ]] || { echo "usage: soak.sh [options] DUPCACHE DUPCACHE_SOAK" >&2; exit 2; }
dupcache=$1 soak_bin=$2
if [[ $(id -u) -ne 0 ]]; then
  if [[ ${CI:-} == true ]]; then echo "soak.sh: needs root (loop mounts, BPF); CI=true: failing" >&2; exit 1; fi
  echo "soak.sh: skipped: needs root (loop mounts, BPF)"; exit 77
fi
# A soak killed with SIGKILL (a ctest timeout) cannot clean up: its directory keeps the pid of
# the shell that made it, and the next soak unmounts and removes it once that shell is gone.
unmount_and_remove() {
  local dir=$1 m
  for m in "$dir/btrfs" "$dir/xfs"; do
    if mountpoint -q "$m"; then
      # Retried: a process of the soak that was just killed may still hold the mount a moment.
      for _ in 1 2 3 4 5 6 7 8 9 10; do umount "$m" 2>/dev/null && break; sleep 0.5; done
      if mountpoint -q "$m"; then echo "soak.sh: cannot unmount $m (busy: $(fuser -m "$m" 2>&1 | tr -s ' '))" >&2; return 1; fi
    fi
  done
  rm -rf "$dir"
}
for old in /var/tmp/dupcache-soak.*/; do
  [[ -f $old/owner ]] || continue
  owner=$(cat "$old/owner")
  if [[ $owner =~ ^[0-9]+$ ]] && ! kill -0 "$owner" 2>/dev/null; then
    echo "soak.sh: removing ${old%/}, left by soak.sh $owner (killed)"
    # its memory cgroup (dupcache_soak names it after its own pid, noted in soak_pid)
    if [[ -f $old/soak_pid ]]; then
      for cg in /sys/fs/cgroup/memory /sys/fs/cgroup/unified /sys/fs/cgroup; do
        rmdir "$cg/dupcache-soak-$(cat "$old/soak_pid")" 2>/dev/null || true
      done
    fi
    unmount_and_remove "${old%/}" || true
  fi
done

work=$(mktemp -d /var/tmp/dupcache-soak.XXXXXX)
echo $$ >"$work/owner"
soak_pid=
# shellcheck disable=SC2317  # run by the traps
stop_soak() {
  [[ -n $soak_pid ]] || return 0
  # dupcache_soak leads a process group of its own: it, top, the daemon and the cgroup worker.
  if kill -0 "$soak_pid" 2>/dev/null; then
    kill -TERM -- "-$soak_pid" 2>/dev/null || true
    for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$soak_pid" 2>/dev/null || break; sleep 0.5; done
  fi
  kill -KILL -- "-$soak_pid" 2>/dev/null || true
  wait "$soak_pid" 2>/dev/null || true
  for cg in /sys/fs/cgroup/memory /sys/fs/cgroup/unified /sys/fs/cgroup; do
    rmdir "$cg/dupcache-soak-$soak_pid" 2>/dev/null || true
  done
  soak_pid=
}
# shellcheck disable=SC2317
cleanup() {
  stop_soak
  unmount_and_remove "$work"
}
# shellcheck disable=SC2317
on_signal() {
  echo "soak.sh: $1: stopping the soak and removing $work" >&2
  trap - EXIT
  cleanup
  exit $((128 + $2))
}
trap cleanup EXIT
trap 'on_signal SIGINT 2' INT
trap 'on_signal SIGTERM 15' TERM
trap 'on_signal SIGHUP 1' HUP
mkdir "$work/btrfs" "$work/xfs" "$work/run"
truncate -s 2G "$work/btrfs.img" "$work/xfs.img"
mkfs.btrfs -q "$work/btrfs.img" >/dev/null
mkfs.xfs -q -m reflink=1 "$work/xfs.img" >/dev/null
mount -o loop "$work/btrfs.img" "$work/btrfs"
mount -o loop "$work/xfs.img" "$work/xfs"
status=0
# In the background (and a session of its own, so one signal reaches all its processes): bash
# runs a trap only between commands, and would wait for the soak before cleaning up.
setsid "$soak_bin" --dupcache "$dupcache" --btrfs "$work/btrfs" --xfs "$work/xfs" --work "$work/run" "${args[@]}" &
soak_pid=$!
echo "$soak_pid" >"$work/soak_pid"
wait "$soak_pid" || status=$?
soak_pid=
if [[ $status -ne 0 ]]; then
  echo "== daemon log (last 40 lines)"; tail -n 40 "$work/run/daemon.log" || true
  echo "== top log (last 20 lines)"; tail -n 20 "$work/run/top.log" || true
fi
exit $status
