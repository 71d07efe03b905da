#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# Real Docker (Debian's docker.io: dockerd with its own containerd, runc, cgroupfs) with the btrfs
# storage driver on a loop btrfs mounted at the default data root, /var/lib/docker: an image
# imported from a local busybox rootfs, three containers web-1..3 reading the same payloads from
# their snapshots of it. Checks dupcache's report, container rows, --container, a stopped
# container's row, evict and unprivileged attribution against fincore (see lib.sh). The daemon is
# started and stopped by the test on a private socket. Exit 77 (skipped) where it cannot run;
# under CI=true that is a failure.
# usage: docker_test.sh [DUPCACHE_BINARY]
set -euo pipefail
. "$(dirname "$0")/lib.sh"

rt_init docker "$@"
# /usr/local/bin/docker may be an unrelated client that shadows Debian's: always Debian's, by
# its path, and always on this test's daemon.
rt_need /usr/sbin/dockerd /usr/bin/docker containerd containerd-shim-runc-v2 runc

data_root=/var/lib/docker
image=dupcache-test:latest
sock=$rt_tmp/docker.sock
docker() { /usr/bin/docker -H "unix://$sock" "$@"; }

rt_loop_btrfs "$data_root"
# Left outside the test's directories by dockerd and containerd: the plugin directory, the
# shims' sockets, the daemon's trust key (always /etc/docker/key.json in 20.10, whatever the
# configuration file), the containers' cgroups.
rt_forget_path /run/docker
rt_forget_path /run/containerd
rt_forget_path /etc/docker/key.json
rt_forget_cgroups docker

# The daemon, as a child of this script. Its configuration file is the test's (an empty one), so
# a host /etc/docker/daemon.json does not apply; the exec root (containerd's state and socket)
# is in the test's directory. No networking: the containers run with --network none.
echo '{}' >"$rt_tmp/daemon.json"
mkdir -p "$rt_tmp/exec"
/usr/sbin/dockerd --data-root "$data_root" --exec-root "$rt_tmp/exec" --pidfile "$rt_tmp/dockerd.pid" \
  --config-file "$rt_tmp/daemon.json" -H "unix://$sock" --storage-driver btrfs --iptables=false \
  --ip6tables=false --bridge=none --exec-opt native.cgroupdriver=cgroupfs >"$rt_tmp/dockerd.log" 2>&1 &
dockerd_pid=$!
rt_at_exit "stop_dockerd"
stop_dockerd() {
  local i
  kill -TERM "$dockerd_pid" 2>/dev/null || return 0
  for i in $(seq 100); do
    kill -0 "$dockerd_pid" 2>/dev/null || break
    sleep 0.2
  done
  kill -KILL "$dockerd_pid" 2>/dev/null || true
  wait "$dockerd_pid" 2>/dev/null || true
}
for i in $(seq 150); do
  docker version >/dev/null 2>&1 && break
  kill -0 "$dockerd_pid" 2>/dev/null || { tail -n 20 "$rt_tmp/dockerd.log" >&2; rt_die "dockerd exited"; }
  sleep 0.2
done
docker version >/dev/null 2>&1 || { tail -n 20 "$rt_tmp/dockerd.log" >&2; rt_die "dockerd did not answer on $sock within 30 s"; }

rt_make_rootfs "$rt_tmp/rootfs"
tar -C "$rt_tmp/rootfs" -cf "$rt_tmp/rootfs.tar" .
rt_at_exit "docker rm -f ${rt_names[*]}; docker rmi -f $image"
docker import "$rt_tmp/rootfs.tar" "$image" >/dev/null

rt_exec() {
  local n=$1
  shift
  docker exec "$n" "$@"
}
rt_pid() { docker inspect -f '{{.State.Pid}}' "$1"; }
rt_stop() { docker stop -t 1 "$1" >/dev/null; }
rt_start() {
  rm -f "${rt_root[$1]}/tmp/ready"
  docker start "$1" >/dev/null
  rt_wait_ready "$1"
}

# Docker's btrfs driver keeps each layer as a subvolume under btrfs/subvolumes, named by an id
# that only its layer database records: a container's read-write layer (mount-id) is a snapshot
# of its -init layer (init-id, the files Docker creates: /etc/hosts and the like), itself a
# snapshot of the image layer (cache-id of the image's one layer). The -init layers hold copies
# too, never read.
layerdb=$data_root/image/btrfs/layerdb
subvols=$data_root/btrfs/subvolumes
for n in "${rt_names[@]}"; do
  docker run -d --name "$n" --network none "$image" sh -c "$rt_container_cmd" >/dev/null
  rt_id[$n]=$(docker inspect -f '{{.Id}}' "$n")
  rt_root[$n]=$subvols/$(cat "$layerdb/mounts/${rt_id[$n]}/mount-id")
  rt_extra_roots+=("$subvols/$(cat "$layerdb/mounts/${rt_id[$n]}/init-id")")
done
layer=$(docker image inspect -f '{{index .RootFS.Layers 0}}' "$image")
rt_image_root=$subvols/$(cat "$layerdb/sha256/${layer#sha256:}/cache-id")
rt_wait_ready "${rt_names[@]}"

# The image layer's (the base's) copies were cached when written: rt_run_checks drops them.
rt_run_checks web-3
