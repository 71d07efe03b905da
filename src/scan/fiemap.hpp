// SPDX-License-Identifier: GPL-2.0-only
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "util/result.hpp"

namespace dupcache {

struct extent {
  std::uint64_t logical = 0;   // byte offset in the file
  std::uint64_t physical = 0;  // byte address in the filesystem's physical space
  std::uint64_t length = 0;
  std::uint32_t flags = 0;     // FIEMAP_EXTENT_*
};

// Can the bytes of an extent be named by a physical address, page for page?
enum class placement {
  exact,        // fe_physical + (offset - fe_logical) is where each byte lives
  unknown,      // DELALLOC / UNKNOWN: no address yet (fe_physical is meaningless)
  inline_data,  // DATA_INLINE / DATA_TAIL: lives inside metadata, shares nothing
  not_aligned,  // NOT_ALIGNED: the address is not block addressable
  encoded,      // ENCODED (compressed): FIEMAP gives the start of the encoded extent, not the
                // offset of these bytes inside it, so two clones of different sub-ranges look
                // alike. Never a duplicate.
  encrypted,    // DATA_ENCRYPTED: the same disk bytes decrypt differently per inode key
};
placement classify(std::uint32_t flags);
std::string_view placement_name(placement p);

// The whole extent map of an open file, in as many FIEMAP rounds as it needs. Never passes
// FIEMAP_FLAG_SYNC: that would start writeback, and a report must not disturb the cache.
result<std::vector<extent>> read_extent_map(int fd);

// A run of whole pages of a file whose physical address is exact.
struct placed_run {
  std::uint64_t first_page = 0;  // file page index
  std::uint64_t pages = 0;
  std::uint64_t physical = 0;    // byte address of the first page's first byte
  bool shared = false;           // the filesystem flagged the extent SHARED
};

// Whole pages lying entirely inside one exactly placed extent. A page that straddles two
// extents, or touches an unplaceable one, is left out: precision first.
std::vector<placed_run> placed_runs(const std::vector<extent>& extents, std::uint64_t page_size);

}  // namespace dupcache
