// SPDX-License-Identifier: GPL-2.0-only
// The physical-block index: segment bookkeeping, exact totals, groups and the waste split.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <set>
#include <vector>

#include "index/block_index.hpp"

namespace dupcache {
namespace {

constexpr std::uint64_t P = 4096;  // page size used throughout

copy_share share_of(const std::unordered_map<copy_id, copy_share>& m, copy_id id) {
  auto it = m.find(id);
  return it == m.end() ? copy_share{} : it->second;
}

std::uint64_t sum_wasted(const std::unordered_map<copy_id, copy_share>& m) {
  std::uint64_t n = 0;
  for (const auto& [id, s] : m) n += s.wasted_bytes;
  return n;
}

TEST(BlockIndex, EmptyIndexHasNothing) {
  block_index i(P);
  EXPECT_EQ(i.page_size(), P);
  EXPECT_EQ(i.indexed_bytes(), 0u);
  EXPECT_EQ(i.unique_bytes(), 0u);
  EXPECT_EQ(i.wasted_bytes(), 0u);
  EXPECT_EQ(i.segment_count(), 0u);
  EXPECT_TRUE(i.groups().empty());
  EXPECT_TRUE(i.split_waste().empty());
}

TEST(BlockIndex, InternIsIdempotentAndKeyedOnAllThreeFields) {
  block_index i(P);
  const copy_id a = i.intern_copy({"fs", 0, 1});
  const copy_id b = i.intern_copy({"fs", 5, 1});  // same inode number, another subvolume
  const copy_id c = i.intern_copy({"fs2", 0, 1});
  EXPECT_EQ(i.intern_copy({"fs", 0, 1}), a);
  EXPECT_NE(a, b);
  EXPECT_NE(a, c);
  EXPECT_NE(b, c);
  EXPECT_EQ(i.copy_count(), 3u);
  EXPECT_EQ(i.key_of(b), (copy_key{"fs", 5, 1}));

  const domain_id d1 = i.intern_domain("uuid-1");
  const domain_id d2 = i.intern_domain("uuid-2");
  EXPECT_NE(d1, d2);
  EXPECT_EQ(i.intern_domain("uuid-1"), d1);
  EXPECT_EQ(i.domain_name(d2), "uuid-2");
}

// The copy table is open-addressed and grows at half full: ids stay the order of first
// interning across every growth, each key finds its own id again, and keys never interned
// (including ones differing from an interned key in one field) are not found.
TEST(BlockIndex, CopyIdsSurviveTableGrowth) {
  block_index i(P);
  const char* fss[] = {"btrfs:a", "btrfs:b", "xfs:c"};
  std::vector<copy_key> keys;
  for (std::uint64_t n = 0; n < 50000; ++n) keys.push_back({fss[n % 3], n % 7, 256 + n / 3});
  for (std::size_t n = 0; n < keys.size(); ++n) ASSERT_EQ(i.intern_copy(keys[n]), n);
  EXPECT_EQ(i.copy_count(), keys.size());
  for (std::size_t n = 0; n < keys.size(); ++n) {
    ASSERT_EQ(i.intern_copy(keys[n]), n);
    ASSERT_EQ(i.find_copy(keys[n]), std::optional<copy_id>(static_cast<copy_id>(n)));
    ASSERT_EQ(i.key_of(static_cast<copy_id>(n)), keys[n]);
  }
  EXPECT_EQ(i.copy_count(), keys.size());
  EXPECT_EQ(i.find_copy({"btrfs:a", 1, 256}), std::nullopt);  // (n % 7, n / 3) never met this way
  EXPECT_EQ(i.find_copy({"btrfs:z", 0, 256}), std::nullopt);
  EXPECT_EQ(block_index(P).find_copy({"btrfs:a", 0, 256}), std::nullopt);
}

// The report's model takes the keys out of an index that is done with (issue 17): every key,
// by id, and nothing left behind.
TEST(BlockIndex, TakeKeysHandsOverEveryKeyByIdAndEmptiesTheIndex) {
  block_index idx(P);
  const copy_key a{"fsA", 5, 300}, b{"fsB", 0, 7}, c{"fsA", 256, 300};
  ASSERT_EQ(idx.intern_copy(a), 0u);
  ASSERT_EQ(idx.intern_copy(b), 1u);
  ASSERT_EQ(idx.intern_copy(c), 2u);
  const domain_id d = idx.intern_domain("fsA");
  idx.add(0, d, 0, 2 * P);
  idx.add(2, d, P, 2 * P);
  ASSERT_EQ(idx.wasted_bytes(), P);
  const auto keys = std::move(idx).take_keys();
  EXPECT_EQ(std::vector<copy_key>(keys.begin(), keys.end()), (std::vector<copy_key>{a, b, c}));
  EXPECT_EQ(idx.copy_count(), 0u);  // NOLINT(bugprone-use-after-move): what the move leaves
  EXPECT_EQ(idx.wasted_bytes(), 0u);
  EXPECT_EQ(idx.segment_count(), 0u);
  EXPECT_FALSE(idx.find_copy(a));
  EXPECT_EQ(idx.page_size(), P);
}

TEST(BlockIndex, SingleRange) {
  block_index i(P);
  const copy_id a = i.intern_copy({"fs", 0, 1});
  const domain_id d = i.intern_domain("fs");
  i.add(a, d, 8 * P, 4 * P);
  EXPECT_EQ(i.indexed_bytes(), 4 * P);
  EXPECT_EQ(i.unique_bytes(), 4 * P);
  EXPECT_EQ(i.wasted_bytes(), 0u);
  EXPECT_EQ(i.segment_count(), 1u);
  EXPECT_TRUE(i.groups().empty());
  EXPECT_EQ(i.covered_bytes(d, 0, 100 * P), 4 * P);
  EXPECT_EQ(i.covered_bytes(d, 9 * P, 2 * P), 2 * P);
  EXPECT_EQ(i.covered_bytes(d, 0, 8 * P), 0u);   // ends right where the range starts
  EXPECT_EQ(i.covered_bytes(d, 12 * P, P), 0u);  // starts right where it ends
}

TEST(BlockIndex, ZeroLengthAddIsNoOp) {
  block_index i(P);
  const copy_id a = i.intern_copy({"fs", 0, 1});
  const domain_id d = i.intern_domain("fs");
  i.add(a, d, 4 * P, 0);
  EXPECT_EQ(i.indexed_bytes(), 0u);
  EXPECT_EQ(i.segment_count(), 0u);
}

TEST(BlockIndex, PartialOverlapSplitsIntoThreeSegments) {
  block_index i(P);
  const copy_id a = i.intern_copy({"fs", 0, 1});
  const copy_id b = i.intern_copy({"fs", 0, 2});
  const domain_id d = i.intern_domain("fs");
  i.add(a, d, 0, 4 * P);      // a: pages 0..3
  i.add(b, d, 2 * P, 4 * P);  // b: pages 2..5
  // Segments: [0,2){a} [2,4){a,b} [4,6){b}.
  EXPECT_EQ(i.segment_count(), 3u);
  EXPECT_EQ(i.indexed_bytes(), 8 * P);  // 4 + 4
  EXPECT_EQ(i.unique_bytes(), 6 * P);   // pages 0..5
  EXPECT_EQ(i.wasted_bytes(), 2 * P);   // pages 2, 3 cached twice
  EXPECT_EQ(i.covered_bytes(d, 0, 6 * P, 1), 6 * P);
  EXPECT_EQ(i.covered_bytes(d, 0, 6 * P, 2), 2 * P);
  EXPECT_EQ(i.covered_bytes(d, 0, 6 * P, 3), 0u);
  // [1,3) meets {a} on page 1 and {a,b} on page 2.
  EXPECT_EQ(i.covered_bytes(d, P, 2 * P, 1), 2 * P);
  EXPECT_EQ(i.covered_bytes(d, P, 2 * P, 2), P);
  // A range starting inside the first segment.
  EXPECT_EQ(i.covered_bytes(d, P, P, 1), P);

  auto g = i.groups();
  ASSERT_EQ(g.size(), 1u);
  EXPECT_EQ(g[0].copies, (std::vector<copy_id>{a, b}));
  EXPECT_EQ(g[0].bytes, 2 * P);
  EXPECT_EQ(g[0].wasted_bytes(), 2 * P);
}

TEST(BlockIndex, InnerRangeSplitsAndRemovalCoalescesBack) {
  block_index i(P);
  const copy_id a = i.intern_copy({"fs", 0, 1});
  const copy_id b = i.intern_copy({"fs", 0, 2});
  const domain_id d = i.intern_domain("fs");
  i.add(a, d, 0, 8 * P);
  i.add(b, d, 2 * P, P);  // [0,2){a} [2,3){a,b} [3,8){a}
  EXPECT_EQ(i.segment_count(), 3u);
  EXPECT_EQ(i.wasted_bytes(), P);
  i.remove(b, d, 2 * P, P);
  EXPECT_EQ(i.segment_count(), 1u);  // {a} on both sides again: one segment
  EXPECT_EQ(i.indexed_bytes(), 8 * P);
  EXPECT_EQ(i.unique_bytes(), 8 * P);
  EXPECT_EQ(i.wasted_bytes(), 0u);
}

TEST(BlockIndex, AdjacentRangesOfOneCopyCoalesce) {
  block_index i(P);
  const copy_id a = i.intern_copy({"fs", 0, 1});
  const copy_id b = i.intern_copy({"fs", 0, 2});
  const domain_id d = i.intern_domain("fs");
  i.add(a, d, 0, 2 * P);
  i.add(a, d, 2 * P, 2 * P);  // continues [0,2)
  EXPECT_EQ(i.segment_count(), 1u);
  i.add(a, d, 6 * P, 2 * P);  // a gap at pages 4, 5
  EXPECT_EQ(i.segment_count(), 2u);
  i.add(a, d, 4 * P, 2 * P);  // fills the gap: [0,8) is one segment
  EXPECT_EQ(i.segment_count(), 1u);
  EXPECT_EQ(i.covered_bytes(d, 0, 8 * P), 8 * P);
  i.add(b, d, 8 * P, 2 * P);  // adjacent but another copy set: no merge
  EXPECT_EQ(i.segment_count(), 2u);
  // Adding a range ending where another begins, front side.
  i.add(b, d, 20 * P, P);
  i.add(b, d, 19 * P, P);
  EXPECT_EQ(i.segment_count(), 3u);
  EXPECT_EQ(i.indexed_bytes(), 12 * P);  // a: 8, b: 2 + 2
  EXPECT_EQ(i.wasted_bytes(), 0u);
}

TEST(BlockIndex, SameCopyOverlappingTwiceCountsOnce) {
  block_index i(P);
  const copy_id a = i.intern_copy({"fs", 0, 1});
  const domain_id d = i.intern_domain("fs");
  i.add(a, d, 0, 4 * P);
  i.add(a, d, 2 * P, 4 * P);  // pages 2, 3 again
  EXPECT_EQ(i.indexed_bytes(), 6 * P);
  EXPECT_EQ(i.unique_bytes(), 6 * P);
  EXPECT_EQ(i.wasted_bytes(), 0u);
  EXPECT_EQ(i.segment_count(), 1u);
  i.add(a, d, 0, 6 * P);  // everything again
  EXPECT_EQ(i.indexed_bytes(), 6 * P);
  EXPECT_EQ(i.wasted_bytes(), 0u);
  EXPECT_TRUE(i.groups().empty());
  EXPECT_EQ(share_of(i.split_waste(), a).wasted_bytes, 0u);
}

TEST(BlockIndex, RemovingTheMiddleOfASharedRange) {
  block_index i(P);
  const copy_id a = i.intern_copy({"fs", 0, 1});
  const copy_id b = i.intern_copy({"fs", 0, 2});
  const domain_id d = i.intern_domain("fs");
  i.add(a, d, 0, 10 * P);
  i.add(b, d, 0, 10 * P);
  EXPECT_EQ(i.segment_count(), 1u);
  i.remove(a, d, 3 * P, 2 * P);
  // [0,3){a,b} [3,5){b} [5,10){a,b}
  EXPECT_EQ(i.segment_count(), 3u);
  EXPECT_EQ(i.indexed_bytes(), 18 * P);  // a 8 + b 10
  EXPECT_EQ(i.unique_bytes(), 10 * P);
  EXPECT_EQ(i.wasted_bytes(), 8 * P);
  EXPECT_EQ(i.covered_bytes(d, 0, 10 * P, 2), 8 * P);
  EXPECT_EQ(i.covered_bytes(d, 3 * P, 2 * P, 2), 0u);
  auto g = i.groups();
  ASSERT_EQ(g.size(), 1u);  // both {a,b} segments are one group
  EXPECT_EQ(g[0].bytes, 8 * P);

  i.remove(b, d, 3 * P, 2 * P);  // now a hole
  EXPECT_EQ(i.segment_count(), 2u);
  EXPECT_EQ(i.unique_bytes(), 8 * P);
  EXPECT_EQ(i.covered_bytes(d, 0, 10 * P, 1), 8 * P);
  i.remove(a, d, 0, 10 * P);
  i.remove(b, d, 0, 10 * P);
  EXPECT_EQ(i.segment_count(), 0u);
  EXPECT_EQ(i.indexed_bytes(), 0u);
  EXPECT_EQ(i.unique_bytes(), 0u);
}

TEST(BlockIndex, RemovingRangesNeverAddedIsNoOp) {
  block_index i(P);
  const copy_id a = i.intern_copy({"fs", 0, 1});
  const copy_id b = i.intern_copy({"fs", 0, 2});
  const domain_id d = i.intern_domain("fs");
  const domain_id other = i.intern_domain("other");
  i.add(a, d, 4 * P, 4 * P);
  i.remove(b, d, 5 * P, 2 * P);   // b never cached anything: must not split a's segment
  i.remove(a, d, 0, 4 * P);       // just before a's range
  i.remove(a, d, 8 * P, 4 * P);   // just after it
  i.remove(a, d, 100 * P, P);     // far away
  i.remove(a, other, 4 * P, 4 * P);  // the same addresses in another domain
  i.remove(a, d, 6 * P, 0);       // empty
  EXPECT_EQ(i.segment_count(), 1u);
  EXPECT_EQ(i.indexed_bytes(), 4 * P);
  EXPECT_EQ(i.unique_bytes(), 4 * P);
  EXPECT_EQ(i.covered_bytes(d, 0, 100 * P), 4 * P);
}

TEST(BlockIndex, RemovalAcrossAGapKeepsTotalsExact) {
  block_index i(P);
  const copy_id a = i.intern_copy({"fs", 0, 1});
  const domain_id d = i.intern_domain("fs");
  i.add(a, d, 0, 2 * P);
  i.add(a, d, 6 * P, 2 * P);
  i.remove(a, d, P, 6 * P);  // [1,7) spans a gap at [2,6)
  EXPECT_EQ(i.indexed_bytes(), 2 * P);  // pages 0 and 7 stay
  EXPECT_EQ(i.segment_count(), 2u);
  EXPECT_EQ(i.covered_bytes(d, 0, P), P);
  EXPECT_EQ(i.covered_bytes(d, 7 * P, P), P);
}

TEST(BlockIndex, SeparateDomainsNeverShare) {
  block_index i(P);
  const copy_id a = i.intern_copy({"fs", 0, 1});
  const copy_id b = i.intern_copy({"fs", 0, 2});
  const domain_id d1 = i.intern_domain("data");
  const domain_id d2 = i.intern_domain("rt");
  i.add(a, d1, 0, 4 * P);
  i.add(b, d2, 0, 4 * P);  // same addresses, other device
  EXPECT_EQ(i.indexed_bytes(), 8 * P);
  EXPECT_EQ(i.unique_bytes(), 8 * P);
  EXPECT_EQ(i.wasted_bytes(), 0u);
  EXPECT_EQ(i.segment_count(), 2u);
  EXPECT_TRUE(i.groups().empty());
  EXPECT_EQ(i.covered_bytes(d1, 0, 4 * P, 2), 0u);
  EXPECT_EQ(i.covered_bytes(d2, 0, 4 * P, 1), 4 * P);
  EXPECT_EQ(i.covered_bytes(99, 0, 4 * P, 1), 0u);  // unknown domain
}

TEST(BlockIndex, GroupsOrderAndCopyOrder) {
  block_index i(P);
  // Interned out of copy_key order on purpose. copy_key order (fs, subvol, ino):
  //   d("a",2,100) < a("a",5,9) < b("a",5,10) < c("b",0,1)
  const copy_id c = i.intern_copy({"b", 0, 1});
  const copy_id a = i.intern_copy({"a", 5, 9});
  const copy_id b = i.intern_copy({"a", 5, 10});
  const copy_id d = i.intern_copy({"a", 2, 100});
  const domain_id dom = i.intern_domain("x");
  // G1 {c,a}: 10 pages, waste 10.  G2 {a,b,d}: 6 pages, waste 12.  G3 {b,c}: 3 pages, waste 3.
  i.add(c, dom, 0, 10 * P);
  i.add(a, dom, 0, 10 * P);
  i.add(a, dom, 20 * P, 6 * P);
  i.add(b, dom, 20 * P, 6 * P);
  i.add(d, dom, 20 * P, 6 * P);
  i.add(b, dom, 40 * P, 3 * P);
  i.add(c, dom, 40 * P, 3 * P);
  EXPECT_EQ(i.wasted_bytes(), 25 * P);

  auto g = i.groups();
  ASSERT_EQ(g.size(), 3u);
  EXPECT_EQ(g[0].copies, (std::vector<copy_id>{d, a, b}));
  EXPECT_EQ(g[0].bytes, 6 * P);
  EXPECT_EQ(g[0].wasted_bytes(), 12 * P);
  EXPECT_EQ(g[1].copies, (std::vector<copy_id>{a, c}));
  EXPECT_EQ(g[1].bytes, 10 * P);
  EXPECT_EQ(g[1].wasted_bytes(), 10 * P);
  EXPECT_EQ(g[2].copies, (std::vector<copy_id>{b, c}));
  EXPECT_EQ(g[2].bytes, 3 * P);
  EXPECT_EQ(g[2].wasted_bytes(), 3 * P);
}

TEST(BlockIndex, GroupsWithEqualWasteLargerBytesFirst) {
  block_index i(P);
  const copy_id x = i.intern_copy({"fs", 0, 1});
  const copy_id y = i.intern_copy({"fs", 0, 2});
  const copy_id z = i.intern_copy({"fs", 0, 3});
  const domain_id dom = i.intern_domain("fs");
  // {x,y,z} over 2 pages: waste 4 pages.  {x,y} over 4 pages: waste 4 pages, more bytes.
  for (copy_id c : {x, y, z}) i.add(c, dom, 0, 2 * P);
  for (copy_id c : {x, y}) i.add(c, dom, 10 * P, 4 * P);
  auto g = i.groups();
  ASSERT_EQ(g.size(), 2u);
  EXPECT_EQ(g[0].copies, (std::vector<copy_id>{x, y}));
  EXPECT_EQ(g[0].bytes, 4 * P);
  EXPECT_EQ(g[1].copies, (std::vector<copy_id>{x, y, z}));
  EXPECT_EQ(g[1].bytes, 2 * P);
}

TEST(BlockIndex, GroupsAddUpAcrossDomains) {
  block_index i(P);
  const copy_id x = i.intern_copy({"fs", 0, 1});
  const copy_id y = i.intern_copy({"fs", 0, 2});
  const domain_id d1 = i.intern_domain("data");
  const domain_id d2 = i.intern_domain("rt");
  i.add(x, d1, 0, 2 * P);
  i.add(y, d1, 0, 2 * P);
  i.add(x, d2, 8 * P, 3 * P);
  i.add(y, d2, 8 * P, 3 * P);
  auto g = i.groups();
  ASSERT_EQ(g.size(), 1u);
  EXPECT_EQ(g[0].bytes, 5 * P);
  EXPECT_EQ(i.wasted_bytes(), 5 * P);
}

TEST(BlockIndex, SplitWasteThreeCopiesOnePage) {
  block_index i(P);
  // copy_key order: c1 (ino 10) < c2 (ino 20) < c0 (ino 30); ids are not in that order.
  const copy_id c0 = i.intern_copy({"fs", 0, 30});
  const copy_id c1 = i.intern_copy({"fs", 0, 10});
  const copy_id c2 = i.intern_copy({"fs", 0, 20});
  const domain_id d = i.intern_domain("fs");
  for (copy_id c : {c0, c1, c2}) i.add(c, d, 7 * P, P);
  // waste (3-1)*1 = 2 pages; floor(2/3) = 0 each, 2 left over go to c1 then c2.
  const auto s = i.split_waste();
  EXPECT_EQ(share_of(s, c1).wasted_bytes, P);
  EXPECT_EQ(share_of(s, c2).wasted_bytes, P);
  EXPECT_EQ(share_of(s, c0).wasted_bytes, 0u);
  for (copy_id c : {c0, c1, c2}) EXPECT_EQ(share_of(s, c).shared_bytes, P);
  EXPECT_EQ(sum_wasted(s), i.wasted_bytes());
  EXPECT_EQ(i.wasted_bytes(), 2 * P);
}

TEST(BlockIndex, SplitWasteThreeCopiesTwoPages) {
  block_index i(P);
  const copy_id c0 = i.intern_copy({"fs", 0, 30});
  const copy_id c1 = i.intern_copy({"fs", 0, 10});
  const copy_id c2 = i.intern_copy({"fs", 0, 20});
  const domain_id d = i.intern_domain("fs");
  for (copy_id c : {c2, c0, c1}) i.add(c, d, 0, 2 * P);
  // waste (3-1)*2 = 4 pages; floor(4/3) = 1 each, 1 left over goes to c1.
  const auto s = i.split_waste();
  EXPECT_EQ(share_of(s, c1).wasted_bytes, 2 * P);
  EXPECT_EQ(share_of(s, c2).wasted_bytes, P);
  EXPECT_EQ(share_of(s, c0).wasted_bytes, P);
  for (copy_id c : {c0, c1, c2}) EXPECT_EQ(share_of(s, c).shared_bytes, 2 * P);
  EXPECT_EQ(sum_wasted(s), 4 * P);
}

TEST(BlockIndex, SplitWasteFourCopiesAndTwoCopies) {
  block_index i(P);
  const copy_id w = i.intern_copy({"fs", 1, 4});
  const copy_id x = i.intern_copy({"fs", 1, 3});
  const copy_id y = i.intern_copy({"fs", 0, 9});
  const copy_id z = i.intern_copy({"fs", 1, 1});
  const domain_id d = i.intern_domain("fs");
  // Key order: y(0,9) < z(1,1) < x(1,3) < w(1,4).
  // {w,x,y,z} share 1 page: waste 3 pages, floor(3/4) = 0, 3 left over: y, z, x get one each.
  for (copy_id c : {w, x, y, z}) i.add(c, d, 0, P);
  // {w,x} share 3 more pages: waste 3 pages, floor(3/2) = 1, 1 left over: x (before w).
  for (copy_id c : {w, x}) i.add(c, d, 10 * P, 3 * P);
  const auto s = i.split_waste();
  EXPECT_EQ(share_of(s, y).wasted_bytes, P);
  EXPECT_EQ(share_of(s, z).wasted_bytes, P);
  EXPECT_EQ(share_of(s, x).wasted_bytes, P + 2 * P);
  EXPECT_EQ(share_of(s, w).wasted_bytes, 0 + P);
  EXPECT_EQ(share_of(s, w).shared_bytes, 4 * P);
  EXPECT_EQ(share_of(s, x).shared_bytes, 4 * P);
  EXPECT_EQ(share_of(s, y).shared_bytes, P);
  EXPECT_EQ(i.wasted_bytes(), 6 * P);
  EXPECT_EQ(sum_wasted(s), 6 * P);
}

// split_waste_by_id(): the same parts from the groups the caller already has, as a vector
// sorted by id with each copy once (the report's model keeps it: issue 17). The case of
// SplitWasteFourCopiesAndTwoCopies plus a lone copy and a third group {v, y}.
TEST(BlockIndex, SplitWasteByIdIsSortedAndExact) {
  block_index i(P);
  const copy_id w = i.intern_copy({"fs", 1, 4});   // 0
  const copy_id x = i.intern_copy({"fs", 1, 3});   // 1
  const copy_id lone = i.intern_copy({"fs", 0, 5});  // 2
  const copy_id y = i.intern_copy({"fs", 0, 9});   // 3
  const copy_id z = i.intern_copy({"fs", 1, 1});   // 4
  const copy_id v = i.intern_copy({"fs", 0, 2});   // 5
  const domain_id d = i.intern_domain("fs");
  for (copy_id c : {w, x, y, z}) i.add(c, d, 0, P);       // waste 3 pages: y, z, x one each
  for (copy_id c : {w, x}) i.add(c, d, 10 * P, 3 * P);    // waste 3 pages: x 2, w 1
  i.add(lone, d, 100 * P, 8 * P);
  for (copy_id c : {y, v}) i.add(c, d, 50 * P, 5 * P);    // waste 5 pages: v (ino 2) 3, y 2
  const auto groups = i.groups();
  ASSERT_EQ(groups.size(), 3u);
  const auto s = block_index::split_waste_by_id(groups, P);
  ASSERT_EQ(s.size(), 5u);
  EXPECT_EQ(s.capacity(), 5u);  // allocated once, at its size
  const std::vector<copy_id> ids = {s[0].first, s[1].first, s[2].first, s[3].first, s[4].first};
  EXPECT_EQ(ids, (std::vector<copy_id>{0, 1, 3, 4, 5}));
  // {id, shared, wasted}, in pages.
  const std::uint64_t want[5][3] = {{0, 4, 1}, {1, 4, 3}, {3, 6, 3}, {4, 1, 1}, {5, 5, 3}};
  for (std::size_t k = 0; k < 5; ++k) {
    EXPECT_EQ(s[k].first, want[k][0]) << k;
    EXPECT_EQ(s[k].second.shared_bytes, want[k][1] * P) << k;
    EXPECT_EQ(s[k].second.wasted_bytes, want[k][2] * P) << k;
  }
  EXPECT_EQ(i.wasted_bytes(), 11 * P);
  // The map gives the same parts.
  const auto m = i.split_waste();
  ASSERT_EQ(m.size(), 5u);
  for (const auto& [c, sh] : s) {
    EXPECT_EQ(share_of(m, c).shared_bytes, sh.shared_bytes) << c;
    EXPECT_EQ(share_of(m, c).wasted_bytes, sh.wasted_bytes) << c;
  }
  EXPECT_TRUE(block_index::split_waste_by_id({}, P).empty());
}

TEST(BlockIndex, SplitWasteIgnoresUnsharedCopies) {
  block_index i(P);
  const copy_id a = i.intern_copy({"fs", 0, 1});
  const copy_id b = i.intern_copy({"fs", 0, 2});
  const copy_id lone = i.intern_copy({"fs", 0, 3});
  const domain_id d = i.intern_domain("fs");
  i.add(a, d, 0, 4 * P);
  i.add(b, d, 2 * P, 4 * P);
  i.add(lone, d, 100 * P, 8 * P);
  const auto s = i.split_waste();
  EXPECT_EQ(share_of(s, lone).shared_bytes, 0u);
  EXPECT_EQ(share_of(s, lone).wasted_bytes, 0u);
  // 2 shared pages, waste 2 pages split 1/1.
  EXPECT_EQ(share_of(s, a).shared_bytes, 2 * P);
  EXPECT_EQ(share_of(s, b).shared_bytes, 2 * P);
  EXPECT_EQ(share_of(s, a).wasted_bytes, P);
  EXPECT_EQ(share_of(s, b).wasted_bytes, P);
}

// ---- Randomized comparison against a page-by-page model ----------------------------------

struct page_model {
  std::map<std::pair<domain_id, std::uint64_t>, std::set<copy_id>> pages;

