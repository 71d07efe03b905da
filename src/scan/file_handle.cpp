// SPDX-License-Identifier: GPL-2.0-only
#include "scan/file_handle.hpp"

#include <fcntl.h>

#include <cstdint>
#include <cstring>

namespace dupcache {

// The layouts are each filesystem's export format: fs/btrfs/export.h, fs/xfs/xfs_export.h,
// include/linux/exportfs.h. Types are the kernel's enum fid_type values.
std::optional<file_handle_bytes> build_file_handle(const std::string& fs_type, std::uint64_t ino,
                                                   std::uint64_t subvol, std::uint32_t generation) {
  file_handle_bytes h;
  auto put = [&h](const auto v) {
    const auto* p = reinterpret_cast<const unsigned char*>(&v);
    h.bytes.insert(h.bytes.end(), p, p + sizeof v);
  };
  if (fs_type == "btrfs") {
    h.handle_type = 0x4d;  // FILEID_BTRFS_WITHOUT_PARENT: objectid, root objectid, generation
    put(ino);
    put(subvol);
    put(generation);
  } else if (fs_type == "xfs") {
    h.handle_type = 0x81;  // FILEID_INO32_GEN | XFS_FILEID_TYPE_64FLAG: 64-bit ino, generation
    put(ino);
    put(generation);
  } else {
    if (ino > UINT32_MAX) return std::nullopt;
    h.handle_type = 1;  // FILEID_INO32_GEN (ext4 and the generic export operations)
    put(static_cast<std::uint32_t>(ino));
    put(generation);
  }
  return h;
}

void inode_opener::add(dev_t dev, const mount_entry& mount) {
  if (roots_.count(dev)) return;
  root r;
  r.type = mount.fstype;
  r.mount_fd = unique_fd(::open(mount.mount_point.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  roots_.emplace(dev, std::move(r));
}

std::vector<dev_t> inode_opener::devices() const {
  std::vector<dev_t> out;
  for (const auto& [dev, _] : roots_) out.push_back(dev);
  return out;
}

unique_fd inode_opener::open(dev_t dev, std::uint64_t ino, std::uint64_t subvol, std::uint32_t generation) const {
  auto it = roots_.find(dev);
  if (it == roots_.end() || !it->second.mount_fd) return {};
  auto h = build_file_handle(it->second.type, ino, subvol, generation);
  if (!h) return {};
  // struct file_handle ends in a flexible array: room for the largest format above.
  struct {
    struct file_handle fh;
    unsigned char bytes[64];
  } buf{};
  static_assert(sizeof(buf.bytes) >= 8 + 8 + 4);
  buf.fh.handle_type = h->handle_type;
  buf.fh.handle_bytes = static_cast<unsigned>(h->bytes.size());
  std::memcpy(buf.fh.f_handle, h->bytes.data(), h->bytes.size());
  return unique_fd(open_by_handle_at(it->second.mount_fd.get(), &buf.fh, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY));
}

}  // namespace dupcache
