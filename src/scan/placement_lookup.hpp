// SPDX-License-Identifier: GPL-2.0-only
#pragma once

// From the index's physical ranges back to file pages: each copy's placed extents
// (scan_result::placements) sorted by physical address, for the accounting and the eviction
// planner, which both walk the index's shared segments and need to know which pages of each
// copy hold them.

#include <cstdint>
#include <vector>

#include "scan/scanner.hpp"

namespace dupcache {

// A piece of [start, end) of one domain, as one copy holds it.
struct file_span {
  std::uint64_t start = 0;  // physical
  std::uint64_t end = 0;
  std::uint64_t first_page = 0;  // the file page holding `start`
  bool placed = false;           // false: the copy's placement does not cover it (cannot say)
};

class placement_lookup {
 public:
  explicit placement_lookup(const scan_result& scan);
  // [start, end) of domain d as copy c holds it, gap-free and in address order. A physical
  // range the copy maps twice is given through its first mapping (the index holds it once).
  std::vector<file_span> spans(copy_id c, domain_id d, std::uint64_t start, std::uint64_t end) const;

 private:
  struct extent {
    domain_id domain = 0;
    std::uint64_t physical = 0;
    std::uint64_t length = 0;
    std::uint64_t first_page = 0;
    bool operator<(const extent& o) const;
  };
  std::uint64_t ps_;
  std::vector<std::vector<extent>> by_copy_;
};

}  // namespace dupcache
