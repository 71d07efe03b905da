// SPDX-License-Identifier: GPL-2.0-only
#include "scan/superblocks.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <algorithm>
#include <cstdint>

#include "scan/fs_identity.hpp"
#include "util/fd.hpp"

namespace dupcache {

std::vector<mount_entry> sharing_mounts(const std::vector<mount_entry>& mounts) {
  return default_scan_mounts(mounts, [](const mount_entry& m) {
    unique_fd fd(open(m.mount_point.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NONBLOCK));
    return fd && fs_can_share(fd.get(), m.fstype);
  });
}

result<std::vector<dev_t>> superblock_devs(const scan_options& opts) {
  auto mounts = read_mountinfo();
  if (!mounts) return mounts.err();
  std::vector<dev_t> out;
  auto add = [&out](dev_t d) {
    if (std::find(out.begin(), out.end(), d) == out.end()) out.push_back(d);
  };
  if (opts.paths.empty()) {
    for (const auto& m : sharing_mounts(*mounts)) add(makedev(m.major, m.minor));
    return out;
  }
  for (const auto& p : opts.paths) {
    struct statx stx {};
    if (statx(AT_FDCWD, p.c_str(), AT_STATX_DONT_SYNC, STATX_MNT_ID, &stx) < 0) continue;
    for (const auto& m : *mounts) {
      if (static_cast<std::uint64_t>(m.id) == stx.stx_mnt_id) add(makedev(m.major, m.minor));
      // Mounts below the PATH count when the walk may cross into them.
      else if (opts.cross_mounts && !is_pseudo_fs(m.fstype) && m.mount_point.rfind(p, 0) == 0) {
        add(makedev(m.major, m.minor));
      }
    }
  }
  return out;
}

}  // namespace dupcache
