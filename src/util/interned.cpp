// SPDX-License-Identifier: GPL-2.0-only
#include "util/interned.hpp"

#include <mutex>
#include <unordered_set>

namespace dupcache {

const std::string* interned::intern(std::string_view text) {
  // Never freed: interned values are few and live as long as the process. Nodes of an
  // unordered_set do not move when it rehashes, so the pointers handed out stay valid.
  static std::mutex mu;
  static auto* table = new std::unordered_set<std::string>();
  std::lock_guard lock(mu);
  return &*table->emplace(text).first;
}

}  // namespace dupcache
