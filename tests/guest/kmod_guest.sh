# SPDX-License-Identifier: GPL-2.0-only
# The companion module's merge tests, in the qemu guest booted by kmod_test.sh (after
# guest_lib.sh and observe_guest.sh), with dupcache.ko loaded, the btrfs image as /dev/vda and
# the XFS image as /dev/vdb.
mkdir -p /mnt && mount -t btrfs /dev/vda /mnt || { echo "not ok - mount /dev/vda"; exit 1; }
size=$(stat -c %s /mnt/lib)
expected=$(/tmp/mapper --sum /mnt/lib)

# --- K=3 processes, each mapping its own copy --------------------------------------------
drop_caches
/tmp/mapper /mnt/c1 /tmp/m1 & p1=$!
/tmp/mapper /mnt/c2 /tmp/m2 & p2=$!
/tmp/mapper /mnt/c3 /tmp/m3 & p3=$!
wait_status /tmp/m1 /tmp/m2 /tmp/m3
$DUPCACHE report --json /mnt >/tmp/before.json
check "before: three copies cached" "$(jq .totals.cached_bytes /tmp/before.json)" $((3 * size)) ||
  jq -c '.files[] | [.path, .cached_bytes, .shared_cached_bytes]' /tmp/before.json
check "before: two copies wasted" "$(jq .totals.wasted_bytes /tmp/before.json)" $((2 * size))

$DUPCACHE merge --json --pid $p1 --pid $p2 --pid $p3 /mnt >/tmp/merge.json
check "merge exits 0" $? 0
check "merge used the module" "$(jq -r .module /tmp/merge.json)" 1.1
check "merge moved three mappings" "$(jq .merged_mappings /tmp/merge.json)" 3 || cat /tmp/merge.json
check "merge freed the three copies' pages" "$(jq .freed_bytes /tmp/merge.json)" $((3 * size))
canonical=$(jq -r '.mappings[0].canonical' /tmp/merge.json)
check "one canonical copy for the three" "$(jq -r '[.mappings[].canonical] | unique | length' /tmp/merge.json)" 1
case $canonical in /mnt/.dupcache-canonical/????????????????) r=0 ;; *) r=1 ;; esac
check "canonical copy is in /mnt/.dupcache-canonical ($canonical)" $r 0
check "canonical copy is read-only" "$(stat -c %a "$canonical")" 444
(exec 3>>"$canonical") 2>/dev/null
check "canonical copy is immutable: not even root opens it for writing" $? 1
for i in 1 2 3; do
  fresh /tmp/m$i
  check "process $i maps the canonical copy" "$(field /tmp/m$i 3)" "$canonical"
  check "process $i reads correct data" "$(field /tmp/m$i 2)" "$expected"
done
$DUPCACHE report --json /mnt >/tmp/after.json
check "after: one copy cached" "$(jq .totals.cached_bytes /tmp/after.json)" "$size"
check "after: nothing wasted" "$(jq .totals.wasted_bytes /tmp/after.json)" 0

# --- a write to an original does not show through ----------------------------------------
printf 'written after the merge' | dd of=/mnt/c1 bs=1 seek=100 conv=notrunc 2>/dev/null
printf 'written after the merge' | dd of=/mnt/lib bs=1 seek=5000 conv=notrunc 2>/dev/null
sync
[ "$(/tmp/mapper --sum /mnt/c1)" != "$expected" ]
check "the write changed /mnt/c1" $? 0
for i in 1 2 3; do
  fresh /tmp/m$i
  check "process $i still reads the merged data" "$(field /tmp/m$i 2)" "$expected"
done
check "the canonical copy is unchanged" "$(/tmp/mapper --sum "$canonical")" "$expected"

