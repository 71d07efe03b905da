#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# Real Podman (rootful, runc, cgroupfs) with the btrfs storage driver on a loop btrfs mounted at
# the default graphroot, /var/lib/containers/storage: an image imported from a local busybox
# rootfs, three containers web-1..3 reading the same payloads from their snapshots of it. Checks
# dupcache's report, container rows, --container, evict and unprivileged attribution against
# fincore (see lib.sh). Exit 77 (skipped) where it cannot run; under CI=true that is a failure.
# usage: podman_test.sh [DUPCACHE_BINARY]
set -euo pipefail
. "$(dirname "$0")/lib.sh"

rt_init podman "$@"
rt_need podman runc conmon

graphroot=/var/lib/containers/storage
image=localhost/dupcache-test:latest

# Podman's configuration for this test only, through CONTAINERS_CONF / CONTAINERS_STORAGE_CONF:
# - runc: crun refuses hybrid cgroup hosts like this one;
# - cgroupfs: PID 1 is not systemd;
# - default_ulimits: without them Podman asks runc for RLIMIT_NOFILE/NPROC of 1048576, and raising
#   a hard limit needs CAP_SYS_RESOURCE, which root lacks on the development machines (runc then
#   fails with "error setting rlimits"; there even NPROC at the shell's own hard limit was
#   refused, 32768 and below were not). 1024 is below any host's;
# - the k8s-file log driver and file events logger: there is no journald;
# - tmp_dir and the network configuration directory in the test's directory, so nothing is left
#   in /run/libpod or /etc/cni/net.d.
mkdir -p "$rt_tmp/runroot" "$rt_tmp/libpod" "$rt_tmp/cni"
cat >"$rt_tmp/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]
log_driver = "k8s-file"

[network]
network_config_dir = "$rt_tmp/cni"

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
tmp_dir = "$rt_tmp/libpod"
EOF
storage_conf="[storage]
driver = \"btrfs\"
graphroot = \"$graphroot\""
printf '%s\nrunroot = "%s"\n' "$storage_conf" "$rt_tmp/runroot" >"$rt_tmp/storage.conf"
export CONTAINERS_CONF=$rt_tmp/containers.conf CONTAINERS_STORAGE_CONF=$rt_tmp/storage.conf

# dupcache finds Podman's storage the way Podman does: /etc/containers/storage.conf (driver,
# graphroot), so the host file says what this test's private one says, for the test's duration.
rt_swap_file /etc/containers/storage.conf "$storage_conf"
rt_loop_btrfs "$graphroot"
# Left outside the test's directories by Podman: the image copy's blob cache (beside the
# graphroot, so forgotten after the graphroot's parent was made: undone before it is removed),
# runc's state directory, the cgroups of conmon and the containers.
rt_forget_path /var/lib/containers/cache
rt_forget_path /run/runc rmdir
rt_forget_cgroups libpod_parent
rt_make_rootfs "$rt_tmp/rootfs"
tar -C "$rt_tmp/rootfs" -cf "$rt_tmp/rootfs.tar" .
rt_at_exit "podman rm -f -t 0 ${rt_names[*]}; podman rmi -f $image"
podman import -q "$rt_tmp/rootfs.tar" "$image" >/dev/null

rt_exec() {
  local n=$1
  shift
  podman exec "$n" "$@"
}
rt_pid() { podman inspect -f '{{.State.Pid}}' "$1"; }

for n in "${rt_names[@]}"; do
  podman run -d --name "$n" --network none "$image" sh -c "$rt_container_cmd" >/dev/null
  rt_id[$n]=$(podman inspect -f '{{.Id}}' "$n")
  # With the btrfs driver a container's root is a subvolume, snapshot of the image's top layer;
  # `podman mount` says which (and counts a mount, hence the umount).
  rt_root[$n]=$(podman mount "$n")
  podman umount "$n" >/dev/null
done
rt_image_root=$(podman image mount "$image")
podman image umount "$image" >/dev/null
rt_wait_ready "${rt_names[@]}"

# The image layer's (the base's) copies were cached when written: rt_run_checks drops them.
rt_run_checks
