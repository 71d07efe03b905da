// SPDX-License-Identifier: GPL-2.0-only
#pragma once

// The pure half of `dupcache dedupe` (policy/dedupe_pass.hpp does the I/O): which files may
// share content, which of their block ranges to hand FIDEDUPERANGE, and how fast to go. Nothing
// here touches a file, so all of it is unit-tested with made-up hashes, addresses and clocks.
//
// Candidates are files of one filesystem and one size, compared block by block at the same
// offset: what plain copies, copies of one image layer and near-identical versions of one file
// look like. Content moved to another offset is not looked for (a block index over every file
// would cost memory for the rare case). A hash match is only a candidate: the kernel compares
// the bytes under lock before it shares anything, so a collision costs one refused call.

#include <chrono>
#include <cstdint>
#include <string_view>
#include <vector>

#include "scan/residency.hpp"

namespace dupcache::policy {

inline constexpr std::uint64_t no_physical = ~std::uint64_t{0};

// One candidate file as the planner sees it: its size, the XXH3 hash of each block (the last
// may be partial), and each block's physical address where FIEMAP places it exactly
// (no_physical elsewhere).
struct dedupe_member {
  std::uint64_t size = 0;
  std::vector<std::uint64_t> hashes;
  std::vector<std::uint64_t> physical;
};

// A range to share: [offset, offset + length) of member dst becomes the extents of the same
// range of member src. length is whole blocks, except a range reaching the end of the files
// (which have one size) ends there, as FIDEDUPERANGE allows for the last block.
struct dedupe_range {
  std::size_t src = 0, dst = 0;  // indices into the members
  std::uint64_t offset = 0, length = 0;
  auto operator<=>(const dedupe_range&) const = default;
};

struct dedupe_plan {
  std::vector<dedupe_range> ranges;
  std::uint64_t already_shared_bytes = 0;  // equal blocks FIEMAP shows at one physical address
};

// Groups of indices into sizes (files of one filesystem) with one size and at least two
// members, each size at least min_size; files and groups keep the input's order.
std::vector<std::vector<std::size_t>> size_groups(const std::vector<std::uint64_t>& sizes, std::uint64_t min_size);

// The ranges to share among members of one size group: each block of a member is shared with
// the first earlier member holding the same hash at that offset, unless both already sit at one
// physical address; neighbouring blocks with the same source form one range.
dedupe_plan plan_dedupe(const std::vector<dedupe_member>& members, std::uint64_t block_size);

// Per-block physical addresses of a file of `size` bytes from its exactly placed runs
// (scan/fiemap's placed_runs with block_size as the unit).
struct placed_block_run {
  std::uint64_t first = 0, blocks = 0, physical = 0;
};
std::vector<std::uint64_t> block_addresses(const std::vector<placed_block_run>& runs, std::uint64_t size,
                                           std::uint64_t block_size);

// The parts of `after` (page runs, sorted) that lie outside every run of `before` (sorted): the
// pages a pass brought into the cache, which it must drop again.
std::vector<page_run> subtract_runs(const std::vector<page_run>& after, const std::vector<page_run>& before);

// A byte budget per second: take(n, now) says how long to wait before using n more bytes so
// that the average stays at the rate; the first use waits for nothing. 0 bytes/s: no limit.
class rate_limiter {
 public:
  using clock = std::chrono::steady_clock;
  explicit rate_limiter(std::uint64_t bytes_per_s) : rate_(bytes_per_s) {}
  std::chrono::nanoseconds take(std::uint64_t bytes, clock::time_point now);
  std::uint64_t rate() const { return rate_; }

 private:
  std::uint64_t rate_;
  clock::time_point next_{};
  bool started_ = false;
};

}  // namespace dupcache::policy
