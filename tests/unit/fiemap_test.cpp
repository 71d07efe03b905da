// SPDX-License-Identifier: GPL-2.0-only
// Extent classification and the whole-page runs the scanner feeds to the index.
#include <gtest/gtest.h>
#include <linux/fiemap.h>

#include <cstdint>
#include <tuple>
#include <vector>

#include "scan/fiemap.hpp"

namespace dupcache {
namespace {

constexpr std::uint64_t P = 4096;
constexpr std::uint64_t KiB = 1024;
constexpr std::uint64_t MiB = 1024 * 1024;

TEST(Fiemap, ClassifyEachFlagAlone) {
  EXPECT_EQ(classify(0), placement::exact);
  EXPECT_EQ(classify(FIEMAP_EXTENT_UNKNOWN), placement::unknown);
  EXPECT_EQ(classify(FIEMAP_EXTENT_DELALLOC), placement::unknown);
  EXPECT_EQ(classify(FIEMAP_EXTENT_DATA_INLINE), placement::inline_data);
  EXPECT_EQ(classify(FIEMAP_EXTENT_DATA_TAIL), placement::inline_data);
  EXPECT_EQ(classify(FIEMAP_EXTENT_NOT_ALIGNED), placement::not_aligned);
  EXPECT_EQ(classify(FIEMAP_EXTENT_DATA_ENCRYPTED), placement::encrypted);
  EXPECT_EQ(classify(FIEMAP_EXTENT_ENCODED), placement::encoded);
  EXPECT_EQ(classify(FIEMAP_EXTENT_UNWRITTEN), placement::exact);
  EXPECT_EQ(classify(FIEMAP_EXTENT_SHARED), placement::exact);
  EXPECT_EQ(classify(FIEMAP_EXTENT_LAST), placement::exact);
  EXPECT_EQ(classify(FIEMAP_EXTENT_MERGED), placement::exact);
}

TEST(Fiemap, ClassifyCombinationsTheKernelReports) {
  // fiemap_fill_next_extent() adds UNKNOWN to DELALLOC, ENCODED to DATA_ENCRYPTED and
  // NOT_ALIGNED to DATA_INLINE / DATA_TAIL.
  EXPECT_EQ(classify(FIEMAP_EXTENT_DELALLOC | FIEMAP_EXTENT_UNKNOWN | FIEMAP_EXTENT_LAST), placement::unknown);
  EXPECT_EQ(classify(FIEMAP_EXTENT_DATA_INLINE | FIEMAP_EXTENT_NOT_ALIGNED | FIEMAP_EXTENT_LAST),
            placement::inline_data);
  EXPECT_EQ(classify(FIEMAP_EXTENT_DATA_TAIL | FIEMAP_EXTENT_NOT_ALIGNED), placement::inline_data);
  EXPECT_EQ(classify(FIEMAP_EXTENT_DATA_ENCRYPTED | FIEMAP_EXTENT_ENCODED), placement::encrypted);
  // A shared compressed btrfs extent is still not exact.
  EXPECT_EQ(classify(FIEMAP_EXTENT_ENCODED | FIEMAP_EXTENT_SHARED), placement::encoded);
  EXPECT_EQ(classify(FIEMAP_EXTENT_SHARED | FIEMAP_EXTENT_UNWRITTEN | FIEMAP_EXTENT_LAST | FIEMAP_EXTENT_MERGED),
            placement::exact);
}

TEST(Fiemap, PlacementNames) {
  EXPECT_EQ(placement_name(placement::exact), "exact");
  EXPECT_EQ(placement_name(placement::unknown), "delalloc");
  EXPECT_EQ(placement_name(placement::inline_data), "inline");
  EXPECT_EQ(placement_name(placement::not_aligned), "not-aligned");
  EXPECT_EQ(placement_name(placement::encoded), "encoded");
  EXPECT_EQ(placement_name(placement::encrypted), "encrypted");
}

// placed_run has no comparison of its own; compare as tuples (gtest prints them).
using run = std::tuple<std::uint64_t, std::uint64_t, std::uint64_t, bool>;  // first_page, pages, physical, shared
using runs = std::vector<run>;
runs placed(const std::vector<extent>& extents, std::uint64_t page_size = P) {
  runs out;
  for (const auto& r : placed_runs(extents, page_size)) out.emplace_back(r.first_page, r.pages, r.physical, r.shared);
  return out;
}

TEST(PlacedRuns, EmptyInput) { EXPECT_EQ(placed({}), runs{}); }

TEST(PlacedRuns, AlignedExtent) {
  EXPECT_EQ(placed({{0, MiB, 16 * KiB, 0}}), (runs{{0, 4, MiB, false}}));
  EXPECT_EQ(placed({{8 * KiB, MiB, 8 * KiB, FIEMAP_EXTENT_SHARED | FIEMAP_EXTENT_LAST}}),
            (runs{{2, 2, MiB, true}}));
}

TEST(PlacedRuns, PartialPagesAtBothEndsAreDropped) {
  // 1 KiB blocks: file bytes [1 KiB, 11 KiB) at disk 1 MiB + 1 KiB. The only whole page is
  // file page 1 = [4 KiB, 8 KiB), which lies 3 KiB into the extent: 1 MiB + 4 KiB on disk.
  EXPECT_EQ(placed({{KiB, MiB + KiB, 10 * KiB, 0}}), (runs{{1, 1, MiB + 4 * KiB, false}}));
}

TEST(PlacedRuns, PartialPageAtTheEndIsDropped) {
  // [0, 6 KiB): page 0 whole, page 1 half.
  EXPECT_EQ(placed({{0, 2 * MiB, 6 * KiB, 0}}), (runs{{0, 1, 2 * MiB, false}}));
}

TEST(PlacedRuns, ExtentsInsideOnePageGiveNothing) {
  EXPECT_EQ(placed({{KiB, MiB, 2 * KiB, 0}}), runs{});
  EXPECT_EQ(placed({{P, MiB, P - 1, 0}}), runs{});     // one byte short of a page
  EXPECT_EQ(placed({{P + 1, MiB, P, 0}}), runs{});     // a page long but straddling
}

TEST(PlacedRuns, PageStraddlingTwoExtentsIsDropped) {
  // 1 KiB blocks, contiguous on disk: [0,5 KiB) and [5 KiB,12 KiB). Page 1 = [4,8) KiB
  // straddles both and is left out; page 2 = [8,12) KiB is 3 KiB into the second extent.
  EXPECT_EQ(placed({{0, MiB, 5 * KiB, 0}, {5 * KiB, MiB + 5 * KiB, 7 * KiB, 0}}),
            (runs{{0, 1, MiB, false}, {2, 1, MiB + 8 * KiB, false}}));
}

TEST(PlacedRuns, ContiguousExtentsMergeWhenSharedFlagsAgree) {
  const extent a{0, MiB, 8 * KiB, 0};
  const extent b{8 * KiB, MiB + 8 * KiB, 8 * KiB, FIEMAP_EXTENT_LAST};
  EXPECT_EQ(placed({a, b}), (runs{{0, 4, MiB, false}}));

  const extent sa{0, MiB, 8 * KiB, FIEMAP_EXTENT_SHARED};
  const extent sb{8 * KiB, MiB + 8 * KiB, 8 * KiB, FIEMAP_EXTENT_SHARED | FIEMAP_EXTENT_LAST};
  EXPECT_EQ(placed({sa, sb}), (runs{{0, 4, MiB, true}}));

  // Unwritten and written extents both have exact addresses; only SHARED keeps runs apart.
  const extent u{8 * KiB, MiB + 8 * KiB, 4 * KiB, FIEMAP_EXTENT_UNWRITTEN};
  EXPECT_EQ(placed({a, u}), (runs{{0, 3, MiB, false}}));
}

TEST(PlacedRuns, ContiguousExtentsWithDifferentSharedFlagsStayApart) {
  const extent a{0, MiB, 8 * KiB, FIEMAP_EXTENT_SHARED};
  const extent b{8 * KiB, MiB + 8 * KiB, 8 * KiB, 0};
  EXPECT_EQ(placed({a, b}), (runs{{0, 2, MiB, true}, {2, 2, MiB + 8 * KiB, false}}));
  EXPECT_EQ(placed({b, {16 * KiB, MiB + 16 * KiB, 4 * KiB, FIEMAP_EXTENT_SHARED}}),
            (runs{{2, 2, MiB + 8 * KiB, false}, {4, 1, MiB + 16 * KiB, true}}));
}

TEST(PlacedRuns, ContiguousInFileButNotOnDisk) {
  EXPECT_EQ(placed({{0, MiB, 8 * KiB, 0}, {8 * KiB, 4 * MiB, 8 * KiB, 0}}),
            (runs{{0, 2, MiB, false}, {2, 2, 4 * MiB, false}}));
  // Backwards on disk: the second extent ends where the first starts.
  EXPECT_EQ(placed({{0, MiB, 8 * KiB, 0}, {8 * KiB, MiB - 8 * KiB, 8 * KiB, 0}}),
            (runs{{0, 2, MiB, false}, {2, 2, MiB - 8 * KiB, false}}));
}

TEST(PlacedRuns, HoleBetweenExtentsKeepsRunsApart) {
  // Contiguous on disk, but file pages 2, 3 are a hole.
  EXPECT_EQ(placed({{0, MiB, 8 * KiB, 0}, {16 * KiB, MiB + 8 * KiB, 8 * KiB, 0}}),
            (runs{{0, 2, MiB, false}, {4, 2, MiB + 8 * KiB, false}}));
}

TEST(PlacedRuns, ZeroLengthExtentsAreIgnored) {
  EXPECT_EQ(placed({{0, MiB, 0, 0}}), runs{});
  // A zero-length extent between two continuing ones does not break the run.
  EXPECT_EQ(placed({{0, MiB, 8 * KiB, 0}, {8 * KiB, 7 * MiB, 0, 0}, {8 * KiB, MiB + 8 * KiB, 4 * KiB, 0}}),
            (runs{{0, 3, MiB, false}}));
}

TEST(PlacedRuns, UnplaceableExtentsAreSkipped) {
  for (std::uint32_t flag : {FIEMAP_EXTENT_UNKNOWN | FIEMAP_EXTENT_DELALLOC,
                             FIEMAP_EXTENT_DATA_INLINE | FIEMAP_EXTENT_NOT_ALIGNED, FIEMAP_EXTENT_DATA_TAIL,
                             FIEMAP_EXTENT_NOT_ALIGNED, FIEMAP_EXTENT_ENCODED,
                             FIEMAP_EXTENT_DATA_ENCRYPTED | FIEMAP_EXTENT_ENCODED}) {
    SCOPED_TRACE(flag);
    EXPECT_EQ(placed({{0, MiB, 16 * KiB, flag | FIEMAP_EXTENT_SHARED}}), runs{});
    // Between two exact extents: the exact ones stay, and are not joined across the gap
    // even though their disk addresses would continue each other.
    EXPECT_EQ(placed({{0, MiB, 8 * KiB, 0},
                      {8 * KiB, MiB + 8 * KiB, 8 * KiB, flag},
                      {16 * KiB, MiB + 16 * KiB, 8 * KiB, 0}}),
              (runs{{0, 2, MiB, false}, {4, 2, MiB + 16 * KiB, false}}));
  }
}

TEST(PlacedRuns, FirstWholePageAddressArithmetic) {
  // Extent at file byte 6 KiB, disk byte 10 MiB + 2 KiB, 20 KiB long (to 26 KiB).
  // First whole page: 2 (8 KiB), 2 KiB into the extent -> disk 10 MiB + 4 KiB.
  // Last whole page ends at 24 KiB: pages 2..5, 4 pages.
  EXPECT_EQ(placed({{6 * KiB, 10 * MiB + 2 * KiB, 20 * KiB, 0}}), (runs{{2, 4, 10 * MiB + 4 * KiB, false}}));
  // Page-aligned in the file, not on disk: the address is carried as is.
  EXPECT_EQ(placed({{4 * KiB, 512, 8 * KiB, 0}}), (runs{{1, 2, 512, false}}));
  // A 64 KiB page size.
  EXPECT_EQ(placed({{0, MiB, 200 * KiB, 0}}, 64 * KiB), (runs{{0, 3, MiB, false}}));
}

TEST(PlacedRuns, LargeOffsets) {
  // 1 TiB into the file, 8 TiB on disk.
  const std::uint64_t TiB = 1ULL << 40;
  EXPECT_EQ(placed({{TiB, 8 * TiB, 2 * MiB, FIEMAP_EXTENT_SHARED}}),
            (runs{{TiB / P, 512, 8 * TiB, true}}));
}

}  // namespace
}  // namespace dupcache
