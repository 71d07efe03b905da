// SPDX-License-Identifier: GPL-2.0-only
#pragma once

// Mapped duplicates: pages that POSIX_FADV_DONTNEED cannot drop because processes map them.
// process_madvise(MADV_PAGEOUT) asks the kernel to reclaim those pages from each mapping
// process (it reclaims clean file pages mapped by that process alone; pages several processes
// map are only deactivated, as MADV_COLD), after which they can be evicted. Never touches
// anonymous memory: only ranges of mappings of the very file (same st_dev and st_ino through
// /proc/PID/map_files).

#include <cstdint>
#include <string>
#include <vector>

#include "util/result.hpp"

namespace dupcache::policy {

struct mapping_range {
  int pid = 0;
  std::uint64_t start = 0;  // address
  std::uint64_t end = 0;
  std::uint64_t offset = 0;  // file offset at start
};

// Every mapping of the file open at fd, in every process (needs CAP_SYS_ADMIN for map_files).
std::vector<mapping_range> find_mappings(int fd);

struct pageout_result {
  std::uint64_t ranges = 0;     // address ranges advised
  std::uint64_t processes = 0;  // distinct processes
  std::vector<std::string> errors;
};

// MADV_PAGEOUT on the parts of `maps` that hold file bytes [offset, offset + length).
pageout_result page_out(const std::vector<mapping_range>& maps, std::uint64_t offset, std::uint64_t length);

}  // namespace dupcache::policy
