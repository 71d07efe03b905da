# SPDX-License-Identifier: GPL-2.0-only
# What dupcache sees on this kernel, in the qemu guest booted by kmod_test.sh (after
# guest_lib.sh; kmod_guest.sh follows): doctor's verdicts, then trace, report and top --json on
# the btrfs image (/dev/vda: lib and its reflink copies c1..c4, 4 MiB each) and the XFS image
# (/dev/vdb: lib and its reflink copies x1, x2, 2 MiB each), with the numbers those files give.
# Leaves both unmounted, and every file's data uncached, for kmod_guest.sh.
echo "guest: $(uname -r), series $SERIES"
mkdir -p /mnt /xfs
mount -t btrfs /dev/vda /mnt || { echo "not ok - mount /dev/vda (btrfs)"; exit 1; }
mount -t xfs /dev/vdb /xfs || { echo "not ok - mount /dev/vdb (xfs)"; exit 1; }

# --- doctor -----------------------------------------------------------------------------------
$DUPCACHE doctor >/tmp/doctor.txt
check "doctor exits 0" $? 0
sed 's/^/doctor: /' /tmp/doctor.txt
status_of() { sed -n "s/^$1  *\\([a-z]*\\) .*/\\1/p" /tmp/doctor.txt; }
grep -q '^merge module *ok *[^ ]*/dev/dupcache ABI 1.1' /tmp/doctor.txt
check "doctor finds the module, ABI 1.1" $? 0
# Both Debian kernels allow BPF trampolines to root with their stock configuration: fentry is
# the first hook path and must be the one chosen.
hook=$(sed -n 's/^tracing  *ok  *page-cache events through \([a-z_]*\)$/\1/p' /tmp/doctor.txt)
echo "guest: hook path chosen on $(uname -r): ${hook:-none}"
check "doctor: the page-cache hooks attach through fentry on $(uname -r)" "$hook" fentry
check "doctor: hook fentry ok" "$(status_of 'hook fentry')" ok
check "doctor: hook tp_btf not tried" "$(sed -n 's/^hook tp_btf  *\(not tried\) .*/\1/p' /tmp/doctor.txt)" "not tried"
check "doctor: kernel support ok ($SERIES is in the tested matrix)" "$(status_of 'kernel support')" ok
case $SERIES in
  6.1) cachestat=missing ;; # cachestat(2) is 6.5: the mincore fallback is what this guest proves
  *) cachestat=ok ;;
esac
check "doctor: cachestat $cachestat on $SERIES" "$(status_of cachestat)" $cachestat
check "doctor: the 6.5 line agrees" "$(status_of 'kernel 6.5 cachestat')" $cachestat

