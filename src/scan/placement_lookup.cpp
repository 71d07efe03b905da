// SPDX-License-Identifier: GPL-2.0-only
#include "scan/placement_lookup.hpp"

#include <algorithm>
#include <tuple>

namespace dupcache {

bool placement_lookup::extent::operator<(const extent& o) const {
  return std::tie(domain, physical, first_page) < std::tie(o.domain, o.physical, o.first_page);
}

placement_lookup::placement_lookup(const scan_result& scan) : ps_(scan.index.page_size()) {
  by_copy_.resize(scan.files.size());
  for (copy_id c = 0; c < scan.files.size() && c < scan.placements.size(); ++c) {
    for (const auto& p : scan.placements[c]) {
      if (auto d = scan.index.find_domain(p.domain)) by_copy_[c].push_back({*d, p.physical, p.pages * ps_, p.first_page});
    }
    std::sort(by_copy_[c].begin(), by_copy_[c].end());
  }
}

std::vector<file_span> placement_lookup::spans(copy_id c, domain_id d, std::uint64_t s, std::uint64_t e) const {
  std::vector<file_span> out;
  auto gap = [&](std::uint64_t a, std::uint64_t b) {
    if (a < b) out.push_back({a, b, 0, false});
  };
  if (c >= by_copy_.size()) {
    gap(s, e);
    return out;
  }
  const auto& rev = by_copy_[c];
  std::uint64_t at = s;
  auto it = std::upper_bound(rev.begin(), rev.end(), extent{d, s, 0, ~0ULL});
  if (it != rev.begin()) --it;
  for (; it != rev.end() && at < e; ++it) {
    if (it->domain < d) continue;
    if (it->domain > d || it->physical >= e) break;
    const std::uint64_t xs = std::max(at, it->physical);
    const std::uint64_t xe = std::min(e, it->physical + it->length);
    if (xs >= xe) continue;
    gap(at, xs);
    out.push_back({xs, xe, it->first_page + (xs - it->physical) / ps_, true});
    at = xe;
  }
  gap(at, e);
  return out;
}

}  // namespace dupcache
