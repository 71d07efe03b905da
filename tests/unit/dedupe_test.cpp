// SPDX-License-Identifier: GPL-2.0-only
// The pure parts of dupcache dedupe: candidate grouping, the range plan (with the physical
// addresses FIEMAP gives), the page runs a pass must drop again, the rate limiter and --rate.

#include <gtest/gtest.h>

#include <random>
#include <tuple>

#include "policy/config.hpp"
#include "policy/dedupe_plan.hpp"

namespace dupcache::policy {
namespace {

constexpr std::uint64_t bs = 4096;

dedupe_member member(std::vector<std::uint64_t> hashes, std::vector<std::uint64_t> phys = {}) {
  dedupe_member m;
  m.size = hashes.size() * bs;
  m.hashes = std::move(hashes);
  m.physical = phys.empty() ? std::vector<std::uint64_t>(m.hashes.size(), no_physical) : std::move(phys);
  return m;
}

TEST(DedupeGroups, SameSizeFilesOfAtLeastOneBlock) {
  // Sizes: two of 8192, one 4096 alone, two of 100 (below a block), one of 0, a third 8192.
  const std::vector<std::uint64_t> sizes{8192, 4096, 100, 8192, 100, 0, 8192};
  const auto g = size_groups(sizes, bs);
  ASSERT_EQ(g.size(), 1u);
  EXPECT_EQ(g[0], (std::vector<std::size_t>{0, 3, 6}));
  EXPECT_TRUE(size_groups({4096, 8192}, bs).empty());
  EXPECT_EQ(size_groups({100, 100}, 1).size(), 1u);
}

TEST(DedupePlan, IdenticalCopiesFormOneRange) {
  const auto p = plan_dedupe({member({1, 2, 3, 4}), member({1, 2, 3, 4})}, bs);
  ASSERT_EQ(p.ranges.size(), 1u);
  EXPECT_EQ(p.ranges[0], (dedupe_range{0, 1, 0, 4 * bs}));
  EXPECT_EQ(p.already_shared_bytes, 0u);
}

TEST(DedupePlan, OneDifferingBlockSplitsTheRange) {
  const auto p = plan_dedupe({member({1, 2, 3, 4, 5}), member({1, 2, 9, 4, 5})}, bs);
  ASSERT_EQ(p.ranges.size(), 2u);
  EXPECT_EQ(p.ranges[0], (dedupe_range{0, 1, 0, 2 * bs}));
  EXPECT_EQ(p.ranges[1], (dedupe_range{0, 1, 3 * bs, 2 * bs}));
}

TEST(DedupePlan, EachBlockGoesToTheFirstHolder) {
  // c matches a in block 0 and only b in block 1: two ranges with different sources.
  const auto p = plan_dedupe({member({1, 2}), member({7, 8}), member({1, 8})}, bs);
  ASSERT_EQ(p.ranges.size(), 2u);
  EXPECT_EQ(p.ranges[0], (dedupe_range{0, 2, 0, bs}));
  EXPECT_EQ(p.ranges[1], (dedupe_range{1, 2, bs, bs}));
}

TEST(DedupePlan, BlocksAlreadyAtOneAddressAreLeftAndCounted) {
  const auto p = plan_dedupe(
      {member({1, 2, 3}, {100 * bs, 101 * bs, 102 * bs}), member({1, 2, 3}, {100 * bs, 500 * bs, no_physical})}, bs);
  ASSERT_EQ(p.ranges.size(), 1u);
  EXPECT_EQ(p.ranges[0], (dedupe_range{0, 1, bs, 2 * bs}));
  EXPECT_EQ(p.already_shared_bytes, bs);
  // Unknown addresses on both sides are not "the same address".
  const auto q = plan_dedupe({member({1}, {no_physical}), member({1}, {no_physical})}, bs);
  EXPECT_EQ(q.ranges.size(), 1u);
  EXPECT_EQ(q.already_shared_bytes, 0u);
}

TEST(DedupePlan, APartialLastBlockEndsAtTheFilesEnd) {
  auto a = member({1, 2});
  auto b = member({1, 2});
  a.size = b.size = bs + 100;
  const auto p = plan_dedupe({a, b}, bs);
  ASSERT_EQ(p.ranges.size(), 1u);
  EXPECT_EQ(p.ranges[0], (dedupe_range{0, 1, 0, bs + 100}));
}

TEST(DedupePlan, ForcedCollisionsOnlyProposeAndNothingElse) {
  // Every block hashes alike: the plan proposes; the kernel's byte comparison decides.
  const auto p = plan_dedupe({member({0, 0, 0}), member({0, 0, 0})}, bs);
  ASSERT_EQ(p.ranges.size(), 1u);
  EXPECT_EQ(p.ranges[0].length, 3 * bs);
  EXPECT_TRUE(plan_dedupe({member({1})}, bs).ranges.empty());
}

// The plan as first written: each block of each member from the first earlier member with the
// same hash, found by comparing with every earlier member (n^2/2 comparisons per block).
dedupe_plan reference_plan(const std::vector<dedupe_member>& members) {
  dedupe_plan plan;
  if (members.size() < 2) return plan;
  const std::uint64_t size = members.front().size, blocks = (size + bs - 1) / bs;
  auto bytes_of = [&](std::uint64_t b) { return std::min(bs, size - b * bs); };
  auto fits = [&](const dedupe_member& m) { return m.size == size && m.hashes.size() == blocks; };
  for (std::size_t d = 1; d < members.size(); ++d) {
    if (!fits(members[d])) continue;
    bool open = false;
    for (std::uint64_t b = 0; b < blocks; ++b) {
      std::size_t src = d;
      for (std::size_t s = 0; s < d; ++s) {
        if (fits(members[s]) && members[s].hashes[b] == members[d].hashes[b]) {
          src = s;
          break;
        }
      }
      bool share = src != d;
      if (share && members[d].physical[b] != no_physical && members[d].physical[b] == members[src].physical[b]) {
        plan.already_shared_bytes += bytes_of(b);
        share = false;
      }
      if (!share) {
        open = false;
        continue;
      }
      if (open && plan.ranges.back().src == src && plan.ranges.back().offset + plan.ranges.back().length == b * bs) {
        plan.ranges.back().length += bytes_of(b);
      } else {
        plan.ranges.push_back({src, d, b * bs, bytes_of(b)});
        open = true;
      }
    }
  }
  return plan;
}

TEST(DedupePlan, OneLookupPerBlockPlansAsComparingWithEveryEarlierMember) {
  std::mt19937_64 rng(17);
  for (int round = 0; round < 300; ++round) {
    const std::size_t n = 2 + rng() % 12, blocks = 1 + rng() % 6;
    const std::uint64_t hashes = 1 + rng() % 3;  // few values: many equal blocks
    std::vector<dedupe_member> members;
    for (std::size_t i = 0; i < n; ++i) {
      std::vector<std::uint64_t> h(blocks), p(blocks);
      for (std::size_t b = 0; b < blocks; ++b) {
        h[b] = rng() % hashes;
        p[b] = rng() % 4 == 0 ? no_physical : (rng() % 3) * 1000 + b;  // some blocks at one address
      }
      auto m = member(h, p);
      if (rng() % 10 == 0) m.hashes.pop_back();  // a member whose hashing fell short
      if (rng() % 10 == 0) m.size += bs;         // one of another size
      members.push_back(std::move(m));
    }
    const auto want = reference_plan(members), got = plan_dedupe(members, bs);
    ASSERT_EQ(got.already_shared_bytes, want.already_shared_bytes) << "round " << round;
    ASSERT_EQ(got.ranges.size(), want.ranges.size()) << "round " << round;
    for (std::size_t i = 0; i < want.ranges.size(); ++i) {
      const auto &g = got.ranges[i], &w = want.ranges[i];
      ASSERT_EQ(std::tie(g.src, g.dst, g.offset, g.length), std::tie(w.src, w.dst, w.offset, w.length))
          << "round " << round << " range " << i;
    }
  }
}

TEST(DedupeBlocks, AddressesFromPlacedRuns) {
  const auto a = block_addresses({{0, 2, 8192}, {3, 1, 40960}}, 5 * bs, bs);
  EXPECT_EQ(a, (std::vector<std::uint64_t>{8192, 8192 + bs, no_physical, 40960, no_physical}));
}

TEST(DedupeRuns, SubtractLeavesWhatWasNotCachedBefore) {
  using v = std::vector<page_run>;
  EXPECT_EQ(subtract_runs({{0, 10}}, {}), (v{{0, 10}}));
  EXPECT_EQ(subtract_runs({{0, 10}}, {{0, 10}}), v{});
  EXPECT_EQ(subtract_runs({{0, 10}}, {{2, 3}, {7, 1}}), (v{{0, 2}, {5, 2}, {8, 2}}));
  EXPECT_EQ(subtract_runs({{0, 4}, {10, 4}}, {{3, 8}}), (v{{0, 3}, {11, 3}}));
  EXPECT_EQ(subtract_runs({{5, 5}}, {{0, 20}}), v{});
}

TEST(DedupeRate, AverageHoldsAndTheFirstUseIsFree) {
  using namespace std::chrono;
  rate_limiter r(1000);  // 1000 bytes per second
  const auto t0 = rate_limiter::clock::time_point{} + seconds(100);
  EXPECT_EQ(r.take(500, t0), nanoseconds(0));
  EXPECT_EQ(r.take(500, t0), milliseconds(500));
  EXPECT_EQ(r.take(1, t0 + milliseconds(200)), milliseconds(800));
  // Idle time is not saved up into a burst.
  EXPECT_EQ(r.take(10, t0 + seconds(10)), nanoseconds(0));
  EXPECT_EQ(r.take(10, t0 + seconds(10)), milliseconds(10));
  rate_limiter none(0);
  EXPECT_EQ(none.take(~0ull, t0), nanoseconds(0));
  rate_limiter fast(40ull << 30);  // no overflow in the nanosecond arithmetic
  EXPECT_EQ(fast.take(40ull << 30, t0), nanoseconds(0));
  EXPECT_EQ(fast.take(1, t0), seconds(1));
}

TEST(DedupeRate, OptionTakesSuffixes) {
  EXPECT_EQ(parse_size("64M").value(), 64ull << 20);
  EXPECT_EQ(parse_size("1G").value(), 1ull << 30);
  EXPECT_EQ(parse_size("512K").value(), 512ull << 10);
  EXPECT_EQ(parse_size("100MiB").value(), 100ull << 20);
  EXPECT_EQ(parse_size("2000").value(), 2000u);
  EXPECT_FALSE(parse_size("fast"));
  EXPECT_FALSE(parse_size("10X"));
}

TEST(DedupeConfig, OffByDefaultAndNeedsPaths) {
  auto off = parse_config("", "t.toml");
  ASSERT_TRUE(off);
  EXPECT_FALSE(off->dedupe);
  auto on = parse_config("[dedupe]\nenabled = true\npaths = [\"/srv\"]\ninterval = \"10m\"\nrate_limit = \"8M\"\n", "t.toml");
  ASSERT_TRUE(on) << on.err().message();
  EXPECT_TRUE(on->dedupe);
  EXPECT_EQ(on->dedupe_paths, std::vector<std::string>{"/srv"});
  EXPECT_EQ(on->dedupe_interval, std::chrono::minutes(10));
  EXPECT_EQ(on->dedupe_rate_bytes_per_s, 8ull << 20);
  auto watch = parse_config("[watch]\npaths = [\"/w\"]\n[dedupe]\nenabled = true\n", "t.toml");
  ASSERT_TRUE(watch) << watch.err().message();
  auto none = parse_config("[dedupe]\nenabled = true\n", "t.toml");
  ASSERT_FALSE(none);
  EXPECT_NE(none.err().message().find("'enabled' needs 'paths'"), std::string::npos) << none.err().message();
  EXPECT_FALSE(parse_config("[dedupe]\nrate_limit = 0\n", "t.toml"));
  EXPECT_FALSE(parse_config("[dedupe]\nenable = true\n", "t.toml"));
}

}  // namespace
}  // namespace dupcache::policy
