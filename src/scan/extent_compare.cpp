// SPDX-License-Identifier: GPL-2.0-only
#include "scan/extent_compare.hpp"

#include <fmt/format.h>
#include <linux/fiemap.h>
#include <sys/stat.h>

#include <algorithm>

#include "scan/fiemap.hpp"

namespace dupcache {
namespace {

constexpr std::uint32_t unplaced_flags = FIEMAP_EXTENT_UNKNOWN | FIEMAP_EXTENT_DELALLOC | FIEMAP_EXTENT_ENCODED |
                                         FIEMAP_EXTENT_DATA_ENCRYPTED | FIEMAP_EXTENT_NOT_ALIGNED |
                                         FIEMAP_EXTENT_DATA_INLINE | FIEMAP_EXTENT_DATA_TAIL |
                                         FIEMAP_EXTENT_UNWRITTEN;

}  // namespace

result<std::vector<extent_piece>> pieces_of(int fd, std::uint64_t lo, std::uint64_t hi) {
  auto ext = read_extent_map(fd);
  if (!ext) return ext.err();
  std::vector<extent_piece> out;
  auto push = [&](extent_piece p) {
    if (!out.empty()) {
      auto& b = out.back();
      if (b.hi == p.lo && b.hole == p.hole && (p.hole || b.physical + (b.hi - b.lo) == p.physical)) {
        b.hi = p.hi;
        return;
      }
    }
    out.push_back(p);
  };
  std::uint64_t at = lo;
  for (const auto& e : *ext) {
    const std::uint64_t s = std::max(e.logical, lo), t = std::min(e.logical + e.length, hi);
    if (s >= t) continue;
    if (e.flags & unplaced_flags) {
      return plain_error("compare extents", fmt::format("bytes {}..{} are not at a fixed place (FIEMAP flags {:#x})", s, t, e.flags));
    }
    if (s > at) push({at, s, 0, true});
    push({s, t, e.physical + (s - e.logical), false});
    at = t;
  }
  if (at < hi) push({at, hi, 0, true});
  return out;
}

bool same_extents(int a, int b, std::uint64_t offset, std::uint64_t length, std::string* why) {
  struct stat sa {}, sb {};
  if (fstat(a, &sa) != 0 || fstat(b, &sb) != 0) {
    *why = errno_error("stat").message();
    return false;
  }
  const std::uint64_t hi = std::min<std::uint64_t>({offset + length, static_cast<std::uint64_t>(sa.st_size),
                                                    static_cast<std::uint64_t>(sb.st_size)});
  if (offset >= hi) return true;
  auto pa = pieces_of(a, offset, hi), pb = pieces_of(b, offset, hi);
  if (!pa || !pb) {
    *why = (!pa ? pa : pb).err().message();
    return false;
  }
  if (*pa != *pb) {
    *why = fmt::format("bytes {}..{} are not held by the same physical extents", offset, hi);
    return false;
  }
  return true;
}

result<std::string> content_name(int fd) {
  struct stat st {};
  if (fstat(fd, &st) != 0) return errno_error("stat");
  auto ext = read_extent_map(fd);
  if (!ext) return ext.err();
  std::uint64_t h = 1469598103934665603ull;  // FNV-1a, 64 bits
  auto mix = [&](std::uint64_t v) {
    for (int i = 0; i < 8; ++i) {
      h ^= (v >> (8 * i)) & 0xff;
      h *= 1099511628211ull;
    }
  };
  mix(static_cast<std::uint64_t>(st.st_size));
  for (const auto& e : *ext) {
    mix(e.logical);
    mix(e.physical);
    mix(e.length);
    // SHARED changes as soon as the first clone is made, and LAST is about the map, not the
    // bytes: neither may change the name.
    mix(e.flags & ~(FIEMAP_EXTENT_SHARED | FIEMAP_EXTENT_LAST));
  }
  return fmt::format("{:016x}", h);
}

}  // namespace dupcache
