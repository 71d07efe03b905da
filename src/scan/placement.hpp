// SPDX-License-Identifier: GPL-2.0-only
#pragma once

// From one file's extent map and residency to the pieces the index holds. Shared by the
// one-shot scanner and the live controller, which re-resolves single files.

#include <cstdint>
#include <string>
#include <vector>

#include "scan/fiemap.hpp"
#include "scan/fs_identity.hpp"
#include "scan/residency.hpp"

namespace dupcache {

// A run of whole file pages with exact physical addresses, named in the index's terms.
struct placed_extent {
  std::string domain;            // physical space: filesystem id, ":rt", ":+<misalignment>"
  std::uint64_t first_page = 0;  // file page index
  std::uint64_t pages = 0;
  std::uint64_t physical = 0;    // page-aligned address of first_page inside `domain`
  bool shared = false;           // the filesystem flagged the extent SHARED
};

// Pages share bytes only when their addresses are equal, so addresses that are not page
// aligned (blocks smaller than a page) get a domain of their own per alignment, where the
// index's page-aligned arithmetic stays exact. Realtime XFS files live on another device.
std::vector<placed_extent> file_placement(int fd, const fs_info& fs, const std::vector<extent>& extents,
                                          std::uint64_t page_size);

struct index_piece {
  std::string domain;
  std::uint64_t physical = 0;
  std::uint64_t length = 0;
};

// The clean cached pages of the placed extents (all, or only those flagged shared), as
// physical pieces. clean_prefix: the file's first clean_prefix pages are known to be cached and
// clean (one count over the whole file said every page is, none dirty or under writeback), so
// extents inside them need no residency lookup of their own; 0: every extent is looked up.
result<std::vector<index_piece>> clean_pieces(int fd, const std::vector<placed_extent>& placement,
                                              residency_reader& reader, std::uint64_t page_size,
                                              bool shared_only, std::uint64_t clean_prefix = 0);

}  // namespace dupcache
