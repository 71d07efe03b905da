# SPDX-License-Identifier: GPL-2.0-only
# The guest scripts' helpers (busybox sh), first in the script kmod_test.sh assembles:
# DUPCACHE=... SERIES=..., this file, observe_guest.sh, kmod_guest.sh. Each check prints
# "ok - ..." or "not ok - ..." and counts failures in $fails, the script's exit status.
set -u
fails=0
check() { # check DESCRIPTION ACTUAL EXPECTED
  if [ "$2" = "$3" ]; then echo "ok - $1"; return 0; fi
  echo "not ok - $1: expected '$3', got '$2'"
  fails=$((fails + 1))
  return 1
}
field() { # field FILE N: the Nth field of a mapper's status line
  sed -n 1p "$1" | cut -d' ' -f"$2"
}
wait_status() { # wait_status FILE...: until each mapper has written its status
  for f in "$@"; do
    n=0
    while [ ! -s "$f" ] && [ $n -lt 1500 ]; do usleep 20000; n=$((n + 1)); done
  done
}
range() { # range FILE: a mapper's mapping as "START END" (hex)
  field "$1" 1 | tr '-' ' '
}
fresh() { # fresh FILE: wait for a status line newer than now
  rm -f "$1"
  wait_status "$1"
}
drop_caches() { # every clean page out of the page cache, for counts that start from nothing
  # drop_caches skips a folio that still sits in another CPU's LRU batch (an extra reference):
  # right after a read on the other CPU, one page of it could stay cached. Compaction first
  # drains the batches of all CPUs (lru_add_drain_all).
  echo 1 >/proc/sys/vm/compact_memory
  echo 3 >/proc/sys/vm/drop_caches
}
