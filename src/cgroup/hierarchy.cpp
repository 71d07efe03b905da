// SPDX-License-Identifier: GPL-2.0-only
#include "cgroup/hierarchy.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>

#include <fstream>
#include <sstream>

#include "util/clock.hpp"
#include "util/fd.hpp"

namespace dupcache::cgroup {

namespace {

constexpr int max_depth = 64;

bool root_has_memory(const std::string& mount_point) {
  std::ifstream f(mount_point + "/cgroup.controllers");
  std::string word;
  while (f >> word) {
    if (word == "memory") return true;
  }
  return false;
}

// Directories only, never following anything: cgroupfs has no symlinks, but a hostile mount
// could.
void walk_dir(int dfd, const std::string& rel, int depth, std::unordered_map<std::uint64_t, std::string>& out) {
  struct stat st {};
  if (fstat(dfd, &st) < 0) return;
  out[static_cast<std::uint64_t>(st.st_ino)] = rel.empty() ? "/" : rel;
  if (depth >= max_depth) return;
  DIR* d = fdopendir(dup(dfd));
  if (!d) return;
  while (struct dirent* de = readdir(d)) {
    if (de->d_type != DT_DIR) continue;
    const char* n = de->d_name;
    if (n[0] == '.' && (n[1] == 0 || (n[1] == '.' && n[2] == 0))) continue;
    unique_fd child(openat(dfd, n, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!child) continue;  // removed meanwhile
    walk_dir(child.get(), rel + "/" + n, depth + 1, out);
  }
  closedir(d);
}

}  // namespace

result<cgroup_map> cgroup_map::load() {
  auto mounts = read_mountinfo();
  if (!mounts) return mounts.err();
  auto h = pick_memory_hierarchy(*mounts, root_has_memory);
  if (!h) {
    return plain_error("find the memory cgroup hierarchy",
                       "no cgroup v1 mount with the memory controller and no cgroup2 mount offering it");
  }
  return walk(*h);
}

result<cgroup_map> cgroup_map::walk(memory_hierarchy h) {
  cgroup_map m(std::move(h));
  if (auto r = m.refresh(); !r) return r.err();
  return m;
}

result<void> cgroup_map::refresh() {
  unique_fd root(open(h_.mount_point.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!root) return errno_error("open cgroup hierarchy " + h_.mount_point);
  std::unordered_map<std::uint64_t, std::string> paths;
  walk_dir(root.get(), "", 0, paths);
  paths_ = std::move(paths);
  walked_ns_ = monotonic_ns();
  return {};
}

const std::string* cgroup_map::path(std::uint64_t ino) const {
  auto it = paths_.find(ino);
  return it == paths_.end() ? nullptr : &it->second;
}

const std::string* cgroup_map::path_refreshing(std::uint64_t ino) {
  if (const auto* p = path(ino)) return p;
  if (monotonic_ns() - walked_ns_ < 1'000'000'000ULL) return nullptr;
  (void)refresh();
  return path(ino);
}

}  // namespace dupcache::cgroup
