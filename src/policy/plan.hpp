// SPDX-License-Identifier: GPL-2.0-only
#pragma once

// Which cached copies to get rid of: for every physical range cached by two or more copies,
// one copy is kept (the keeper) and the clean pages of the others are planned for eviction.
// The keeper is never planned, so no block loses its last cached copy by the plan; the
// executor checks again, just before acting, that the keeper still holds the range.

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "scan/scanner.hpp"

namespace dupcache::policy {

// Which copy of a block keeps its cache. A canonical copy (policy/canonical.hpp) comes first
// under both rules: merged processes map it and no policy ever evicts it, so keeping any other
// copy beside it would leave two copies cached for good (and keep a copy the merge has just
// unmapped). Then, under either rule, a copy in use beats one that is not,
// in this order: mapped or open by a running process, then charged to a live container, then
// the most recently used. A copy nobody uses (an image layer's) is so never kept while one a
// container reads is evicted: that container would read the block from disk again and rebuild
// the duplicate.
enum class keep_rule {
  hottest,   // in use, then the copy most recently used (live: last insertion; one-shot: most cached)
  priority,  // the copy charged to the highest-priority container, then as hottest
};

struct copy_facts {
  int priority = 0;           // higher is kept first under keep_rule::priority
  bool in_use = false;        // mapped or open by a running process
  bool live_container = false;  // has pages charged to a running container
  std::uint64_t heat = 0;     // higher is kept
  bool evictable = true;      // in scope and not backing off
  bool canonical = false;     // a canonical copy: kept before any other (and never evicted)
};
using facts_fn = std::function<copy_facts(copy_id)>;

// One run of a copy's file pages to evict, and the copy (and its pages) that keep the blocks.
struct evict_item {
  copy_id copy = 0;
  std::uint64_t first_page = 0;
  std::uint64_t pages = 0;
  copy_id keeper = 0;
  std::uint64_t keeper_first_page = 0;
};

struct copy_plan {
  copy_id copy = 0;
  std::uint64_t bytes = 0;
  std::vector<evict_item> items;  // in file order, adjacent runs with one keeper merged
};

// Copies with the most to evict first.
std::vector<copy_plan> plan_evictions(const scan_result& scan, keep_rule rule, const facts_fn& facts);

}  // namespace dupcache::policy
