// SPDX-License-Identifier: GPL-2.0-only
#pragma once

#include <sys/stat.h>
#include <sys/types.h>

#include <cstdint>
#include <map>
#include <mutex>
#include <string>

#include "util/interned.hpp"
#include "util/result.hpp"

namespace dupcache {

// What a file's filesystem is, as far as identity goes (DESIGN.md "Identity, exactly").
struct fs_info {
  std::string type;          // "btrfs", "xfs", "ext4", or the magic in hex
  interned id;               // "<type>:<uuid>": the same for every subvolume and every mount
  std::uint64_t subvol = 0;  // btrfs subvolume (root) id; 0 where there are none
  bool has_realtime = false; // XFS with a realtime device: rt files live in another space
};

std::string fs_type_name(std::uint64_t magic);
std::string format_uuid(const unsigned char (&uuid)[16]);

// Looks filesystems up once per st_dev (on btrfs, once per subvolume) and remembers them.
class fs_registry {
 public:
  result<fs_info> lookup(int fd, const struct stat& st);

 private:
  std::mutex mu_;
  std::map<dev_t, fs_info> by_dev_;
};

// Whether the filesystem mounted at `dir_fd` can share extents (for XFS: formatted with reflink).
bool fs_can_share(int dir_fd, const std::string& fstype);

// Whether an open file on XFS lives on the realtime device.
bool xfs_is_realtime(int fd);

}  // namespace dupcache
