#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
# Runs dupcache_soak on a btrfs and an XFS (reflink=1) image of its own, loop-mounted under
# /var/tmp/dupcache-soak.XXXXXX (names no other suite uses), and removes them on every exit.
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
work=$(mktemp -d /var/tmp/dupcache-soak.XXXXXX)
# shellcheck disable=SC2317  # run by the EXIT trap
cleanup() {
  for m in "$work/btrfs" "$work/xfs"; do
    if mountpoint -q "$m"; then umount "$m"; fi
  done
  rm -rf "$work"
}
trap cleanup EXIT
mkdir "$work/btrfs" "$work/xfs" "$work/run"
truncate -s 2G "$work/btrfs.img" "$work/xfs.img"
mkfs.btrfs -q "$work/btrfs.img" >/dev/null
mkfs.xfs -q -m reflink=1 "$work/xfs.img" >/dev/null
mount -o loop "$work/btrfs.img" "$work/btrfs"
mount -o loop "$work/xfs.img" "$work/xfs"
status=0
"$soak_bin" --dupcache "$dupcache" --btrfs "$work/btrfs" --xfs "$work/xfs" --work "$work/run" "${args[@]}" || status=$?
if [[ $status -ne 0 ]]; then
  echo "== daemon log (last 40 lines)"; tail -n 40 "$work/run/daemon.log" || true
  echo "== top log (last 20 lines)"; tail -n 20 "$work/run/top.log" || true
fi
exit $status
