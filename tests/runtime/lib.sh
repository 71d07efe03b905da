# SPDX-License-Identifier: GPL-2.0-only
# Shared by the container runtime tests (podman_test.sh, docker_test.sh, lxc_test.sh), sourced
# after `set -euo pipefail`. Each test runs a real runtime on a loop-mounted btrfs, starts three
# containers from one image so every container's root is a btrfs snapshot of the image layer, and
# checks dupcache's numbers against figures taken independently with fincore(1).
#
# What is here: skipping with a reason (exit 77; under CI=true a test that cannot run fails
# instead), one cleanup stack run on every exit, DAMON paused and restored, the loop btrfs, the
# busybox rootfs and its payload "libraries", the expected figures, the assertions shared by the
# three runtimes. Each test defines the runtime-specific hooks:
#   rt_exec NAME CMD...   run CMD inside the running container NAME, stdout to stdout
#   rt_pid NAME           print the host pid of NAME's first process
#   rt_stop NAME / rt_start NAME    (Docker and LXC: the stopped-container checks)

rt_prog=$(basename "$0")
rt_here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
rt_failures=0
rt_passes=0
rt_cleanups=()
rt_tmp=
rt_page=$(getconf PAGESIZE)

# The scene. Every container runs this: it reads busybox and the payloads whole (so each copy is
# either fully cached or not at all, and the expected waste follows from file sizes), then says so.
rt_names=(web-1 web-2 web-3)
rt_payload_dir=/usr/lib/dupcache-test
rt_container_cmd="cat /bin/busybox $rt_payload_dir/* >/dev/null; touch /tmp/ready; exec sleep 100000"
# Three payloads: sizes chosen so one ends inside a page (the last page is partly file, partly
# zero) and none is a multiple of another. Contents are AES-CTR keystream: deterministic, fast,
# and incompressible, so btrfs never stores them as compressed or inline extents.
rt_payloads=(libalpha.so.1 libbeta.so.1 libgamma.so.1)
declare -A rt_payload_size=([libalpha.so.1]=$((8 << 20)) [libbeta.so.1]=$(((4 << 20) + 4096 + 1000))
  [libgamma.so.1]=$((2 << 20)))
declare -A rt_payload_sum=()

# Where the copies are on the host, filled in by each test once its containers run.
declare -A rt_root=()   # container name -> host path of its root filesystem
declare -A rt_id=()     # container name -> the id dupcache should report (64 hex; LXC: the name)
rt_image_root=          # the image layer (LXC: the base container's rootfs)
rt_extra_roots=()       # other snapshots holding the same files (Docker's -init layers)
rt_files=()             # the image's regular files that can be shared, relative to a root
rt_fsid=                # dupcache's id of the loop filesystem, "btrfs:<uuid>"
rt_loopdev=             # its loop device, e.g. loop3
rt_storage=             # the directory the loop filesystem is mounted on

rt_log() { echo "$rt_prog: $*" >&2; }
rt_die() {
  rt_log "$*"
  exit 1
}
rt_skip() {
  [ "${CI:-}" = true ] && rt_die "cannot run under CI: $*"
  echo "$rt_prog: skipped: $*"
  exit 77
}

# ---- cleanup ----------------------------------------------------------------------------------

# Registers a command (a string, run with eval) for exit; they run last-registered first, so a
# test registers the undo of each step right after the step and teardown mirrors setup.
rt_at_exit() { rt_cleanups+=("$1"); }

