// SPDX-License-Identifier: GPL-2.0-only
#include "policy/dedupe_plan.hpp"

#include <algorithm>
#include <map>
#include <unordered_map>

namespace dupcache::policy {

std::vector<std::vector<std::size_t>> size_groups(const std::vector<std::uint64_t>& sizes, std::uint64_t min_size) {
  std::map<std::uint64_t, std::size_t> group_of;  // size -> index in out
  std::vector<std::vector<std::size_t>> out;
  for (std::size_t i = 0; i < sizes.size(); ++i) {
    if (sizes[i] < min_size || sizes[i] == 0) continue;
    auto [it, fresh] = group_of.try_emplace(sizes[i], out.size());
    if (fresh) out.emplace_back();
    out[it->second].push_back(i);
  }
  std::erase_if(out, [](const auto& g) { return g.size() < 2; });
  return out;
}

dedupe_plan plan_dedupe(const std::vector<dedupe_member>& members, std::uint64_t block_size) {
  dedupe_plan plan;
  if (members.size() < 2 || block_size == 0) return plan;
  const std::uint64_t size = members.front().size;
  const std::uint64_t blocks = (size + block_size - 1) / block_size;
  auto bytes_of = [&](std::uint64_t b) { return std::min(block_size, size - b * block_size); };
  // The first member holding each (block, hash): the source of every later member with it.
  // One lookup per block, where comparing with every earlier member made a group of n files
  // n^2/2 comparisons per block.
  struct block_hash {
    std::uint64_t block, hash;
    bool operator==(const block_hash&) const = default;
  };
  struct mix {
    std::size_t operator()(const block_hash& k) const { return k.hash ^ (k.block * 0x9e3779b97f4a7c15ull); }
  };
  std::unordered_map<block_hash, std::size_t, mix> first;
  for (std::size_t d = 0; d < members.size(); ++d) {
    const auto& dst = members[d];
    if (dst.size != size || dst.hashes.size() != blocks) continue;
    bool open = false;
    for (std::uint64_t b = 0; b < blocks; ++b) {
      const std::size_t src = first.try_emplace({b, dst.hashes[b]}, d).first->second;
      bool share = src != d;
      if (share && b < dst.physical.size() && b < members[src].physical.size() && dst.physical[b] != no_physical &&
          dst.physical[b] == members[src].physical[b]) {
        plan.already_shared_bytes += bytes_of(b);
        share = false;
      }
      if (!share) {
        open = false;
        continue;
      }
      auto& last = plan.ranges;
      if (open && last.back().src == src && last.back().offset + last.back().length == b * block_size) {
        last.back().length += bytes_of(b);
      } else {
        last.push_back({src, d, b * block_size, bytes_of(b)});
        open = true;
      }
    }
  }
  return plan;
}

std::vector<std::uint64_t> block_addresses(const std::vector<placed_block_run>& runs, std::uint64_t size,
                                           std::uint64_t block_size) {
  const std::uint64_t blocks = block_size ? (size + block_size - 1) / block_size : 0;
  std::vector<std::uint64_t> out(blocks, no_physical);
  for (const auto& r : runs) {
    for (std::uint64_t i = 0; i < r.blocks && r.first + i < blocks; ++i) out[r.first + i] = r.physical + i * block_size;
  }
  return out;
}

std::vector<page_run> subtract_runs(const std::vector<page_run>& after, const std::vector<page_run>& before) {
  std::vector<page_run> out;
  std::size_t j = 0;
  for (const auto& a : after) {
    std::uint64_t cur = a.first;
    const std::uint64_t end = a.first + a.pages;
    while (j < before.size() && before[j].first + before[j].pages <= cur) ++j;
    for (std::size_t k = j; k < before.size() && before[k].first < end && cur < end; ++k) {
      if (before[k].first > cur) out.push_back({cur, before[k].first - cur});
      cur = std::max(cur, before[k].first + before[k].pages);
    }
    if (cur < end) out.push_back({cur, end - cur});
  }
  return out;
}

std::chrono::nanoseconds rate_limiter::take(std::uint64_t bytes, clock::time_point now) {
  if (rate_ == 0) return std::chrono::nanoseconds{0};
  if (!started_ || next_ < now) next_ = now;
  started_ = true;
  const auto wait = next_ - now;
  // Whole seconds and the remainder apart, so bytes * 1e9 cannot overflow.
  const std::uint64_t secs = bytes / rate_;
  const auto rem_ns = static_cast<std::uint64_t>(static_cast<unsigned __int128>(bytes % rate_) * 1'000'000'000u / rate_);
  next_ += std::chrono::seconds(secs) + std::chrono::nanoseconds(rem_ns);
  return std::chrono::duration_cast<std::chrono::nanoseconds>(wait);
}

}  // namespace dupcache::policy