  void add(copy_id c, domain_id d, std::uint64_t first, std::uint64_t n) {
    for (std::uint64_t p = first; p < first + n; ++p) pages[{d, p}].insert(c);
  }
  void remove(copy_id c, domain_id d, std::uint64_t first, std::uint64_t n) {
    for (std::uint64_t p = first; p < first + n; ++p) {
      auto it = pages.find({d, p});
      if (it == pages.end()) continue;
      it->second.erase(c);
      if (it->second.empty()) pages.erase(it);
    }
  }
  std::uint64_t indexed_pages() const {
    std::uint64_t n = 0;
    for (const auto& [k, s] : pages) n += s.size();
    return n;
  }
  // Maximal runs of consecutive pages with equal copy sets: the fewest segments possible.
  std::size_t runs() const {
    std::size_t n = 0;
    const std::pair<domain_id, std::uint64_t>* prev_key = nullptr;
    const std::set<copy_id>* prev_set = nullptr;
    for (const auto& [k, s] : pages) {
      const bool cont = prev_key && prev_key->first == k.first && prev_key->second + 1 == k.second &&
                        *prev_set == s;
      if (!cont) ++n;
      prev_key = &k;
      prev_set = &s;
    }
    return n;
  }
  std::uint64_t covered_pages(domain_id d, std::uint64_t first, std::uint64_t n, std::size_t min) const {
    std::uint64_t c = 0;
    for (std::uint64_t p = first; p < first + n; ++p) {
      auto it = pages.find({d, p});
      if (it != pages.end() && it->second.size() >= min) ++c;
    }
    return c;
  }
  std::map<std::set<copy_id>, std::uint64_t> group_pages() const {
    std::map<std::set<copy_id>, std::uint64_t> g;
    for (const auto& [k, s] : pages) {
      if (s.size() >= 2) ++g[s];
    }
    return g;
  }
};

TEST(BlockIndex, RandomOperationsMatchPageModel) {
  block_index idx(P);
  page_model model;
  // Five copies whose ids are not in copy_key order.
  const std::vector<copy_key> keys = {
      {"fs1", 0, 50}, {"fs0", 0, 10}, {"fs1", 0, 40}, {"fs0", 7, 20}, {"fs0", 7, 3}};
  std::vector<copy_id> ids;
  for (const auto& k : keys) ids.push_back(idx.intern_copy(k));
  const domain_id doms[2] = {idx.intern_domain("d0"), idx.intern_domain("d1")};
  auto key_less = [&](copy_id a, copy_id b) { return keys[a] < keys[b]; };

  std::uint64_t state = 0x2545F4914F6CDD1DULL;  // xorshift64: same sequence on every platform
  auto rnd = [&](std::uint64_t n) {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state % n;
  };

  for (int op = 0; op < 3000; ++op) {
    const copy_id c = ids[rnd(ids.size())];
    const domain_id d = doms[rnd(2)];
    const std::uint64_t first = rnd(64);
    const std::uint64_t n = (rnd(10) == 0) ? rnd(64) : 1 + rnd(12);  // sometimes long, sometimes 0
    const bool add = rnd(10) < 6;
    if (add) {
      idx.add(c, d, first * P, n * P);
      model.add(c, d, first, n);
    } else {
      idx.remove(c, d, first * P, n * P);
      model.remove(c, d, first, n);
    }
    SCOPED_TRACE(::testing::Message() << "op " << op << (add ? " add" : " remove") << " copy " << c
                                      << " domain " << d << " pages [" << first << "," << first + n << ")");

    const std::uint64_t indexed = model.indexed_pages() * P;
    const std::uint64_t unique = model.pages.size() * P;
    ASSERT_EQ(idx.indexed_bytes(), indexed);
    ASSERT_EQ(idx.unique_bytes(), unique);
    ASSERT_EQ(idx.wasted_bytes(), indexed - unique);
    ASSERT_EQ(idx.segment_count(), model.runs());

    // Groups: same sets, same sizes; copies in key order; largest waste first.
    const auto groups = idx.groups();
    {
      // And the very order of the groups as a map keyed by the segments' sets gave it (what
      // groups() did before it sorted pointers to the sets instead), ties included: the
      // report's group rows must not move.
      std::map<std::vector<copy_id>, std::uint64_t> by_set;
      idx.for_each_shared([&](domain_id, std::uint64_t s, std::uint64_t e, const std::vector<copy_id>& cs) {
        by_set[cs] += e - s;
      });
      std::vector<copy_group> ref;
      for (auto& [cs, bytes] : by_set) {
        copy_group g{cs, bytes};
        std::sort(g.copies.begin(), g.copies.end(), key_less);
        ref.push_back(std::move(g));
      }
      std::sort(ref.begin(), ref.end(), [&](const copy_group& a, const copy_group& b) {
        if (auto c = b.wasted_bytes() <=> a.wasted_bytes(); c != 0) return c < 0;
        if (auto c = b.bytes <=> a.bytes; c != 0) return c < 0;
        return key_less(a.copies.front(), b.copies.front());
      });
      ASSERT_EQ(groups.size(), ref.size());
      for (std::size_t k = 0; k < ref.size(); ++k) {
        ASSERT_EQ(groups[k].copies, ref[k].copies) << "group " << k;
        ASSERT_EQ(groups[k].bytes, ref[k].bytes) << "group " << k;
      }
    }
    const auto mg = model.group_pages();
    std::map<std::set<copy_id>, std::uint64_t> got;
    std::uint64_t group_waste = 0;
    for (std::size_t k = 0; k < groups.size(); ++k) {
      const auto& g = groups[k];
      ASSERT_TRUE(std::is_sorted(g.copies.begin(), g.copies.end(), key_less));
      if (k > 0) {
        ASSERT_GE(groups[k - 1].wasted_bytes(), g.wasted_bytes());
        if (groups[k - 1].wasted_bytes() == g.wasted_bytes()) {
          ASSERT_GE(groups[k - 1].bytes, g.bytes);
        }
      }
      got[std::set<copy_id>(g.copies.begin(), g.copies.end())] += g.bytes;
      group_waste += g.wasted_bytes();
    }
    ASSERT_EQ(got.size(), groups.size());  // no set listed twice
    std::map<std::set<copy_id>, std::uint64_t> want;
    for (const auto& [s, pages] : mg) want[s] = pages * P;
    ASSERT_EQ(got, want);
    ASSERT_EQ(group_waste, idx.wasted_bytes());

    // Waste split, computed from the model's groups with the documented rule.
    std::map<copy_id, copy_share> expect;
    for (const auto& [s, pages] : mg) {
      std::vector<copy_id> order(s.begin(), s.end());
      std::sort(order.begin(), order.end(), key_less);
      const std::uint64_t k = order.size();
      const std::uint64_t waste = (k - 1) * pages;
      for (std::uint64_t r = 0; r < k; ++r) {
        expect[order[r]].shared_bytes += pages * P;
        expect[order[r]].wasted_bytes += (waste / k + (r < waste % k ? 1 : 0)) * P;
      }
    }
    const auto split = idx.split_waste();
    ASSERT_EQ(sum_wasted(split), idx.wasted_bytes());
    for (copy_id id : ids) {
      ASSERT_EQ(share_of(split, id).shared_bytes, expect[id].shared_bytes) << "copy " << id;
      ASSERT_EQ(share_of(split, id).wasted_bytes, expect[id].wasted_bytes) << "copy " << id;
    }

    // A random window with a random threshold.
    const std::uint64_t wf = rnd(70), wn = rnd(30);
    const std::size_t min = 1 + rnd(3);
    ASSERT_EQ(idx.covered_bytes(d, wf * P, wn * P, min), model.covered_pages(d, wf, wn, min) * P)
        << "covered [" << wf << "," << wf + wn << ") min " << min;
  }
}

}  // namespace
}  // namespace dupcache
