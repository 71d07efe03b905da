// SPDX-License-Identifier: GPL-2.0-only
#include "index/block_index.hpp"

#include <algorithm>
#include <cassert>
#include <functional>

namespace dupcache {

std::size_t copy_key_hash::operator()(const copy_key& k) const noexcept {
  // An interned text is one string for the process: its address stands for its bytes (a
  // filesystem id is some 40 of them, hashed three times a file by a scan of a million).
  std::size_t h = std::hash<const void*>{}(k.fs.c_str());
  h ^= std::hash<std::uint64_t>{}(k.subvol) + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
  h ^= std::hash<std::uint64_t>{}(k.ino) + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
  return h;
}

namespace {
// Mixed (murmur3's finalizer): copy_key_hash's low bits follow the inode number's alone.
std::uint64_t mixed_hash(const copy_key& key) {
  std::uint64_t h = copy_key_hash{}(key);
  h = (h ^ (h >> 33)) * 0xff51afd7ed558ccdULL;
  return h ^ (h >> 33);
}
}  // namespace

std::size_t block_index::copy_slot(const copy_key& key) const {
  const std::size_t mask = copy_slots_.size() - 1;
  for (std::size_t i = mixed_hash(key) & mask;; i = (i + 1) & mask) {
    const copy_id id = copy_slots_[i];
    if (id == no_copy || copies_[id] == key) return i;
  }
}

std::optional<copy_id> block_index::find_copy(const copy_key& key) const {
  if (copy_slots_.empty()) return std::nullopt;
  const copy_id id = copy_slots_[copy_slot(key)];
  if (id == no_copy) return std::nullopt;
  return id;
}

chunked_vector<copy_key> block_index::take_keys() && {
  chunked_vector<copy_key> keys = std::move(copies_);
  *this = block_index(page_size_);
  return keys;
}

copy_id block_index::intern_copy(const copy_key& key) {
  if (2 * (copies_.size() + 1) > copy_slots_.size()) {
    // Grown (or made) at half full: every id placed again in a table twice the size.
    // The keys are distinct: each goes to the first empty slot of its probe, with no key
    // compared (a compare reads a key at random: a cache miss a copy, at a million).
    copy_slots_.assign(std::max<std::size_t>(64, 2 * copy_slots_.size()), no_copy);
    const std::size_t mask = copy_slots_.size() - 1;
    for (copy_id id = 0; id < copies_.size(); ++id) {
      std::size_t i = mixed_hash(copies_[id]) & mask;
      while (copy_slots_[i] != no_copy) i = (i + 1) & mask;
      copy_slots_[i] = id;
    }
  }
  const std::size_t slot = copy_slot(key);
  if (copy_slots_[slot] != no_copy) return copy_slots_[slot];
  const auto id = static_cast<copy_id>(copies_.size());
  copies_.push_back(key);
  copy_slots_[slot] = id;
  return id;
}

domain_id block_index::intern_domain(const std::string& name) {
  auto [it, inserted] = domain_ids_.try_emplace(name, static_cast<domain_id>(domain_names_.size()));
  if (inserted) {
    domain_names_.push_back(name);
    domains_.emplace_back();
  }
  return it->second;
}

block_index::segment_map::iterator block_index::split_at(segment_map& m, std::uint64_t at) {
  auto it = m.upper_bound(at);
  if (it == m.begin()) return it;
  auto prev = std::prev(it);
  if (prev->first == at) return prev;
  if (prev->second.end <= at) return it;
  segment tail{prev->second.end, prev->second.copies};
  prev->second.end = at;
  return m.emplace_hint(it, at, std::move(tail));
}

template <typename Fn>
void block_index::update_range(domain_id domain, std::uint64_t phys, std::uint64_t len,
                               bool create_gaps, Fn&& change) {
  if (len == 0) return;
  assert(phys % page_size_ == 0 && len % page_size_ == 0);
  auto& m = domains_.at(domain);
  const std::uint64_t end = phys + len;
  split_at(m, phys);
  split_at(m, end);

  std::uint64_t pos = phys;
  auto it = m.lower_bound(phys);
  while (pos < end) {
    if (it == m.end() || it->first > pos) {
      const std::uint64_t gap_end = (it == m.end()) ? end : std::min(end, it->first);
      if (!create_gaps) {
        pos = gap_end;
        continue;
      }
      it = m.emplace_hint(it, pos, segment{gap_end, {}});
    }
    segment& seg = it->second;
    const std::uint64_t seg_len = seg.end - it->first;
    const std::size_t old_k = seg.copies.size();
    change(seg.copies);
    const std::size_t new_k = seg.copies.size();
    if (new_k > old_k) indexed_bytes_ += (new_k - old_k) * seg_len;
    else indexed_bytes_ -= (old_k - new_k) * seg_len;
    if (old_k == 0 && new_k > 0) unique_bytes_ += seg_len;
    if (old_k > 0 && new_k == 0) unique_bytes_ -= seg_len;
    pos = seg.end;
    if (seg.copies.empty()) it = m.erase(it);
    else ++it;
  }

  // Merge neighbours whose copy sets became equal, from just before phys to just after end.
  auto first = m.lower_bound(phys);
  if (first != m.begin()) first = std::prev(first);
  while (first != m.end() && first->first <= end) {
    auto next = std::next(first);
    if (next == m.end() || next->first > end) break;
    if (first->second.end == next->first && first->second.copies == next->second.copies) {
      first->second.end = next->second.end;
      m.erase(next);
    } else {
      first = next;
    }
  }
}

void block_index::add(copy_id copy, domain_id domain, std::uint64_t phys, std::uint64_t len) {
  update_range(domain, phys, len, true, [copy](std::vector<copy_id>& c) {
    auto pos = std::lower_bound(c.begin(), c.end(), copy);
    if (pos == c.end() || *pos != copy) c.insert(pos, copy);
  });
}

void block_index::remove(copy_id copy, domain_id domain, std::uint64_t phys, std::uint64_t len) {
  update_range(domain, phys, len, false, [copy](std::vector<copy_id>& c) {
    auto pos = std::lower_bound(c.begin(), c.end(), copy);
    if (pos != c.end() && *pos == copy) c.erase(pos);
  });
}

std::optional<domain_id> block_index::find_domain(const std::string& name) const {
  auto it = domain_ids_.find(name);
  if (it == domain_ids_.end()) return std::nullopt;
  return it->second;
}

std::size_t block_index::segment_count() const {
  std::size_t n = 0;
  for (const auto& m : domains_) n += m.size();
  return n;
}

std::size_t block_index::memory_bytes() const {
  // A red-black tree node holds three pointers and a colour before the value.
  constexpr std::size_t node_overhead = 4 * sizeof(void*);
  std::size_t bytes = 0;
  for (const auto& m : domains_) {
    for (const auto& [start, seg] : m) {
      bytes += node_overhead + sizeof(start) + sizeof(seg) + seg.copies.capacity() * sizeof(copy_id);
    }
  }
  return bytes + copies_.size() * sizeof(copy_key) + copy_slots_.size() * sizeof(copy_id);
}

template <typename Pred>
std::uint64_t block_index::covered_if(domain_id domain, std::uint64_t phys, std::uint64_t len, Pred&& pred) const {
  if (domain >= domains_.size()) return 0;
  const auto& m = domains_[domain];
  const std::uint64_t end = phys + len;
  std::uint64_t n = 0;
  auto it = m.upper_bound(phys);
  if (it != m.begin()) --it;
  for (; it != m.end() && it->first < end; ++it) {
    if (!pred(it->second.copies)) continue;
    const std::uint64_t lo = std::max(phys, it->first);
    const std::uint64_t hi = std::min(end, it->second.end);
    if (hi > lo) n += hi - lo;
  }
  return n;
}

std::uint64_t block_index::covered_bytes(domain_id domain, std::uint64_t phys, std::uint64_t len,
                                         std::size_t min_copies) const {
  return covered_if(domain, phys, len, [min_copies](const std::vector<copy_id>& c) { return c.size() >= min_copies; });
}

std::uint64_t block_index::covered_by_others(domain_id domain, std::uint64_t phys, std::uint64_t len,
                                             copy_id self) const {
  return covered_if(domain, phys, len, [self](const std::vector<copy_id>& c) {
    return c.size() > 1 || (c.size() == 1 && c.front() != self);
  });
}

std::vector<copy_group> block_index::groups() const {
  // The shared segments' sets, pointed to (not copied), sorted as sequences of ids: each set's
  // segments end up side by side and become one group, its set copied once. (A map keyed by
  // the sets copied every segment's set and allocated a node for each: with every extent of a
  // million cached files indexed, a live model's groups took a quarter of an idle daemon's
  // CPU.) The groups come out in the order of their id sequences, as the map gave them, so the
  // final sort sees the same sequence and ties stay where they were.
  std::vector<std::pair<const std::vector<copy_id>*, std::uint64_t>> shared;
  for (const auto& m : domains_) {
    for (const auto& [start, seg] : m) {
      if (seg.copies.size() >= 2) shared.emplace_back(&seg.copies, seg.end - start);
    }
  }
  std::sort(shared.begin(), shared.end(), [](const auto& a, const auto& b) { return *a.first < *b.first; });
  std::vector<copy_group> out;
  for (std::size_t i = 0; i < shared.size();) {
    copy_group g{*shared[i].first, 0};
    for (; i < shared.size() && *shared[i].first == g.copies; ++i) g.bytes += shared[i].second;
    std::sort(g.copies.begin(), g.copies.end(), [this](copy_id a, copy_id b) { return copies_[a] < copies_[b]; });
    out.push_back(std::move(g));
  }
  std::sort(out.begin(), out.end(), [this](const copy_group& a, const copy_group& b) {
    if (auto c = b.wasted_bytes() <=> a.wasted_bytes(); c != 0) return c < 0;
    if (auto c = b.bytes <=> a.bytes; c != 0) return c < 0;
    return copies_[a.copies.front()] < copies_[b.copies.front()];
  });
  return out;
}

namespace {

// fn(copy, shared bytes, wasted bytes) for every copy of every group (see split_waste()).
template <typename Fn>
void for_each_waste_part(const std::vector<copy_group>& groups, std::uint64_t page_size, Fn&& fn) {
  for (const auto& g : groups) {
    const std::uint64_t k = g.copies.size();
    const std::uint64_t wasted_pages = (k - 1) * (g.bytes / page_size);
    const std::uint64_t base = wasted_pages / k;
    const std::uint64_t extra = wasted_pages % k;
    for (std::uint64_t i = 0; i < k; ++i) fn(g.copies[i], g.bytes, (base + (i < extra ? 1 : 0)) * page_size);
  }
}

}  // namespace

std::unordered_map<copy_id, copy_share> block_index::split_waste() const {
  std::unordered_map<copy_id, copy_share> out;
  for_each_waste_part(groups(), page_size_, [&](copy_id c, std::uint64_t shared, std::uint64_t wasted) {
    auto& s = out[c];
    s.shared_bytes += shared;
    s.wasted_bytes += wasted;
  });
  return out;
}

std::vector<std::pair<copy_id, copy_share>> block_index::split_waste_by_id(const std::vector<copy_group>& groups,
                                                                          std::uint64_t page_size) {
  // The distinct copies first (4 bytes per membership, freed before the parts are added), so
  // the result is allocated once at its exact size.
  std::vector<std::pair<copy_id, copy_share>> out;
  {
    std::size_t memberships = 0;
    for (const auto& g : groups) memberships += g.copies.size();
    std::vector<copy_id> ids;
    ids.reserve(memberships);
    for (const auto& g : groups) ids.insert(ids.end(), g.copies.begin(), g.copies.end());
    std::sort(ids.begin(), ids.end());
    ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
    out.reserve(ids.size());
    for (copy_id c : ids) out.emplace_back(c, copy_share{});
  }
  for_each_waste_part(groups, page_size, [&](copy_id c, std::uint64_t shared, std::uint64_t wasted) {
    auto it = std::lower_bound(out.begin(), out.end(), c, [](const auto& e, copy_id id) { return e.first < id; });
    it->second.shared_bytes += shared;
    it->second.wasted_bytes += wasted;
  });
  return out;
}

}  // namespace dupcache
