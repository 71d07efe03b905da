// SPDX-License-Identifier: GPL-2.0-only
// From placed extents to the index's pieces: extents inside a prefix known clean and cached take
// no residency lookup; the others are looked up, and only their clean cached runs are pieces.
#include <gtest/gtest.h>

#include "scan/placement.hpp"

namespace dupcache {
namespace {

// Pages 0-3 and 8-9 clean and cached; records each range asked.
class fake_residency final : public residency_reader {
 public:
  result<page_counts> totals(int, std::uint64_t) override { return page_counts{}; }
  result<std::vector<page_run>> clean_runs(int, std::uint64_t first, std::uint64_t pages) override {
    asked.push_back({first, pages});
    std::vector<page_run> out;
    for (const page_run r : {page_run{0, 4}, page_run{8, 2}}) {
      const std::uint64_t s = std::max(first, r.first), e = std::min(first + pages, r.first + r.pages);
      if (s < e) out.push_back({s, e - s});
    }
    return out;
  }
  result<std::vector<page_run>> cached_runs(int, std::uint64_t) override { return std::vector<page_run>{}; }
  bool knows_dirty() const override { return true; }
  const char* name() const override { return "fake"; }
  std::vector<page_run> asked;
};

const std::vector<placed_extent> placement{
    {"fs", 0, 4, 0x10000, true},    // pages 0-3
    {"fs", 4, 2, 0x40000, false},   // pages 4-5, not shared
    {"fs", 6, 4, 0x80000, true},    // pages 6-9
};

TEST(Placement, EveryExtentLookedUpWithoutAPrefix) {
  fake_residency r;
  auto p = clean_pieces(-1, placement, r, 4096, true);
  ASSERT_TRUE(p);
  const std::vector<page_run> asked{{0, 4}, {6, 4}};
  EXPECT_EQ(r.asked, asked);
  ASSERT_EQ(p->size(), 2u);
  EXPECT_EQ((*p)[0].physical, 0x10000u);
  EXPECT_EQ((*p)[0].length, 4u * 4096);
  EXPECT_EQ((*p)[1].physical, 0x80000u + 2 * 4096);
  EXPECT_EQ((*p)[1].length, 2u * 4096);
}

TEST(Placement, ExtentsInsideTheCleanPrefixNeedNoLookup) {
  fake_residency r;
  // The first 6 pages known clean: the first extent is taken whole without asking; the third
  // reaches past the prefix and is looked up.
  auto p = clean_pieces(-1, placement, r, 4096, true, 6);
  ASSERT_TRUE(p);
  const std::vector<page_run> asked{{6, 4}};
  EXPECT_EQ(r.asked, asked);
  ASSERT_EQ(p->size(), 2u);
  EXPECT_EQ((*p)[0].physical, 0x10000u);
  EXPECT_EQ((*p)[0].length, 4u * 4096);
  EXPECT_EQ((*p)[1].length, 2u * 4096);

  fake_residency all;
  auto q = clean_pieces(-1, placement, all, 4096, false, 10);
  ASSERT_TRUE(q);
  EXPECT_TRUE(all.asked.empty());
  ASSERT_EQ(q->size(), 3u);
  EXPECT_EQ((*q)[1].physical, 0x40000u);
  EXPECT_EQ((*q)[2].length, 4u * 4096);
}

}  // namespace
}  // namespace dupcache
