// SPDX-License-Identifier: GPL-2.0-only
#pragma once

#include <algorithm>

namespace dupcache {

inline bool root_within(std::string_view root, std::string_view parent) {
  if (parent == "/") return true;
  return root.size() >= parent.size() && root.substr(0, parent.size()) == parent &&
         (root.size() == parent.size() || root[parent.size()] == '/');
}

template <typename Pred>
std::vector<mount_entry> default_scan_mounts(const std::vector<mount_entry>& mounts, Pred reflink_capable) {
  std::vector<const mount_entry*> candidates;
  for (const auto& m : mounts) {
    if (may_share_extents(m.fstype) && reflink_capable(m)) candidates.push_back(&m);
  }
  // Shortest roots first so that a mount of the whole filesystem wins over its bind mounts.
  std::stable_sort(candidates.begin(), candidates.end(), [](const mount_entry* a, const mount_entry* b) {
    if (a->major != b->major) return a->major < b->major;
    if (a->minor != b->minor) return a->minor < b->minor;
    return a->root.size() < b->root.size();
  });
  std::vector<mount_entry> chosen;
  for (const auto* m : candidates) {
    bool covered = false;
    for (const auto& c : chosen) {
      if (c.major == m->major && c.minor == m->minor && root_within(m->root, c.root)) covered = true;
    }
    if (!covered) chosen.push_back(*m);
  }
  return chosen;
}

}  // namespace dupcache