# --- trace, report and top --json on one filesystem -------------------------------------------
# observe FS MOUNT A B C SIZE: A, B and C are reflink copies of SIZE bytes, none cached.
observe() {
  fs=$1 m=$2 a=$3 b=$4 c=$5 size=$6
  pages=$((size / 4096))
  ino=$(stat -c %i "$a")
  drop_caches

  # One line per folio: the sum of their pages is A's size exactly, and the largest folio says
  # whether this filesystem caches large folios on this kernel.
  rm -f /tmp/trace.err
  $DUPCACHE trace --per-folio --no-sharing "$m" >/tmp/trace.jsonl 2>/tmp/trace.err &
  tracer=$!
  n=0 # attaching takes seconds under TCG; the hook line is printed once attached
  while ! grep -q 'page-cache hooks' /tmp/trace.err && kill -0 $tracer 2>/dev/null && [ $n -lt 600 ]; do
    usleep 100000
    n=$((n + 1))
  done
  check "$fs: trace attached through fentry" \
    "$(sed -n 's/.*page-cache hooks: \([a-z_]*\),.*/\1/p' /tmp/trace.err)" fentry || cat /tmp/trace.err
  cat "$a" >/dev/null
  sleep 1
  kill -INT $tracer
  wait $tracer
  check "$fs: trace exits 0 on SIGINT" $? 0 || cat /tmp/trace.err
  adds() { jq -s --argjson ino "$ino" "[.[] | select(.kind == \"cache_add\" and .ino == \$ino) | .nr_pages] | $1" /tmp/trace.jsonl; }
  check "$fs: trace: the pages of $a inserted, exactly ($pages)" "$(adds add)" $pages
  largest=$(adds max)
  echo "guest: $fs: largest folio inserted for $a: $largest page(s)"
  case $fs in
    # XFS has cached large folios since 5.18; btrfs only on newer kernels, behind an
    # experimental option: one page per folio on both guest kernels.
    xfs) [ "$largest" -gt 1 ]; check "$fs: large folios ($largest pages) counted by size" $? 0 ;;
    btrfs) check "$fs: single-page folios" "$largest" 1 ;;
  esac

  cat "$b" >/dev/null
  $DUPCACHE report --json "$m" >/tmp/report.json
  check "$fs: report: two copies cached" "$(jq .totals.cached_bytes /tmp/report.json)" $((2 * size))
  check "$fs: report: one wasted" "$(jq .totals.wasted_bytes /tmp/report.json)" "$size"
  check "$fs: report: two files cached" "$(jq .totals.files_cached /tmp/report.json)" 2
  check "$fs: report: $a shares all of its cached bytes" \
    "$(jq --arg p "$a" '.files[] | select(.path == $p) | .shared_cached_bytes' /tmp/report.json)" "$size"

  # top's first document is its seed scan; C is read after it, and the documents that follow
  # must count C through the live feed. Which document is the first with all of C depends on how
  # long the read takes (seconds when both guests and the host are busy), so the checks wait for
  # what happened rather than for a number of intervals: the document printed one full interval
  # after the read ended is the one that has to be exact (once, on 6.1 XFS in the parallel matrix,
  # the first document after the read had every byte cached but 16 KiB of C not yet counted as
  # shared; the next had settled).
  : >/tmp/top.jsonl
  $DUPCACHE top --json -d 2 "$m" >/tmp/top.jsonl 2>/tmp/top.err &
  top=$!
  lines() { wc -l </tmp/top.jsonl 2>/dev/null; }
  until_lines() { # until_lines N: until top has printed N documents (or stopped; 60 s at most)
    n=0
    while [ "$(lines)" -lt "$1" ] && kill -0 $top 2>/dev/null && [ $n -lt 600 ]; do
      usleep 100000
      n=$((n + 1))
    done
  }
  until_lines 1
  cat "$c" >/dev/null
  settled=$(($(lines) + 2))
  until_lines $settled
  kill -INT $top
  wait $top
  check "$fs: top exits 0 on SIGINT" $? 0 || cat /tmp/top.err
  doc() { sed -n "${1}p" /tmp/top.jsonl | jq -r "$2"; }
  check "$fs: top: live through fentry" "$(doc 1 .mode)" "live (fentry)"
  check "$fs: top: first document, two copies cached" "$(doc 1 .totals.cached_bytes)" $((2 * size))
  check "$fs: top: first document, one wasted" "$(doc 1 .totals.wasted_bytes)" "$size"
  check "$fs: top: document $settled, three copies cached" "$(doc $settled .totals.cached_bytes)" $((3 * size))
  check "$fs: top: document $settled, two wasted" "$(doc $settled .totals.wasted_bytes)" $((2 * size)) ||
    doc $settled '.files[] | [.path, .cached_bytes, .shared_cached_bytes] | @text'
  check "$fs: top: no event lost" "$(doc $settled .lost_events)" 0
}

observe btrfs /mnt /mnt/c1 /mnt/c2 /mnt/c3 "$(stat -c %s /mnt/lib)"
observe xfs /xfs /xfs/x1 /xfs/x2 /xfs/lib "$(stat -c %s /xfs/lib)"
umount /xfs
umount /mnt
drop_caches
