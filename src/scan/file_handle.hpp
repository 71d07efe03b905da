// SPDX-License-Identifier: GPL-2.0-only
#pragma once

// Reopening an inode from the identity a BPF event carries (superblock device, btrfs subvolume,
// inode number, generation) when no path is known: open_by_handle_at(2) with a handle built in
// the filesystem's own export format, relative to one mount of that filesystem.
// Contract: inode_opener holds one mount fd per superblock device, added from mountinfo
// entries; open() returns an empty unique_fd whenever the inode cannot be reached (device not
// added, a format this filesystem cannot express, the inode gone or reused), never a wrong file
// of another generation. Needs CAP_DAC_READ_SEARCH, as open_by_handle_at does.

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "scan/mounts.hpp"
#include "util/fd.hpp"

namespace dupcache {

// The bytes of a struct file_handle for `fs_type`; nullopt when the format cannot carry the
// inode (a 64-bit inode number on a filesystem whose generic format holds 32 bits).
struct file_handle_bytes {
  int handle_type = 0;
  std::vector<unsigned char> bytes;
};
std::optional<file_handle_bytes> build_file_handle(const std::string& fs_type, std::uint64_t ino,
                                                   std::uint64_t subvol, std::uint32_t generation);

class inode_opener {
 public:
  // Remembers the first mount seen of the device `dev`; later ones change nothing.
  void add(dev_t dev, const mount_entry& mount);
  bool knows(dev_t dev) const { return roots_.count(dev) != 0; }
  std::vector<dev_t> devices() const;
  // Read-only, close-on-exec, non-blocking: safe on FIFOs and devices a reused inode may be.
  unique_fd open(dev_t dev, std::uint64_t ino, std::uint64_t subvol, std::uint32_t generation) const;

 private:
  struct root {
    std::string type;  // decides the handle format
    unique_fd mount_fd;
  };
  std::unordered_map<dev_t, root> roots_;
};

}  // namespace dupcache