# --- refusals ----------------------------------------------------------------------------
/tmp/mapper --cow /mnt/c4 /tmp/m4 & p4=$!
/tmp/mapper --writable /mnt/c4 /tmp/m5 & p5=$!
/tmp/mapper --shared /mnt/c4 /tmp/m6 & p6=$!
/tmp/mapper /mnt/c4 /tmp/m7 & p7=$!
wait_status /tmp/m4 /tmp/m5 /tmp/m6 /tmp/m7
$DUPCACHE merge --json --pid $p4 /mnt >/tmp/cow.json
check "merge of a COWed mapping exits 0" $? 0
check "COWed mapping refused: cow" "$(jq -r '.mappings[0].refusal' /tmp/cow.json)" cow
check "COWed mapping: nothing merged" "$(jq .merged_mappings /tmp/cow.json)" 0
check "COWed mapping refused by the module too" "$(/tmp/probe $p4 $(range /tmp/m4) "$canonical" /mnt/c4)" "errno=EBUSY reason=7"
check "writable mapping refused" "$(/tmp/probe $p5 $(range /tmp/m5) "$canonical" /mnt/c4)" "errno=EACCES reason=6"
check "shared mapping refused" "$(/tmp/probe $p6 $(range /tmp/m6) "$canonical" /mnt/c4)" "errno=EACCES reason=5"
check "wrong identity refused" "$(/tmp/probe $p7 $(range /tmp/m7) "$canonical" /mnt/c4 --wrong-ino)" "errno=ESTALE reason=4"
check "caller without CAP_SYS_PTRACE refused" "$(/tmp/probe --drop-ptrace $p7 $(range /tmp/m7) "$canonical" /mnt/c4)" "errno=EPERM reason=1"
check "no such process" "$(/tmp/probe 999999 $(range /tmp/m7) "$canonical" /mnt/c4)" "errno=ESRCH reason=2"
exec 3>>/mnt/c3
check "canonical file open for writing refused" "$(/tmp/probe $p7 $(range /tmp/m7) /mnt/c3 /mnt/c4)" "errno=EINVAL reason=9"
exec 3>&-
set -- $(range /tmp/m7)
check "range not exactly one mapping" "$(/tmp/probe $p7 "$1" "$(printf %x $((0x$2 + 4096)))" "$canonical" /mnt/c4)" "errno=ENXIO reason=3"
fresh /tmp/m7
check "refused process still maps its own copy" "$(field /tmp/m7 3)" /mnt/c4
check "COWed process still maps its own copy" "$(field /tmp/m4 3)" /mnt/c4

# --- ABI 1.1 and 1.0 requests, the target by pidfd --------------------------------------
check "pidfd request reaches the target" "$(/tmp/probe --pidfd $p7 $(range /tmp/m7) "$canonical" /mnt/c4 --wrong-ino)" "errno=ESTALE reason=4"
check "oversized request refused" "$(/tmp/probe --size 65536 $p7 $(range /tmp/m7) "$canonical" /mnt/c4)" "errno=E2BIG reason=13"
check "ABI 1.0 request still taken" "$(/tmp/probe --v1 $p7 $(range /tmp/m7) "$canonical" /mnt/c4 --wrong-ino)" "errno=ESTALE reason=4"

# --- same extents are not the same bytes: an unflushed write to a reflinked copy -----------
printf 'not flushed yet' | dd of=/mnt/c4 bs=1 seek=300 conv=notrunc 2>/dev/null
written=$(/tmp/mapper --sum /mnt/c4)
fresh /tmp/m7
check "the mapper reads the unflushed write" "$(field /tmp/m7 2)" "$written"
check "unflushed write: the module compares the bytes and refuses" "$(/tmp/probe $p7 $(range /tmp/m7) "$canonical" /mnt/c4)" "errno=EILSEQ reason=17"
exec 3>>/mnt/c4
check "mapped file open for writing refused" "$(/tmp/probe $p7 $(range /tmp/m7) "$canonical" /mnt/c4)" "errno=ETXTBSY reason=16"
exec 3>&-
$DUPCACHE merge --json --pid $p7 /mnt >/tmp/unflushed.json
fresh /tmp/m7
case $(field /tmp/m7 3) in
  /mnt/c4) check "unflushed write: merge left the mapping" "$(jq .merged_mappings /tmp/unflushed.json)" 0 ;;
  *) check "unflushed write: merged onto another canonical copy" "$(field /tmp/m7 3)" "$(jq -r '.mappings[0].canonical' /tmp/unflushed.json)" ;;
esac
check "unflushed write: the bytes the process reads did not change" "$(field /tmp/m7 2)" "$written"

