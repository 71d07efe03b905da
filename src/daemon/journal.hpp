// SPDX-License-Identifier: GPL-2.0-only
#pragma once

// The action journal: one JSON object per line, appended and flushed per action; when the file
// passes max_bytes it is rotated (path -> path.1 -> ... -> path.<keep>, the oldest dropped).

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "util/fd.hpp"
#include "util/result.hpp"

namespace dupcache::daemon {

class journal {
 public:
  journal() = default;
  result<void> open(const std::string& path, std::uint64_t max_bytes, unsigned keep);
  // Writes one line; rotation failures are returned but the line is still written when it can be.
  result<void> write(const nlohmann::ordered_json& entry);
  bool enabled() const { return fd_.valid(); }

 private:
  result<void> rotate();
  std::string path_;
  std::uint64_t max_bytes_ = 0;
  unsigned keep_ = 0;
  std::uint64_t size_ = 0;
  unique_fd fd_;
};

}  // namespace dupcache::daemon
