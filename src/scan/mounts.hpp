// SPDX-License-Identifier: GPL-2.0-only
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "util/result.hpp"

namespace dupcache {

// One line of /proc/self/mountinfo (proc(5)), with the octal escapes undone.
struct mount_entry {
  int id = 0;
  int parent = 0;
  unsigned major = 0;
  unsigned minor = 0;
  std::string root;         // the path inside the filesystem that is mounted here
  std::string mount_point;
  std::string options;
  std::string fstype;
  std::string source;
  std::string super_options;
  bool unbindable = false;  // the optional field "unbindable": no bind mount or copy takes it
};

std::string unescape_mount_field(std::string_view s);
result<std::vector<mount_entry>> parse_mountinfo(std::string_view text);
result<std::vector<mount_entry>> read_mountinfo();

// Filesystem types that can share extents between files: reflink or snapshots.
bool may_share_extents(std::string_view fstype);
// Filesystems dupcache never walks into: they hold no regular file page cache worth reporting
// and some of their files have side effects when opened.
bool is_pseudo_fs(std::string_view fstype);

// The mounts a report walks when no PATH is named: one mount per filesystem-with-sharing, the
// ones whose root is not inside another chosen mount of the same filesystem. `reflink_capable`
// decides for types where it depends on the format (XFS without reflink=1 shares nothing).
template <typename Pred>
std::vector<mount_entry> default_scan_mounts(const std::vector<mount_entry>& mounts, Pred reflink_capable);

// What a walk from each of `roots` meets, from the mount table alone (for doctor): the mounts
// below a root's mount point that belong to the same filesystem (same device: entered by the
// walk) and those of other filesystems (left out unless cross_mounts; pseudo ones always).
struct walk_outline {
  mount_entry root;
  std::vector<mount_entry> same_fs;   // entered
  std::vector<mount_entry> other_fs;  // not entered by default (pseudo filesystems not listed)
};
std::vector<walk_outline> outline_walks(const std::vector<mount_entry>& mounts, const std::vector<mount_entry>& roots);

}  // namespace dupcache

#include "scan/mounts_impl.hpp"