# --- a writer thread racing the switch -----------------------------------------------------
/tmp/mapper --race /mnt/c2 /tmp/r1 & r1=$!
wait_status /tmp/r1
answers=$(/tmp/probe --repeat 30 $r1 $(range /tmp/r1) "$canonical" /mnt/c2)
case $answers in ok=*" refused="*) r=0 ;; *) r=1 ;; esac
check "racing writer: 30 requests answered ($answers, $(/tmp/probe --stats | cut -d' ' -f3) caught under the switch's lock)" $r 0
fresh /tmp/r1
check "racing writer: no write lost ($(field /tmp/r1 5) writes)" "$(field /tmp/r1 4)" 0
[ "$(field /tmp/r1 5)" -gt 0 ]
check "racing writer: it wrote" $? 0
kill $r1

# --- stopped targets: refused at once, no pass stalls, nothing left pending ---------------
/tmp/mapper /mnt/c2 /tmp/s1 & s1=$!
/tmp/mapper /mnt/c3 /tmp/s2 & s2=$!
/tmp/mapper --block /mnt/c4 /tmp/m10 & p10=$!
wait_status /tmp/s1 /tmp/s2 /tmp/m10
kill -STOP $s1 $s2 $p10
check "stopped target refused at once" "$(/tmp/probe $p10 $(range /tmp/m10) "$canonical" /mnt/c4)" "errno=EAGAIN reason=14"
t0=$(date +%s)
$DUPCACHE merge --json --pid $s1 --pid $s2 --pid $p10 /mnt >/tmp/stopped.json
t1=$(date +%s)
check "three stopped mappers refused as stopped" "$(jq '[.mappings[] | select(.refusal == "stopped")] | length' /tmp/stopped.json)" 3 || cat /tmp/stopped.json
# (Before, each cost the request timeout: 3 x 5 s. Under 15 s: a loaded TCG guest is slow, but
# not that slow.)
[ $((t1 - t0)) -lt 15 ]
check "stopped mappers do not stall the pass ($((t1 - t0)) s)" $? 0
check "nothing pending after stopped targets" "$(/tmp/probe --stats | cut -d' ' -f2)" pending=0
kill -CONT $s1 $s2 $p10
kill $s1 $s2

# --- a target that cannot return to user space: timeout, pinned, one pending per target ---
rm -f /tmp/m10.blocked
kill -USR1 $p10 # it writes /tmp/m10.blocked, vforks a child sleeping 12 s and waits for it
n=0
while [ ! -e /tmp/m10.blocked ] && [ $n -lt 300 ]; do usleep 100000; n=$((n + 1)); done
check "the blocked target began its wait" "$([ -e /tmp/m10.blocked ] && echo yes)" yes
usleep 200000 # from the marker to the vfork
check "blocked target times out" "$(/tmp/probe $p10 $(range /tmp/m10) "$canonical" /mnt/c4)" "errno=ETIMEDOUT reason=11"
check "a second request on it is refused at once" "$(/tmp/probe $p10 $(range /tmp/m10) "$canonical" /mnt/c4)" "errno=EALREADY reason=15"
# (Counters through the probe: dupcache doctor attaches BPF programs, and attaching fentry
# programs while other CPUs were busy has hung a TCG guest once.)
check "the timed-out request is still pending" "$(/tmp/probe --stats | cut -d' ' -f2)" pending=1
rmmod dupcache 2>/dev/null
check "rmmod refused while a request is pending" $? 1
n=0
while [ "$(/tmp/probe --stats | cut -d' ' -f2)" != pending=0 ] && [ $n -lt 120 ]; do usleep 250000; n=$((n + 1)); done
check "nothing pending once the target ran" "$(/tmp/probe --stats | cut -d' ' -f2)" pending=0
fresh /tmp/m10
check "the abandoned request changed nothing" "$(field /tmp/m10 3)" /mnt/c4

# --- garbage collection of canonical copies ----------------------------------------------
kill $p1 $p2 $p3 $p4 $p5 $p6 $p7 $p10
wait 2>/dev/null
copies=$(ls -A /mnt/.dupcache-canonical | wc -l)
$DUPCACHE merge --json --all /mnt >/tmp/gc.json
check "unmapped canonical copies removed" "$(jq .canonical_removed /tmp/gc.json)" "$copies"
check "canonical directory empty" "$(ls -A /mnt/.dupcache-canonical | wc -l)" 0

