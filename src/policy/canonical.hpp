// SPDX-License-Identifier: GPL-2.0-only
#pragma once

// The canonical store: per filesystem, <mount point>/.dupcache-canonical holds read-only
// reflink clones that merged processes map. They are what the other copies were merged onto, so
// no policy ever evicts, merges or counts them as a candidate. The directory must be root's and
// writable by nobody else; whoever creates, names or removes copies in it holds its lock, so a
// copy being made for a merge is never collected as unmapped before the merge maps it. Copies are
// named by content (scan/extent_compare's content_name) and never written after their clone.

#include <cstdint>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "scan/mounts.hpp"
#include "scan/scanner.hpp"
#include "util/fd.hpp"
#include "util/result.hpp"

namespace dupcache::policy {

constexpr const char* canonical_dir_name = ".dupcache-canonical";

// Whether path lies in a canonical directory.
inline bool is_canonical(std::string_view path) {
  constexpr std::string_view dir = "/.dupcache-canonical/";
  return path.find(dir) != std::string_view::npos;
}

// dir + "/" + name, without doubling the slash of "/".
std::string join_path(const std::string& dir, const std::string& name);

// The mount point of the mount `path` is reached through, or "": the store of a file is on the
// mount it is reached through, so that the clone is on the same filesystem.
std::string mount_point_of(const std::vector<mount_entry>& mounts, const std::string& path);

// One filesystem's canonical directory, locked for as long as fd is open (fd is empty for a
// directory that does not exist yet, in a dry run).
struct canonical_dir {
  std::string path;
  unique_fd fd;
};
// Opens (with create: makes first) and locks the canonical directory of the filesystem mounted
// at mount_point; fails with ENOENT when it does not exist and create is false.
result<canonical_dir> open_canonical_dir(const std::string& mount_point, bool create);

// The canonical copy named `name` in dir, made as a read-only, immutable clone of src when
// absent (in a dry run: nothing made, an empty fd).
result<unique_fd> canonical_copy(const canonical_dir& dir, const std::string& name, int src, bool dry_run);

// Removes the canonical copies under `mount_points` that no process maps any more; returns how
// many, and what could not be removed in `errors`.
std::uint64_t collect_canonical(const std::set<std::string>& mount_points, std::vector<std::string>* errors);

// The mount points of the filesystems in scan that hold a canonical directory.
std::set<std::string> canonical_mounts(const scan_result& scan);

}  // namespace dupcache::policy
