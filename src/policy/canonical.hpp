// SPDX-License-Identifier: GPL-2.0-only
#pragma once

// The canonical store: per filesystem, <mount point>/.dupcache-canonical holds read-only
// reflink clones that merged processes map. They are what the other copies were merged onto, so
// no policy ever evicts, merges or counts them as a candidate.

#include <string_view>

namespace dupcache::policy {

constexpr const char* canonical_dir_name = ".dupcache-canonical";

// Whether path lies in a canonical directory.
inline bool is_canonical(std::string_view path) {
  constexpr std::string_view dir = "/.dupcache-canonical/";
  return path.find(dir) != std::string_view::npos;
}

}  // namespace dupcache::policy
