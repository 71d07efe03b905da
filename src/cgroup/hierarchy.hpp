// SPDX-License-Identifier: GPL-2.0-only
#pragma once

// The memory-cgroup hierarchy and the inode -> path map over it. Page charges name a memory
// cgroup by its directory's inode number (kpagecgroup, and the kernfs id the BPF events
// carry; the two are equal on 64-bit kernels), so the map is built by walking the hierarchy.
//   pure cgroup v2: the cgroup2 mount whose root lists "memory" in cgroup.controllers
//   hybrid / v1:    the cgroup v1 mount with the "memory" controller (a controller lives in one
//                   hierarchy only, so on hybrid hosts memory charges are v1 cgroups)

#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "scan/mounts.hpp"
#include "util/result.hpp"

namespace dupcache::cgroup {

struct memory_hierarchy {
  std::string mount_point;  // e.g. /sys/fs/cgroup or /sys/fs/cgroup/memory
  int version = 2;
};

// Picks the hierarchy that holds memory charges from mountinfo. has_memory(mount_point) says
// whether a cgroup2 mount's root offers the memory controller (a file read, injected for tests).
template <typename HasMemory>
std::optional<memory_hierarchy> pick_memory_hierarchy(const std::vector<mount_entry>& mounts, HasMemory&& has_memory) {
  for (const auto& m : mounts) {
    if (m.fstype != "cgroup") continue;
    std::string_view opts = m.super_options;
    while (!opts.empty()) {
      const auto comma = opts.find(',');
      if (opts.substr(0, comma) == "memory") return memory_hierarchy{m.mount_point, 1};
      if (comma == std::string_view::npos) break;
      opts.remove_prefix(comma + 1);
    }
  }
  for (const auto& m : mounts) {
    if (m.fstype == "cgroup2" && m.root == "/" && has_memory(m.mount_point)) return memory_hierarchy{m.mount_point, 2};
  }
  return std::nullopt;
}

class cgroup_map {
 public:
  // Finds the memory hierarchy of this host and walks it.
  static result<cgroup_map> load();
  // Walks the hierarchy mounted at h.mount_point (tests point it at a real hierarchy).
  static result<cgroup_map> walk(memory_hierarchy h);

  // The cgroup's path relative to the hierarchy root ("/" for the root), if it was there at the
  // last walk.
  const std::string* path(std::uint64_t ino) const;
  // Walks again (cgroups made since).
  result<void> refresh();
  // path(), walking again first when the inode is unknown and the last walk is older than 1 s.
  const std::string* path_refreshing(std::uint64_t ino);

  const memory_hierarchy& hierarchy() const { return h_; }
  std::size_t size() const { return paths_.size(); }
  // Every cgroup of the last walk: inode -> path.
  const std::unordered_map<std::uint64_t, std::string>& paths() const { return paths_; }

 private:
  explicit cgroup_map(memory_hierarchy h) : h_(std::move(h)) {}
  memory_hierarchy h_;
  std::unordered_map<std::uint64_t, std::string> paths_;
  std::uint64_t walked_ns_ = 0;
};

}  // namespace dupcache::cgroup
