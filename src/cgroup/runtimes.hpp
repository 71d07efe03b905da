// SPDX-License-Identifier: GPL-2.0-only
#pragma once

// What the container runtimes keep on disk about their containers, read from files below a root
// ("/" on a host, the host's tree mounted elsewhere with --metadata-root, a scratch tree in tests),
// never through a daemon. Every path below is inside that root:
//
//   Podman / CRI-O (containers/storage), any driver:
//     storage.conf: $CONTAINERS_STORAGE_CONF (only when the root is "/"), else
//       /etc/containers/storage.conf if it exists, else /usr/share/containers/storage.conf — the
//       first that exists is the only one read, as containers/storage does. [storage] graphroot
//       (default /var/lib/containers/storage), driver ("overlay2" means "overlay"; unset: the first
//       of driver_priority or overlay, aufs, btrfs, zfs, vfs with a <driver>-containers directory,
//       else overlay), runroot, transient_store, rootless_storage_path.
//     <graphroot>/<driver>-containers/containers.json and volatile-containers.json (in <runroot>
//       with transient_store): [{"id", "names": [name, ...], "layer", "image", "metadata"}].
//       CRI-O's entries carry "pod-id" in their metadata; their names are k8s_<ctr>_<pod>_<ns>_...
//     The container's own layer <layer>: overlay/<layer>/{diff,merged}, btrfs/subvolumes/<layer>,
//       vfs/dir/<layer>, zfs/graph/<layer>, aufs/{diff,mnt}/<layer>, below the graphroot.
//     Rootless users (uid >= 1000 in /etc/passwd, home owned by them):
//       <home>/.config/containers/storage.conf if it exists (graphroot, else its
//       rootless_storage_path, else <home>/.local/share/containers/storage), else the system file's
//       rootless_storage_path and its driver when rootless can use it (btrfs, overlay, vfs).
//       $HOME, $USER and $UID expand in these paths.
//   Docker, any driver: data-root from /etc/docker/daemon.json ("data-root", legacy "graph",
//     default /var/lib/docker); the snap's /var/snap/docker/current/config/daemon.json (default
//     /var/snap/docker/common/var-lib-docker); rootless <home>/.config/docker/daemon.json (default
//     <home>/.local/share/docker).
//     <data-root>/containers/<id>/config.v2.json: "Name" ("/web"), "Driver", "State"."Running".
//     <data-root>/image/<driver>/layerdb/mounts/<id>/{mount-id,init-id}: the layers' directory
//     names: overlay2/<m>/{diff,merged}, btrfs/subvolumes/<m>, vfs/dir/<m>, zfs/graph/<m>,
//     fuse-overlayfs/<m>/{diff,merged}, aufs/{diff,mnt}/<m>, overlay/<m>/{upper,merged}.
//     (The containerd image store, Driver "overlayfs", keeps layers in containerd's database: no
//     roots.)
//   LXC: lxcpath from /etc/lxc/lxc.conf "lxc.lxcpath" (default /var/lib/lxc); every
//     <lxcpath>/<name>/config is a container; its rootfs "lxc.rootfs.path" (legacy "lxc.rootfs"):
//     dir:/p, btrfs:/p, /p, overlay[fs]:<lower>...:<upper> (the upper, after the last ":/"),
//     default <lxcpath>/<name>/rootfs; block-device kinds (zfs:, lvm:, loop:, rbd:, nbd:) give none.
//   Incus / LXD: /var/lib/incus, /var/snap/lxd/common/lxd, /var/lib/lxd: containers/<lxc name>
//     (a link into storage-pools/<pool>/containers/) with rootfs/; the lxc name is <name> in the
//     default project, <project>_<name> elsewhere (instance names hold no '_').
//   systemd-nspawn: machine images that are directories in /etc/machines, /run/machines,
//     /var/lib/machines, /var/lib/container, /usr/local/lib/machines, /usr/lib/machines (the first
//     with a name wins); running when machined has /run/systemd/machines/<name>.
//
// Paths are resolved as if the root were "/" (openat2 RESOLVE_IN_ROOT: an absolute link such as
// /var/lib/docker -> /data/docker stays inside the root). Roots and storage paths are returned as
// dupcache sees them: absolute, symlinks resolved, only directories that exist.
// Files in users' homes are hostile: opened without leaving the user's directory (RESOLVE_BENEATH)
// and never through a link as the last component, stores outside the home only when the user owns
// them. Every file read is size-capped, every list count-capped; nothing here throws.

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace dupcache::cgroup {

// A container the runtimes' metadata knows, running or not.
struct known_container {
  std::string runtime;  // as classify() names its cgroup: "docker", "podman", "cri-o",
                        // "containerd", "kubernetes" (a pod), "lxc" (also Incus/LXD),
                        // "systemd-nspawn"
  std::string id;       // as classify() gives it: 64 hex digits, pod uid, lxc or machine name
  std::string name;     // printable; empty when the metadata has none
  std::vector<std::string> roots;  // its own root filesystem / writable layer directories
  std::optional<bool> running;     // when the metadata says
};

// A runtime's storage directory that exists.
struct storage_location {
  std::string runtime;  // "podman", "docker", "lxc", "incus", "lxd", "systemd-nspawn"
  std::string path;     // as dupcache sees it
  std::string driver;   // storage driver when known ("overlay", "btrfs", "overlay2", ...)
};

// Caps that keep hostile metadata cheap.
inline constexpr std::size_t max_known_containers = 100000;

// Printable ASCII only, anything else becomes '?': names end up on terminals.
std::string clean_name(std::string s);

class runtime_metadata {
 public:
  explicit runtime_metadata(std::string root = "/");
  ~runtime_metadata();
  runtime_metadata(const runtime_metadata&) = delete;
  runtime_metadata& operator=(const runtime_metadata&) = delete;

  // Every container of every runtime above except Kubernetes' own (names.hpp adds those), read
  // now, unsorted. At most max_known_containers.
  std::vector<known_container> containers();
  // The storage directories, read now, sorted by runtime then path.
  std::vector<storage_location> storage();
  // One Docker container of the system's data-roots, read now: one created after containers().
  std::optional<known_container> docker_container(const std::string& id);

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace dupcache::cgroup