# --- the daemon's merge action ------------------------------------------------------------
drop_caches
# Both copies wholly cached before the daemon starts: it merges and evicts a settled scene.
/tmp/mapper /mnt/c2 /tmp/d1 & d1=$!
/tmp/mapper /mnt/c3 /tmp/d2 & d2=$!
wait_status /tmp/d1 /tmp/d2
cat >/tmp/dupcache.toml <<TOML
[watch]
paths = ["/mnt"]
[policy]
interval = "500ms"
cooldown = "1s"
actions = ["evict", "merge"]
[journal]
path = "/tmp/actions.jsonl"
[metrics]
listen = ""
[control]
socket = ""
TOML
$DUPCACHE daemon --config /tmp/dupcache.toml >/tmp/daemon.log 2>&1 &
daemon=$!
merged_by_daemon() { jq -s '[.[] | select(.action == "merge" and .result == "ok")] | length' /tmp/actions.jsonl 2>/dev/null; }
n=0
while [ "$(merged_by_daemon)" != 2 ] && [ $n -lt 120 ]; do usleep 500000; n=$((n + 1)); done
check "daemon merged both mappings" "$(merged_by_daemon)" 2 || cat /tmp/daemon.log
n=0
while [ "$($DUPCACHE report --json /mnt | jq .totals.wasted_bytes)" != 0 ] && [ $n -lt 30 ]; do sleep 1; n=$((n + 1)); done
$DUPCACHE report --json /mnt >/tmp/daemon-after.json
check "daemon: nothing wasted" "$(jq .totals.wasted_bytes /tmp/daemon-after.json)" 0 || { cat /tmp/daemon.log; jq -c 'del(.why)' /tmp/actions.jsonl | tail -20; jq -c '.files[] | [.path, .cached_bytes]' /tmp/daemon-after.json; }
check "daemon: one copy cached" "$(jq .totals.cached_bytes /tmp/daemon-after.json)" "$size"
for d in d1 d2; do
  fresh /tmp/$d
  case $(field /tmp/$d 3) in /mnt/.dupcache-canonical/*) r=0 ;; *) r=1 ;; esac
  check "daemon: $d maps a canonical copy" $r 0
  check "daemon: $d reads correct data" "$(field /tmp/$d 2)" "$(/tmp/mapper --sum /mnt/c2)"
done
# A stopped mapper: refused as stopped at once (no request timeout per pass), nothing pending.
/tmp/mapper /mnt/c4 /tmp/d3 & d3=$!
wait_status /tmp/d3
kill -STOP $d3
stopped_by_daemon() { jq -s --argjson p "$d3" '[.[] | select(.action == "merge" and .pid == $p and .refusal == "stopped")] | length' /tmp/actions.jsonl 2>/dev/null; }
n=0
while [ "$(stopped_by_daemon)" != 1 ] && [ $n -lt 60 ]; do usleep 500000; n=$((n + 1)); done
check "daemon: a stopped mapper refused as stopped" "$(stopped_by_daemon)" 1 || jq -c 'del(.why)' /tmp/actions.jsonl | tail -5
check "daemon: nothing pending" "$(/tmp/probe --stats | cut -d' ' -f2)" pending=0
kill -CONT $d3
kill $d3
kill $daemon
wait $daemon
check "daemon stops cleanly" $? 0
kill $d1 $d2
wait $d1 $d2 2>/dev/null
# One canonical copy for c2 and c3; a second for c4 (its extents differ since the unflushed
# write above) when a pass found d3 before it was stopped, made the copy, and was refused.
copies=$(ls -A /mnt/.dupcache-canonical | wc -l)
case $copies in 1 | 2) r=0 ;; *) r=1 ;; esac
check "the daemon made one canonical copy, two with c4's ($copies)" $r 0
$DUPCACHE merge --json --all /mnt >/tmp/gc2.json
check "the daemon's canonical copies removed once unmapped" "$(jq .canonical_removed /tmp/gc2.json)" "$copies"
check "canonical directory empty again" "$(ls -A /mnt/.dupcache-canonical | wc -l)" 0

# --- XFS (reflink=1) ------------------------------------------------------------------------
mkdir -p /xfs && mount -t xfs /dev/vdb /xfs
check "mount the XFS image" $? 0
xsize=$(stat -c %s /xfs/lib)
xsum=$(/tmp/mapper --sum /xfs/lib)
drop_caches
/tmp/mapper /xfs/x1 /tmp/x1 & x1=$!
/tmp/mapper /xfs/x2 /tmp/x2 & x2=$!
wait_status /tmp/x1 /tmp/x2
check "XFS before: one copy wasted" "$($DUPCACHE report --json /xfs | jq .totals.wasted_bytes)" "$xsize"
$DUPCACHE merge --json --pid $x1 --pid $x2 /xfs >/tmp/xmerge.json
check "XFS: two mappings merged" "$(jq .merged_mappings /tmp/xmerge.json)" 2 || cat /tmp/xmerge.json
check "XFS: the two copies' pages freed" "$(jq .freed_bytes /tmp/xmerge.json)" $((2 * xsize))
xcanonical=$(jq -r '.mappings[0].canonical' /tmp/xmerge.json)
for x in x1 x2; do
  fresh /tmp/$x
  check "XFS: $x maps the canonical copy" "$(field /tmp/$x 3)" "$xcanonical"
  check "XFS: $x reads correct data" "$(field /tmp/$x 2)" "$xsum"
done
$DUPCACHE report --json /xfs >/tmp/xafter.json
check "XFS after: one copy cached" "$(jq .totals.cached_bytes /tmp/xafter.json)" "$xsize"
check "XFS after: nothing wasted" "$(jq .totals.wasted_bytes /tmp/xafter.json)" 0
kill $x1 $x2
wait $x1 $x2 2>/dev/null
umount /xfs

# --- unloading, and the fallback without the module --------------------------------------
rmmod dupcache
check "rmmod once idle" $? 0
/tmp/mapper /mnt/c2 /tmp/m8 & p8=$!
/tmp/mapper /mnt/c3 /tmp/m9 & p9=$!
wait_status /tmp/m8 /tmp/m9
# Page-out cannot beat a process that keeps reading (it faults its copy back in), so the
# process is stopped for the fallback's exact count; merging has no such limit.
drop_caches
fresh /tmp/m8
kill -STOP $p8
$DUPCACHE merge --json --pid $p8 /mnt >/tmp/fallback.json
check "without the module: fallback named" "$(jq -r .fallback /tmp/fallback.json)" "companion module not loaded (/dev/dupcache does not exist)"
check "without the module: the mapped duplicate is paged out and evicted" "$(jq .freed_bytes /tmp/fallback.json)" "$size"
kill -CONT $p8
fresh /tmp/m8
check "without the module: the process still reads correct data" "$(field /tmp/m8 2)" "$(/tmp/mapper --sum /mnt/c2)"
kill $p8 $p9
insmod /lib/modules/extra/dupcache.ko
check "insmod again" $? 0

# --- the LSMs' ptrace policy: Yama ptrace_scope=3 (cannot be lowered again: keep this last) ---
if [ -e /proc/sys/kernel/yama/ptrace_scope ]; then
  /tmp/mapper /mnt/c2 /tmp/y1 & y1=$!
  wait_status /tmp/y1
  echo 3 >/proc/sys/kernel/yama/ptrace_scope
  $DUPCACHE merge --json --pid $y1 /mnt >/tmp/yama.json
  check "Yama ptrace_scope=3: mapping refused as ptrace" "$(jq -r '.mappings[0].refusal' /tmp/yama.json)" ptrace || cat /tmp/yama.json
  check "Yama ptrace_scope=3: nothing merged" "$(jq .merged_mappings /tmp/yama.json)" 0
  fresh /tmp/y1
  check "Yama ptrace_scope=3: the process still maps its own copy" "$(field /tmp/y1 3)" /mnt/c2
  kill $y1
  wait $y1 2>/dev/null
else
  check "the guest kernel has Yama" no yes
fi

umount /mnt
echo "guest: $fails failed check(s)"
exit $fails