rt_cleanup() {
  local status=$? i log
  trap - EXIT INT TERM HUP
  set +e
  # Run in this shell, not a subshell: a step may `wait` for a daemon this script started.
  log=$(mktemp /tmp/dupcache-runtime-cleanup.XXXXXX)
  for ((i = ${#rt_cleanups[@]} - 1; i >= 0; i--)); do
    if ! eval "${rt_cleanups[i]}" >"$log" 2>&1; then
      rt_log "cleanup: '${rt_cleanups[i]}' failed: $(tr '\n' ' ' <"$log")"
    fi
  done
  rm -f "$log"
  exit "$status"
}

# A path the runtime creates outside the test's own directories (a cache, a lock directory):
# removed at exit if it did not exist before. `rmdir` mode removes only an empty directory, for
# paths another user of the runtime might share.
rt_forget_path() {
  local path=$1 mode=${2:-rm}
  [ -e "$path" ] && return 0
  if [ "$mode" = rmdir ]; then
    rt_at_exit "[ ! -d '$path' ] || rmdir '$path'"
  else
    rt_at_exit "rm -rf '$path'"
  fi
}

# Cgroups a runtime makes and leaves behind empty (Podman's libpod_parent, Docker's docker,
# lxc.pivot): every such directory that appears in any hierarchy is removed at exit, deepest
# first. rmdir removes only empty cgroups, so nothing still running is touched.
rt_forget_cgroups() {
  local pattern dir before
  for pattern in "$@"; do
    before=" "
    for dir in /sys/fs/cgroup/$pattern /sys/fs/cgroup/*/$pattern; do
      [ -d "$dir" ] && before+="$dir "
    done
    rt_at_exit "rt_remove_new_cgroups '$pattern' '$before'"
  done
}
rt_remove_new_cgroups() {
  local pattern=$1 before=$2 dir
  for dir in /sys/fs/cgroup/$pattern /sys/fs/cgroup/*/$pattern; do
    [ -d "$dir" ] || continue
    case "$before" in *" $dir "*) continue ;; esac
    find "$dir" -depth -type d -exec rmdir {} \; 2>/dev/null
    [ ! -d "$dir" ] || rt_log "cleanup: cgroup $dir is not empty; left in place"
  done
}

# Puts CONTENT at PATH for the test's duration: an existing file is saved and put back, a new one
# removed. For host configuration the product reads (e.g. /etc/containers/storage.conf).
rt_swap_file() {
  local path=$1 content=$2 saved
  if [ -e "$path" ]; then
    saved="$rt_tmp/saved.$(echo "$path" | tr / _)"
    cp -a "$path" "$saved"
    rt_at_exit "cp -a '$saved' '$path'"
  else
    rt_mkdir_p "$(dirname "$path")"
    rt_at_exit "rm -f '$path'"
  fi
  printf '%s\n' "$content" >"$path"
}

# mkdir -p that removes, at exit, each directory it had to create.
rt_mkdir_p() {
  local dir=$1
  [ -d "$dir" ] && return 0
  rt_mkdir_p "$(dirname "$dir")"
  mkdir "$dir"
  rt_at_exit "rmdir '$dir'"
}

# ---- set-up -----------------------------------------------------------------------------------

# rt_init RUNTIME [DUPCACHE_BINARY]: root and tools, the binary, the temporary directory, the exit
# trap, DAMON paused.
rt_init() {
  rt_runtime=$1
  shift
  [ "$(id -u)" = 0 ] || rt_skip "needs root (loop mounts, a container runtime)"
  [ -e /dev/loop-control ] || rt_skip "needs loop devices (/dev/loop-control is missing)"
  grep -qw btrfs /proc/filesystems || modprobe btrfs 2>/dev/null || true
  grep -qw btrfs /proc/filesystems || rt_skip "the kernel has no btrfs"
  rt_need mkfs.btrfs btrfs jq fincore filefrag setpriv openssl busybox blkid findmnt losetup mountpoint \
    sha256sum timeout
  rt_busybox=$(command -v busybox)
  # Images hold nothing but busybox, so it must not need the host's libraries.
  [[ $(LC_ALL=C ldd "$rt_busybox" 2>&1 || true) == *"not a dynamic executable"* ]] ||
    rt_skip "$rt_busybox is dynamically linked (install busybox-static)"

  rt_bin=${1:-$(find "$rt_here/../../build" -name dupcache -type f -executable -print -quit 2>/dev/null || true)}
  if [ -z "$rt_bin" ] || [ ! -x "$rt_bin" ]; then
    rt_die "dupcache binary not found (build with ./scripts/build or pass its path)"
  fi
  rt_bin=$(realpath "$rt_bin")

  rt_tmp=$(mktemp -d /tmp/dupcache-runtime.XXXXXX)
  trap rt_cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  trap 'exit 129' HUP
  rt_at_exit "rm -rf '$rt_tmp'"
  rt_pause_damon
  rt_t0=$SECONDS
}

# rt_need TOOL...: skip unless each is on PATH (or an absolute path that is executable).
rt_need() {
  local t
  for t in "$@"; do
    if [[ $t == /* ]]; then
      [ -x "$t" ] || rt_skip "$t is not installed (run ./scripts/setup)"
    else
      command -v "$t" >/dev/null || rt_skip "$t is not installed (run ./scripts/setup)"
    fi
  done
}

# DAMON (running here with a pageout scheme) reclaims page cache it finds cold within seconds;
# the figures below are exact only while it is off. Every running kdamond is switched off and
# switched back on at exit, whatever the outcome.
rt_pause_damon() {
  local state
  for state in /sys/kernel/mm/damon/admin/kdamonds/[0-9]*/state; do
    [ -w "$state" ] || continue
    [ "$(cat "$state")" = on ] || continue
    echo off >"$state" || continue
    rt_at_exit "echo on >'$state'"
    rt_log "paused DAMON (${state%/state}) for the test"
  done
}

# The runtime's storage directory must be ours for the test: mounting over a directory in use
# would hide a real runtime's data from it.
rt_claim_dir() {
  local dir=$1
  if [ -e "$dir" ]; then
    [ -d "$dir" ] || rt_skip "$dir exists and is not a directory"
    mountpoint -q "$dir" && rt_skip "$dir is a mount point already (a runtime's storage is in use here)"
    [ -z "$(ls -A "$dir")" ] || rt_skip "$dir is not empty (a runtime's storage is in use here; the test mounts its own there)"
  fi
}

# rt_loop_btrfs DIR [SIZE_MIB]: a fresh btrfs on a loop device, mounted on DIR (created if
# missing). Unmounted at exit with everything the runtime mounted below it; the loop device goes
# with it (mount -o loop sets autoclear), and is detached explicitly if something still held it.
rt_loop_btrfs() {
  local dir=$1 size=${2:-1024} img=$rt_tmp/btrfs.img dev
  rt_claim_dir "$dir"
  rt_mkdir_p "$dir"
  truncate -s "${size}M" "$img"
  mkfs.btrfs -q -f "$img" >"$rt_tmp/mkfs.log" 2>&1 || { cat "$rt_tmp/mkfs.log" >&2; rt_die "mkfs.btrfs $img failed"; }
  mount -o loop "$img" "$dir" || rt_die "cannot loop-mount $img on $dir"
  rt_at_exit "umount -R '$dir' || umount -R -l '$dir'; for d in \$(losetup -j '$img' -O NAME -n); do losetup -d \$d; done"
  dev=$(findmnt -n -o SOURCE --mountpoint "$dir")
  rt_loopdev=$(basename "$dev")
  rt_fsid="btrfs:$(blkid -s UUID -o value "$img")"
  rt_storage=$dir
  rt_log "btrfs $rt_fsid on /dev/$rt_loopdev mounted at $dir"
}

# ---- the image ---------------------------------------------------------------------------------

# rt_write_payloads DIR: the payload libraries, and their checksums in rt_payload_sum.
rt_write_payloads() {
  local dir=$1 p
  mkdir -p "$dir"
  for p in "${rt_payloads[@]}"; do
    head -c "${rt_payload_size[$p]}" /dev/zero |
      openssl enc -aes-128-ctr -nosalt -pbkdf2 -pass "pass:dupcache-$p" >"$dir/$p"
    rt_payload_sum[$p]=$(sha256sum "$dir/$p" | cut -d' ' -f1)
  done
}

# rt_make_rootfs DIR: a root filesystem of static busybox and the payloads (Podman, Docker).
rt_make_rootfs() {
  local dir=$1 a
  mkdir -p "$dir/bin" "$dir/tmp" "$dir/etc"
  chmod 1777 "$dir/tmp"
  cp "$rt_busybox" "$dir/bin/busybox"
  for a in sh cat sleep sha256sum touch ls true rm; do ln -s busybox "$dir/bin/$a"; done
  rt_write_payloads "$dir$rt_payload_dir"
}

# rt_each_inode ROOT: every regular file under ROOT, one path per inode (NUL-terminated): a
# hardlink (LXC's busybox template links /sbin/init to /bin/busybox) is one copy, not two.
rt_each_inode() {
  find "$1" -xdev -type f -printf '%i %p\0' | sort -z -n -k1,1 -u | sed -z 's/^[0-9]* //'
}

# After the runtime placed the image on the loop filesystem: the files whose copies can share
# extents. Inline extents (tiny files, kept in btrfs metadata) never count as duplicates, so they
# are left out of the expectation.
rt_list_files() {
  local f
  rt_files=()
  while IFS= read -r -d '' f; do
    [ -s "$f" ] || continue
    [[ $(filefrag -v "$f" 2>/dev/null || true) != *inline* ]] || continue
    rt_files+=("${f#"$rt_image_root"/}")
  done < <(rt_each_inode "$rt_image_root")
  [ ${#rt_files[@]} -gt 0 ] || rt_die "no files found in the image layer $rt_image_root"
}

# Drops every page of the files under ROOT from the cache (clean pages only; sync first).
rt_drop_tree() {
  sync
  find "$1" -xdev -type f -exec dd if={} iflag=nocache count=0 status=none \;
}

# rt_wait_ready NAME...: until each container has read its payloads (its /tmp/ready exists).
rt_wait_ready() {
  local n deadline=$((SECONDS + 60))
  for n in "$@"; do
    until [ -e "${rt_root[$n]}/tmp/ready" ]; do
      [ $SECONDS -lt $deadline ] || rt_die "container $n did not read its payloads within 60 s"
      sleep 0.2
    done
  done
}

# ---- expected figures, from fincore -----------------------------------------------------------

rt_pages() { echo $(((($1) + rt_page - 1) / rt_page * rt_page)); }
rt_cached() {
  local v
  v=$(fincore --bytes --noheadings -o RES "$1")
  echo $((v))
}
rt_copies() { printf '%s\n' "$rt_image_root" "${rt_extra_roots[@]}" "${rt_root[@]}"; }

# Sets rt_expect: the waste fincore gives, Σ over physical pages of (copies caching it − 1).
# All copies of a file share its extents (snapshots), so a file with f whole copies adds
# (f − 1) × its size in pages, and every cached page of a partly cached copy adds one more page
# when at least one whole copy exists (that page is then cached by one copy more). Returns 1
# (and says where) when a file has partly cached copies and no whole one: then which pages
# overlap is not known from totals, and the figure is not exact.
rt_expect_waste() {
  local rel root size pages cached full part partial=0
  rt_expect=0
  for rel in "${rt_files[@]}"; do
    full=0 part=0
    while IFS= read -r root; do
      [ -f "$root/$rel" ] || continue
      size=$(stat -c %s "$root/$rel")
      pages=$(rt_pages "$size")
      cached=$(rt_cached "$root/$rel")
      if [ "$cached" -eq "$pages" ]; then
        full=$((full + 1))
      elif [ "$cached" -ne 0 ]; then
        rt_log "$root/$rel: $cached of $pages bytes cached (partly)"
        part=$((part + cached))
      fi
    done < <(rt_copies)
    [ $full -lt 2 ] || rt_expect=$((rt_expect + (full - 1) * pages))
    if [ $part -gt 0 ]; then
      if [ $full -ge 1 ]; then rt_expect=$((rt_expect + part)); else partial=1; fi
    fi
  done
  return $partial
}

# Cached bytes of every inode under ROOT (one container's copies).
rt_tree_cached() {
  rt_each_inode "$1" | xargs -0 -r fincore --bytes --noheadings -o RES | awk '{s += $1} END {print s + 0}'
}

# How many copies of payload P are fully cached, and which roots (rt_full_roots).
rt_payload_copies() {
  local p=$1 root pages cached
  pages=$(rt_pages "${rt_payload_size[$p]}")
  rt_full=0
  rt_partial=0
  rt_full_roots=()
  while IFS= read -r root; do
    [ -f "$root$rt_payload_dir/$p" ] || continue
    cached=$(rt_cached "$root$rt_payload_dir/$p")
    if [ "$cached" -eq "$pages" ]; then
      rt_full=$((rt_full + 1))
      rt_full_roots+=("$root")
    elif [ "$cached" -ne 0 ]; then
      rt_partial=$((rt_partial + 1))
    fi
  done < <(rt_copies)
}

# Residency of every copy of every payload, one line each: a snapshot to compare.
rt_residency_snapshot() {
  local p root
  for p in "${rt_payloads[@]}"; do
    while IFS= read -r root; do
      [ -f "$root$rt_payload_dir/$p" ] && echo "$(rt_cached "$root$rt_payload_dir/$p") $root$rt_payload_dir/$p"
    done < <(rt_copies)
  done
}

rt_name_of_root() {
  local n
  for n in "${!rt_root[@]}"; do
    [ "${rt_root[$n]}" = "$1" ] && { echo "$n"; return; }
  done
  if [ "$1" = "$rt_image_root" ]; then echo "image layer"; else echo "$1"; fi
}

rt_read_sectors() { awk '{print $3}' "/sys/block/$rt_loopdev/stat"; }

# NAME's memory cgroup, for the log.
rt_memcg_path() {
  local pid line
  pid=$(rt_pid "$1")
  line=$(grep -E '^[0-9]+:([^:]*,)?memory(,[^:]*)?:' "/proc/$pid/cgroup" || grep '^0::' "/proc/$pid/cgroup")
  echo "${line#*:*:}"
}

# ---- running dupcache --------------------------------------------------------------------------

# rt_run TAG CMD...: runs CMD with stdout in $rt_tmp/TAG.out, stderr in $rt_tmp/TAG.err, exit
# status in rt_rc. Never fails the script.
rt_run() {
  local tag=$1
  shift
  rt_rc=0
  timeout 120 "$@" >"$rt_tmp/$tag.out" 2>"$rt_tmp/$tag.err" || rt_rc=$?
  rt_out=$rt_tmp/$tag.out
  rt_err=$rt_tmp/$tag.err
}

# rt_jq FILE FILTER [jq args]: one value, "invalid-json" when FILE is not JSON.
rt_jq() {
  local file=$1 filter=$2
  shift 2
  jq -r "$@" "$filter" "$file" 2>/dev/null || echo invalid-json
}

# rt_fs_wasted FILE: wasted_bytes of the loop filesystem's entry in a report ("no-entry").
rt_fs_wasted() {
  rt_jq "$1" '[.filesystems[]? | select(.id == $id) | .wasted_bytes][0] // "no-entry"' --arg id "$rt_fsid"
}

# ---- assertions --------------------------------------------------------------------------------

rt_ok() {
  echo "ok - $rt_runtime: $*"
  rt_passes=$((rt_passes + 1))
}
rt_not_ok() {
  echo "not ok - $rt_runtime: $*"
  rt_failures=$((rt_failures + 1))
}
# rt_eq DESC ACTUAL EXPECTED
rt_eq() {
  if [ "$2" = "$3" ]; then rt_ok "$1 ($2)"; else rt_not_ok "$1: got $2, expected $3"; fi
}
# rt_near DESC ACTUAL EXPECTED TOLERANCE (bytes)
rt_near() {
  local d
  if ! [[ $2 =~ ^[0-9]+$ ]]; then
    rt_not_ok "$1: got $2, expected $3 ± $4"
    return
  fi
  d=$(($2 - $3))
  [ $d -ge 0 ] || d=$((-d))
  if [ $d -le "$4" ]; then rt_ok "$1 ($2, expected $3 ± $4)"; else rt_not_ok "$1: got $2, expected $3 ± $4"; fi
}
# Shows what a failed command printed on stderr, indented, so a "not ok" says why.
rt_show_err() {
  if [ -s "$rt_err" ]; then sed 's/^/    stderr: /' "$rt_err" | head -n 5; fi
}

rt_finish() {
  echo "$rt_prog: $rt_passes passed, $rt_failures failed in $((SECONDS - rt_t0)) s"
  [ "$rt_failures" -eq 0 ]
}

# The scene as the checks start: fincore's view, said once so a failure can be read against it.
rt_describe_scene() {
  local n
  rt_log "image layer: $rt_image_root"
  for n in "${rt_names[@]}"; do
    rt_log "$n: root ${rt_root[$n]}, memory cgroup $(rt_memcg_path "$n" 2>/dev/null || echo '?'), cached $(rt_tree_cached "${rt_root[$n]}")"
  done
  [ ${#rt_extra_roots[@]} -eq 0 ] || rt_log "other snapshots: ${rt_extra_roots[*]}"
  rt_log "shareable files: ${rt_files[*]}"
}

# ---- the checks every runtime shares ----------------------------------------------------------

# 1. The waste, with no PATH and with the storage directory as PATH, without --cross-mounts.
rt_check_waste() {
  local got total nfs
  rt_expect_waste || rt_not_ok "scene: a copy is partly cached, so the expectation below is not exact"
  rt_log "expected waste on the loop filesystem (fincore): $rt_expect bytes"
  [ "$rt_expect" -gt 0 ] || rt_not_ok "scene: fincore sees no duplicated cache at all; the containers did not read their copies"

  rt_run report-all "$rt_bin" report --json
  got=$(rt_fs_wasted "$rt_out")
  rt_eq "report (no PATH): wasted bytes of the loop filesystem" "$got" "$rt_expect"
  [ "$rt_rc" -eq 0 ] || { rt_not_ok "report (no PATH) exited $rt_rc"; rt_show_err; }
  # Totals equal the loop filesystem's figure when it is the only one with cached shared data
  # (this machine's root is ext4); with other filesystems present only the entry above is exact.
  nfs=$(rt_jq "$rt_out" '[.filesystems[]? | select(.wasted_bytes > 0 or .id == $id)] | length' --arg id "$rt_fsid")
  if [ "$nfs" = 1 ]; then
    rt_eq "report (no PATH): totals.wasted_bytes" "$(rt_jq "$rt_out" '.totals.wasted_bytes')" "$rt_expect"
  fi

  rt_run report-path "$rt_bin" report --json "$rt_storage"
  [ "$rt_rc" -eq 0 ] || { rt_not_ok "report $rt_storage exited $rt_rc"; rt_show_err; }
  total=$(rt_jq "$rt_out" '.totals.wasted_bytes')
  rt_eq "report $rt_storage: totals.wasted_bytes" "$total" "$rt_expect"
  got=$(rt_fs_wasted "$rt_out")
  rt_eq "report $rt_storage: wasted bytes of the loop filesystem" "$got" "$rt_expect"
}

# rt_row FILE NAME FIELD: FIELD of the containers row named NAME ("no-row" if none).
rt_row() {
  rt_jq "$1" '[.containers[]? | select(.name == $n)] as $rows
    | if ($rows | length) == 0 then "no-row" else ($rows[0][$f] | tostring) end' --arg n "$2" --arg f "$3"
}

# 2. The containers rows: runtime, full id, name, cached bytes equal to fincore of the container's
# own copies, waste split evenly among the three, rows summing to the total.
rt_check_rows() {
  local n file total sum
  rt_run report-rows "$rt_bin" report --json --by container "$rt_storage"
  file=$rt_out
  [ "$rt_rc" -eq 0 ] || { rt_not_ok "report --by container $rt_storage exited $rt_rc"; rt_show_err; }
  for n in "${rt_names[@]}"; do
    rt_eq "row $n: runtime" "$(rt_row "$file" "$n" runtime)" "$rt_runtime"
    rt_eq "row $n: id" "$(rt_row "$file" "$n" id)" "${rt_id[$n]}"
    rt_eq "row $n: cached_bytes = fincore of its copies" "$(rt_row "$file" "$n" cached_bytes)" "$(rt_tree_cached "${rt_root[$n]}")"
  done
  total=$(rt_jq "$file" '.totals.wasted_bytes')
  sum=$(rt_jq "$file" '[.containers[]?.wasted_bytes] | add // 0')
  rt_eq "rows' wasted_bytes sum to totals.wasted_bytes" "$sum" "$total"
  # Three copies of each block: each container pays exactly a third of the waste, W/3 pages.
  # The W mod 3 pages left by rounding go to the rows in order of runtime and id (dupcache-
  # report(8)): never to whichever row the scanner's threads met first.
  local w=$((total / rt_page)) i=0 want id ids
  ids=$(for n in "${rt_names[@]}"; do echo "${rt_id[$n]} $n"; done | LC_ALL=C sort)
  while read -r id n; do
    want=$(((w / 3 + (i < w % 3 ? 1 : 0)) * rt_page))
    rt_eq "row $n: a third of the waste, leftover pages by id order" "$(rt_row "$file" "$n" wasted_bytes)" "$want"
    i=$((i + 1))
  done <<<"$ids"
  # The same cache gives the same rows whatever the number of walker threads.
  local one many rows_of='[.containers[]? | [.runtime, .id, .cached_bytes, .wasted_bytes, .shared_cached_bytes]]'
  rt_run report-j1 "$rt_bin" report --json --by container -j 1 "$rt_storage"
  one=$(rt_jq "$rt_out" "$rows_of" -c)
  for i in 1 2 3; do
    rt_run report-j16 "$rt_bin" report --json --by container -j 16 "$rt_storage"
    many=$(rt_jq "$rt_out" "$rows_of" -c)
    rt_eq "rows with -j 1 and -j 16 (run $i) are identical" "$many" "$one"
  done
}

# 3. --container by name, and the usage error for a name that matches nothing.
rt_check_container_option() {
  local rows others
  rt_run report-one "$rt_bin" report --json --by container --container web-1
  rows=$(rt_jq "$rt_out" '[.containers[]? | select(.name == "web-1")] | length')
  others=$(rt_jq "$rt_out" '[.containers[]? | select(.name != "web-1") | (.name // .cgroup)] | join(",")')
  if [ "$rt_rc" -eq 0 ] && [ "$rows" = 1 ] && [ -z "$others" ]; then
    rt_ok "report --container web-1: one row, web-1's"
  else
    rt_not_ok "report --container web-1: exit $rt_rc, web-1 rows $rows, other rows '$others'"
    rt_show_err
  fi
  rt_usage_error "report --container no-such-name" report --json --container no-such-name
  rt_usage_error "evict --dry-run --container no-such-name" evict --dry-run --container no-such-name
  # --dry-run here too: were the name not refused, a real evict would upset the evict checks.
  rt_usage_error "evict --dry-run --keep-container no-such-name" evict --dry-run --keep-container no-such-name
}
rt_usage_error() {
  local desc=$1
  shift
  rt_run usage "$rt_bin" "$@"
  if [ "$rt_rc" -eq 2 ] && grep -q no-such-name "$rt_err"; then
    rt_ok "$desc: exit 2, names it: $(head -n1 "$rt_err")"
  else
    rt_not_ok "$desc: exit $rt_rc (expected 2), stderr naming no-such-name: $(grep -c no-such-name "$rt_err") line(s)"
    rt_show_err
  fi
}

# 6. Without CAP_SYS_ADMIN /proc/kpagecgroup cannot be read: the report says attribution is off
# and why, in the JSON and on stderr.
rt_check_unprivileged() {
  local method reason
  rt_run report-unpriv setpriv --inh-caps=-sys_admin --bounding-set=-sys_admin -- \
    "$rt_bin" report --json --by container "$rt_storage"
  method=$(rt_jq "$rt_out" '.attribution.method // "absent"')
  reason=$(rt_jq "$rt_out" '.attribution.reason // ""')
  rt_eq "without CAP_SYS_ADMIN: attribution.method" "$method" none
  if [ -n "$reason" ] && [ "$reason" != invalid-json ]; then
    rt_ok "without CAP_SYS_ADMIN: attribution.reason: $reason"
  else
    rt_not_ok "without CAP_SYS_ADMIN: attribution.reason is empty (exit $rt_rc)"
  fi
  if [ -s "$rt_err" ]; then
    rt_ok "without CAP_SYS_ADMIN: stderr says why: $(head -n1 "$rt_err")"
  else
    rt_not_ok "without CAP_SYS_ADMIN: nothing on stderr"
  fi
}

# 7. The text report names the containers.
rt_check_text() {
  local n missing=
  rt_run report-text "$rt_bin" report --by container "$rt_storage"
  for n in "${rt_names[@]}"; do grep -qw -- "$n" "$rt_out" || missing+=" $n"; done
  if [ "$rt_rc" -eq 0 ] && [ -z "$missing" ]; then
    rt_ok "text report --by container names web-1, web-2, web-3"
  else
    rt_not_ok "text report --by container: exit $rt_rc, names missing:${missing:- none}"
    sed 's/^/    /' "$rt_out" | head -n 12
  fi
}

# 5. A stopped container keeps its row, marked stopped, with its own bytes; they do not move to
# the host row. (Docker and LXC.)
rt_check_stopped() {
  local n=$1 file host_before host_after mine
  rt_run report-before-stop "$rt_bin" report --json --by container "$rt_storage"
  host_before=$(rt_jq "$rt_out" '[.containers[]? | select(.runtime == "host") | .cached_bytes] | add // 0')
  rt_stop "$n"
  mine=$(rt_tree_cached "${rt_root[$n]}")
  rt_log "stopped $n; fincore: $mine bytes of its copies still cached"
  rt_run report-stopped "$rt_bin" report --json --by container "$rt_storage"
  file=$rt_out
  rt_eq "stopped $n: row kept, its name" "$(rt_row "$file" "$n" name)" "$n"
  rt_eq "stopped $n: \"stopped\"" "$(rt_row "$file" "$n" stopped)" true
  rt_eq "stopped $n: cached_bytes = fincore of its copies" "$(rt_row "$file" "$n" cached_bytes)" "$mine"
  host_after=$(rt_jq "$file" '[.containers[]? | select(.runtime == "host") | .cached_bytes] | add // 0')
  if [[ $host_after =~ ^[0-9]+$ ]] && [ $((host_after - host_before)) -lt "$mine" ]; then
    rt_ok "stopped $n: its bytes are not in the host row (host $host_before -> $host_after)"
  else
    rt_not_ok "stopped $n: host row grew from $host_before to $host_after (its copies: $mine bytes)"
  fi
}

# 4. evict with no PATH. The image layer's copies are read just before, so they are the most
# recently read copies, charged to no container: still they must not be the ones kept.
rt_check_evict() {
  local p file kept bad n name sums want got reread sec0 sec1 snap0 snap1 keepers=()
  declare -A keeper=()
  for p in "${rt_payloads[@]}"; do cat "$rt_image_root$rt_payload_dir/$p" >/dev/null; done
  rt_expect_waste || true
  rt_log "before evict: expected waste $rt_expect bytes (image layer copies read last)"

  rt_run evict "$rt_bin" evict --json
  file=$rt_out
  [ "$rt_rc" -eq 0 ] || { rt_not_ok "evict --json exited $rt_rc"; rt_show_err; }
  rt_log "evict: wasted $(rt_jq "$file" '.wasted_bytes_before') -> $(rt_jq "$file" '.wasted_bytes_after'), freed $(rt_jq "$file" '.freed_bytes')"

  # (a) The image layer's copy is not the one kept.
  for p in "${rt_payloads[@]}"; do
    rt_eq "evict: image layer's $p not kept (its cached bytes)" "$(rt_cached "$rt_image_root$rt_payload_dir/$p")" 0
  done
  # The kept copy's path: "kept_path", or "kept" as the first evict JSON called it.
  kept=$(rt_jq "$file" '[.actions[]? | (.kept_path // .kept // empty)] | unique | .[]')
  bad=$(grep -F "$rt_image_root/" <<<"$kept" | tr '\n' ' ' || true)
  if [ -z "$bad" ] && [ -n "$kept" ] && [ "$kept" != invalid-json ]; then
    rt_ok "evict: no action kept an image layer copy ($(wc -l <<<"$kept") kept paths)"
  else
    rt_not_ok "evict: actions keep image layer copies: ${bad:-none (no kept paths at all)}"
  fi

  # (b) Exactly one copy of each payload still cached, whole.
  for p in "${rt_payloads[@]}"; do
    rt_payload_copies "$p"
    if [ "$rt_full" -eq 1 ] && [ "$rt_partial" -eq 0 ]; then
      name=$(rt_name_of_root "${rt_full_roots[0]}")
      keeper[$p]=$name
      rt_ok "evict: one copy of $p cached, $name's"
    else
      rt_not_ok "evict: $p has $rt_full whole and $rt_partial partial cached copies, expected 1 whole"
    fi
  done

  # (c) A fresh report agrees with fincore, and what waste is left is exactly what evict said the
  # kernel kept: pages that processes map and MADV_PAGEOUT cannot take (a file page mapped twice
  # by one process, like the page busybox's text and its relocated data share). Only the
  # companion module's merge can remove those.
  local still
  still=$(rt_jq "$file" '[.actions[]?.still_cached_bytes] | add // 0')
  rt_expect_waste || rt_not_ok "after evict: a copy is partly cached with no whole copy, so the figure below is not exact"
  rt_run report-after-evict "$rt_bin" report --json
  rt_eq "report after evict: wasted bytes of the loop filesystem, as fincore says" "$(rt_fs_wasted "$rt_out")" "$rt_expect"
  rt_eq "report after evict: the waste left is what evict reported still cached (mapped)" "$rt_expect" "$still"
  if [ "$still" -le $((2 * rt_page * ${#rt_names[@]})) ]; then
    rt_ok "evict: at most two mapped pages per container left cached ($still bytes)"
  else
    rt_not_ok "evict: $still bytes left cached by mappings"
  fi

  # (d) Each keeper container reads its kept payloads again: right contents, nothing read from
  # the loop device (its read-sector counter), no copy's residency changed. Its busybox is
  # cached first from the host: exec needs those pages, and the keeper of busybox may be another
  # container. (The container's memory cgroup is no witness: runc init and lxc-attach run in it
  # and fault in pages of the host's runc and liblxc on first use of a code path.)
  for n in "${rt_names[@]}"; do
    reread=()
    for p in "${rt_payloads[@]}"; do [ "${keeper[$p]:-}" = "$n" ] && reread+=("$p"); done
    [ ${#reread[@]} -gt 0 ] || continue
    keepers+=("$n")
    cat "${rt_root[$n]}/bin/busybox" >/dev/null
    rt_exec "$n" true >/dev/null 2>&1 || true
    sync
    snap0=$(rt_residency_snapshot)
    sec0=$(rt_read_sectors)
    sums=$(rt_exec "$n" sha256sum "${reread[@]/#/$rt_payload_dir/}" 2>&1) || true
    sec1=$(rt_read_sectors)
    snap1=$(rt_residency_snapshot)
    for p in "${reread[@]}"; do
      got=$(awk -v f="$rt_payload_dir/$p" '$2 == f {print $1}' <<<"$sums")
      want=${rt_payload_sum[$p]}
      rt_eq "evict: $n re-reads $p, checksum" "${got:-none}" "$want"
    done
    rt_eq "evict: $n's re-read read sectors from /dev/$rt_loopdev" "$((sec1 - sec0))" 0
    if [ "$snap0" = "$snap1" ]; then
      rt_ok "evict: $n's re-read changed no copy's residency"
    else
      rt_not_ok "evict: $n's re-read changed residency: $(diff <(echo "$snap0") <(echo "$snap1") | grep '^[<>]' | tr '\n' ' ')"
    fi
  done

  [ ${#keepers[@]} -gt 0 ] || rt_not_ok "evict: no container's copy was kept, so none can re-read its payloads"

  # After the re-reads: still one copy of each payload, and the report agrees with fincore (the
  # busybox warm-up above may have made a second copy of busybox; that is counted on both sides).
  for p in "${rt_payloads[@]}"; do
    rt_payload_copies "$p"
    rt_eq "after the re-reads: whole cached copies of $p" "$rt_full/$rt_partial partial" "1/0 partial"
  done
  rt_expect_waste || rt_not_ok "after the re-reads: a copy is partly cached with no whole copy, so the figure below is not exact"
  rt_run report-after-reread "$rt_bin" report --json
  rt_eq "report after the re-reads: wasted bytes of the loop filesystem, as fincore says" \
    "$(rt_fs_wasted "$rt_out")" "$rt_expect"
}

# The scene is up (rt_root, rt_id, rt_image_root set, containers ready): drop the image layer's
# copies, so the three containers' copies are the only ones and each container pays a third,
# then run every check. With a container name, that container is also stopped and checked
# (then started again: the container keeping a copy after evict must be able to read it back).
rt_run_checks() {
  local stop=${1:-}
  rt_drop_tree "$rt_image_root"
  rt_list_files
  rt_describe_scene
  rt_log "scene ready in $((SECONDS - rt_t0)) s"
  rt_check_waste
  rt_check_rows
  rt_check_container_option
  rt_check_unprivileged
  rt_check_text
  if [ -n "$stop" ]; then
    rt_check_stopped "$stop"
    rt_start "$stop"
  fi
  rt_check_evict
  rt_finish
}
