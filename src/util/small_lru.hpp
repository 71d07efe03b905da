// SPDX-License-Identifier: GPL-2.0-only
#pragma once

// A few values kept by key, the least recently used one replaced when full: the open files
// that evict (keepers) and dedupe (size-group members) reuse, bounded well under the open-file
// limit. Linear lookups: meant for tens of entries. Slots never move (reserved, replaced in
// place), so a value returned stays where it is until its own slot is replaced.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

namespace dupcache {

template <typename Key, typename Value>
class small_lru {
 public:
  explicit small_lru(std::size_t capacity) : capacity_(std::max<std::size_t>(capacity, 1)) {
    slots_.reserve(capacity_);
  }
  small_lru(const small_lru&) = delete;
  small_lru& operator=(const small_lru&) = delete;

  // The value kept for key, now the most recently used; nullptr if none.
  Value* find(const Key& key) {
    for (auto& s : slots_) {
      if (s.key == key) {
        s.used = ++uses_;
        return &s.value;
      }
    }
    return nullptr;
  }
  // Keeps value for key (not kept yet). When full, the least recently used slot's value goes to
  // on_evict first, then the slot is replaced.
  template <typename OnEvict>
  Value& put(const Key& key, Value value, OnEvict&& on_evict) {
    if (slots_.size() < capacity_) {
      slots_.push_back({key, std::move(value), ++uses_});
      return slots_.back().value;
    }
    auto oldest = std::min_element(slots_.begin(), slots_.end(), [](const slot& a, const slot& b) { return a.used < b.used; });
    on_evict(oldest->value);
    *oldest = slot{key, std::move(value), ++uses_};
    return oldest->value;
  }
  Value& put(const Key& key, Value value) {
    return put(key, std::move(value), [](Value&) {});
  }
  template <typename Fn>
  void for_each(Fn&& fn) {
    for (auto& s : slots_) fn(s.value);
  }

 private:
  struct slot {
    Key key;
    Value value;
    std::uint64_t used;
  };
  std::size_t capacity_;
  std::vector<slot> slots_;
  std::uint64_t uses_ = 0;
};

}  // namespace dupcache
