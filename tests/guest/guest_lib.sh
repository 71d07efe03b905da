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
    while [ ! -s "$f" ] && [ $n -lt 500 ]; do usleep 20000; n=$((n + 1)); done
  done
}
range() { # range FILE: a mapper's mapping as "START END" (hex)
  field "$1" 1 | tr '-' ' '
}
fresh() { # fresh FILE: wait for a status line newer than now
  rm -f "$1"
  wait_status "$1"
}
