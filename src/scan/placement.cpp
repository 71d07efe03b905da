// SPDX-License-Identifier: GPL-2.0-only
#include "scan/placement.hpp"

#include <fmt/format.h>

namespace dupcache {

std::vector<placed_extent> file_placement(int fd, const fs_info& fs, const std::vector<extent>& extents,
                                          std::uint64_t page_size) {
  std::string base = fs.id;
  if (fs.has_realtime && xfs_is_realtime(fd)) base += ":rt";
  std::vector<placed_extent> out;
  for (const auto& run : placed_runs(extents, page_size)) {
    const std::uint64_t misalign = run.physical % page_size;
    out.push_back({misalign ? fmt::format("{}:+{}", base, misalign) : base, run.first_page, run.pages,
                   run.physical - misalign, run.shared});
  }
  return out;
}

result<std::vector<index_piece>> clean_pieces(int fd, const std::vector<placed_extent>& placement,
                                              residency_reader& reader, std::uint64_t page_size,
                                              bool shared_only, std::uint64_t clean_prefix) {
  std::vector<index_piece> out;
  for (const auto& p : placement) {
    if (shared_only && !p.shared) continue;
    if (p.first_page + p.pages <= clean_prefix) {
      out.push_back({p.domain, p.physical, p.pages * page_size});
      continue;
    }
    auto clean = reader.clean_runs(fd, p.first_page, p.pages);
    if (!clean) return clean.err();
    for (const auto& c : *clean) {
      out.push_back({p.domain, p.physical + (c.first - p.first_page) * page_size, c.pages * page_size});
    }
  }
  return out;
}

}  // namespace dupcache
