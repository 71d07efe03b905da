// SPDX-License-Identifier: GPL-2.0-only
#include "scan/fiemap.hpp"

#include <linux/fiemap.h>
#include <linux/fs.h>
#include <sys/ioctl.h>

#include <cstdlib>
#include <memory>

namespace dupcache {

placement classify(std::uint32_t flags) {
  if (flags & (FIEMAP_EXTENT_UNKNOWN | FIEMAP_EXTENT_DELALLOC)) return placement::unknown;
  if (flags & (FIEMAP_EXTENT_DATA_INLINE | FIEMAP_EXTENT_DATA_TAIL)) return placement::inline_data;
  if (flags & FIEMAP_EXTENT_NOT_ALIGNED) return placement::not_aligned;
  if (flags & FIEMAP_EXTENT_DATA_ENCRYPTED) return placement::encrypted;
  if (flags & FIEMAP_EXTENT_ENCODED) return placement::encoded;
  // UNWRITTEN (preallocated) extents have a real address; their cached pages read as zeros in
  // every inode that shares them, so they are placed like written ones.
  return placement::exact;
}

std::string_view placement_name(placement p) {
  switch (p) {
    case placement::exact: return "exact";
    case placement::unknown: return "delalloc";
    case placement::inline_data: return "inline";
    case placement::not_aligned: return "not-aligned";
    case placement::encoded: return "encoded";
    case placement::encrypted: return "encrypted";
  }
  return "?";
}

result<std::vector<extent>> read_extent_map(int fd) {
  // 256 extents a round keeps the buffer at 14 KiB; fragmented files take more rounds.
  constexpr std::uint32_t per_round = 256;
  // One buffer per thread, kept: a scan calls this once per cached file, and zeroing 14 KiB
  // each time showed in its profile. Only the header is written before each call; the kernel
  // fills the extents it reports, and only those are read.
  constexpr std::size_t bytes = sizeof(struct fiemap) + per_round * sizeof(struct fiemap_extent);
  thread_local std::unique_ptr<struct fiemap, decltype(&std::free)> buf(nullptr, &std::free);
  if (!buf) buf.reset(static_cast<struct fiemap*>(std::malloc(bytes)));
  if (!buf) return errno_error("allocate FIEMAP buffer", ENOMEM);
  auto* fm = buf.get();

  std::vector<extent> out;
  std::uint64_t start = 0;
  for (;;) {
    *fm = {};
    fm->fm_start = start;
    fm->fm_length = FIEMAP_MAX_OFFSET - start;
    fm->fm_flags = 0;  // never FIEMAP_FLAG_SYNC
    fm->fm_extent_count = per_round;
    if (ioctl(fd, FS_IOC_FIEMAP, fm) < 0) return errno_error("read extent map (FIEMAP)");
    if (fm->fm_mapped_extents == 0) break;
    bool last = false;
    for (std::uint32_t i = 0; i < fm->fm_mapped_extents; ++i) {
      const auto& fe = fm->fm_extents[i];
      out.push_back({fe.fe_logical, fe.fe_physical, fe.fe_length, fe.fe_flags});
      if (fe.fe_flags & FIEMAP_EXTENT_LAST) last = true;
    }
    const auto& tail = fm->fm_extents[fm->fm_mapped_extents - 1];
    const std::uint64_t next = tail.fe_logical + tail.fe_length;
    // A file that changes under us could report an extent that does not advance; stop rather
    // than loop.
    if (last || next <= start || fm->fm_mapped_extents < per_round) break;
    start = next;
  }
  return out;
}

std::vector<placed_run> placed_runs(const std::vector<extent>& extents, std::uint64_t page_size) {
  std::vector<placed_run> out;
  for (const auto& e : extents) {
    if (classify(e.flags) != placement::exact || e.length == 0) continue;
    const std::uint64_t first = (e.logical + page_size - 1) / page_size;
    const std::uint64_t end = (e.logical + e.length) / page_size;
    if (end <= first) continue;
    const std::uint64_t phys = e.physical + (first * page_size - e.logical);
    const bool shared = (e.flags & FIEMAP_EXTENT_SHARED) != 0;
    // Extents that continue each other on disk form one run, so the index sees fewer pieces.
    if (!out.empty()) {
      auto& prev = out.back();
      if (prev.shared == shared && prev.first_page + prev.pages == first &&
          prev.physical + prev.pages * page_size == phys) {
        prev.pages += end - first;
        continue;
      }
    }
    out.push_back({first, end - first, phys, shared});
  }
  return out;
}

}  // namespace dupcache
