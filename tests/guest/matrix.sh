#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# The kernel matrix: kmod_test.sh on Debian's 6.1 and 6.12 at once, one guest per core (TCG is
# one host thread per guest CPU, and each guest idles most of its run), each line prefixed with
# its kernel. Ends with a summary per kernel: the hook path doctor chose, checks passed and
# failed, wall time. Exit 0 when every kernel passed, 77 when all were skipped (kmod_test.sh
# fails instead under CI=true), 1 otherwise.
# usage: matrix.sh DUPCACHE_BINARY DKMS_SOURCE [SERIES...]   (default series: 6.1 6.12)
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
[ $# -ge 2 ] || { echo "usage: matrix.sh DUPCACHE_BINARY DKMS_SOURCE [SERIES...]" >&2; exit 2; }
bin=$1 dkms_source=$2
shift 2
kernels=("$@")
[ ${#kernels[@]} -gt 0 ] || kernels=(6.1 6.12)
logs=$(mktemp -d /tmp/dupcache-matrix.XXXXXX)
trap 'rm -rf "$logs"' EXIT

pids=()
for k in "${kernels[@]}"; do
  : >"$logs/$k.log"
  (
    t0=$(date +%s)
    "$here/kmod_test.sh" "$k" "$bin" "$dkms_source" >"$logs/$k.log" 2>&1 &
    wait $!
    echo $? >"$logs/$k.rc"
    echo $(($(date +%s) - t0)) >"$logs/$k.secs"
  ) &
  pids+=($!)
  # Shown as it comes: lines of the two guests interleave, each tagged.
  tail -n +1 -F --pid=$! "$logs/$k.log" 2>/dev/null | sed -u "s/^/[$k] /" &
done
for p in "${pids[@]}"; do wait "$p"; done
wait # the tails end with their writers

status=0 skipped=0
echo "matrix: kernel  hook    checks ok  not ok  exit  seconds"
for k in "${kernels[@]}"; do
  rc=$(cat "$logs/$k.rc")
  hook=$(sed -n 's/^guest: hook path chosen on [^:]*: //p' "$logs/$k.log")
  ok=$(grep -c '^ok - ' "$logs/$k.log")
  bad=$(grep -c '^not ok - ' "$logs/$k.log")
  printf 'matrix: %-6s  %-6s  %9s  %6s  %4s  %7s\n' "$k" "${hook:--}" "$ok" "$bad" "$rc" "$(cat "$logs/$k.secs")"
  case $rc in
    0) [ "$bad" = 0 ] && [ "$ok" -gt 0 ] || status=1 ;;
    77) skipped=$((skipped + 1)) ;;
    *) status=1 ;;
  esac
done
[ $status = 0 ] && [ $skipped = ${#kernels[@]} ] && exit 77
[ $skipped = 0 ] || status=1
exit $status
