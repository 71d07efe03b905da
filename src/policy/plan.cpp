// SPDX-License-Identifier: GPL-2.0-only
#include "policy/plan.hpp"

#include <algorithm>
#include <map>
#include <optional>

#include "scan/placement_lookup.hpp"

namespace dupcache::policy {

std::vector<copy_plan> plan_evictions(const scan_result& scan, keep_rule rule, const facts_fn& facts) {
  const std::uint64_t ps = scan.index.page_size();
  const placement_lookup placed(scan);
  // Facts only of copies that share a block, once each: some cost a stat() (in_use).
  std::vector<std::optional<copy_facts>> known(scan.files.size());
  auto fact = [&](copy_id c) -> const copy_facts& {
    if (!known[c]) known[c] = facts(c);
    return *known[c];
  };
  auto better = [&](copy_id a, copy_id b) {  // a is a better keeper than b
    const auto& x = fact(a);
    const auto& y = fact(b);
    if (x.canonical != y.canonical) return x.canonical;
    if (rule == keep_rule::priority && x.priority != y.priority) return x.priority > y.priority;
    if (x.in_use != y.in_use) return x.in_use;
    if (x.live_container != y.live_container) return x.live_container;
    if (x.heat != y.heat) return x.heat > y.heat;
    if (x.priority != y.priority) return x.priority > y.priority;
    return scan.index.key_of(a) < scan.index.key_of(b);
  };

  std::map<copy_id, copy_plan> plans;
  scan.index.for_each_shared([&](domain_id d, std::uint64_t s, std::uint64_t e, const std::vector<copy_id>& copies) {
    copy_id keeper = copies.front();
    for (copy_id c : copies) {
      if (c < known.size() && better(c, keeper)) keeper = c;
    }
    const auto keeper_spans = placed.spans(keeper, d, s, e);
    for (copy_id c : copies) {
      if (c == keeper || c >= known.size() || !fact(c).evictable) continue;
      for (const auto& sp : placed.spans(c, d, s, e)) {
        if (!sp.placed) continue;
        // Cut at the keeper's span boundaries so each item has one keeper run.
        for (const auto& kp : keeper_spans) {
          if (!kp.placed) continue;
          const std::uint64_t a = std::max(sp.start, kp.start), b = std::min(sp.end, kp.end);
          if (a >= b) continue;
          evict_item it{c, sp.first_page + (a - sp.start) / ps, (b - a) / ps, keeper,
                        kp.first_page + (a - kp.start) / ps};
          auto& p = plans[c];
          p.copy = c;
          p.bytes += it.pages * ps;
          p.items.push_back(it);
        }
      }
    }
  });

  std::vector<copy_plan> out;
  for (auto& [c, p] : plans) {
    std::sort(p.items.begin(), p.items.end(),
              [](const evict_item& a, const evict_item& b) { return a.first_page < b.first_page; });
    std::vector<evict_item> merged;
    for (const auto& it : p.items) {
      if (!merged.empty()) {
        auto& m = merged.back();
        if (m.first_page + m.pages == it.first_page && m.keeper == it.keeper &&
            m.keeper_first_page + m.pages == it.keeper_first_page) {
          m.pages += it.pages;
          continue;
        }
      }
      merged.push_back(it);
    }
    p.items = std::move(merged);
    out.push_back(std::move(p));
  }
  std::sort(out.begin(), out.end(), [&](const copy_plan& a, const copy_plan& b) {
    if (a.bytes != b.bytes) return a.bytes > b.bytes;
    return scan.index.key_of(a.copy) < scan.index.key_of(b.copy);
  });
  return out;
}

}  // namespace dupcache::policy
