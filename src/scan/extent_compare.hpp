// SPDX-License-Identifier: GPL-2.0-only
#pragma once

// Whether two open files hold the same bytes in the same physical extents, from their FIEMAP
// maps alone: no file data is read. An extent whose place FIEMAP cannot state exactly (encoded,
// encrypted, delayed, inline, unwritten, unknown) never compares equal: precision first. Callers
// that need the maps of unflushed writes flush the range before asking.

#include <cstdint>
#include <string>
#include <vector>

#include "util/result.hpp"

namespace dupcache {

// A stretch of file bytes [lo, hi) and the physical address of its first byte; hole for bytes
// no extent holds.
struct extent_piece {
  std::uint64_t lo = 0, hi = 0;
  std::uint64_t physical = 0;
  bool hole = false;
  bool operator==(const extent_piece&) const = default;
};

// The file's bytes [lo, hi) as pieces, physically contiguous neighbours joined, so that two
// files cloned from one another compare equal however their filesystem split the extents.
// Fails on bytes that are not at a fixed place.
result<std::vector<extent_piece>> pieces_of(int fd, std::uint64_t lo, std::uint64_t hi);

// Whether bytes [offset, offset + length) of the two files (clipped to the shorter) are held by the
// same physical extents, none of them encoded, delayed, inline, unwritten or of unknown place.
// `why` says what differs.
bool same_extents(int a, int b, std::uint64_t offset, std::uint64_t length, std::string* why);

// A name for the content of the file at fd: its size and extent map, hashed. Files with the same
// name have the same blocks, so they can share one canonical copy.
result<std::string> content_name(int fd);

}  // namespace dupcache
