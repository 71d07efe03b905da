// SPDX-License-Identifier: GPL-2.0-only
// The /proc/kpage* entries of a list of frames are read over spans of nearby frames: one pread
// per span, each frame's own entry returned in the order asked.
#include <gtest/gtest.h>

#include "scan/frame_table.hpp"

namespace dupcache {
namespace {

// A table whose entry for frame p is p * 3 + 1; records each read.
struct fake_table {
  std::vector<std::pair<std::uint64_t, std::uint64_t>> reads;  // (first, count)
  frame_table_read reader() {
    return [this](std::uint64_t first, std::uint64_t count, std::uint64_t* out) -> result<void> {
      reads.emplace_back(first, count);
      for (std::uint64_t i = 0; i < count; ++i) out[i] = (first + i) * 3 + 1;
      return {};
    };
  }
};

TEST(FrameTable, ConsecutiveFramesTakeOneRead) {
  fake_table t;
  std::vector<std::uint64_t> pfns;
  for (std::uint64_t p = 1000; p < 1000 + 4096; ++p) pfns.push_back(p);
  std::uint64_t reads = 0;
  auto e = read_frame_entries(t.reader(), pfns, &reads);
  ASSERT_TRUE(e) << e.err().message();
  EXPECT_EQ(reads, 1u);
  ASSERT_EQ(t.reads.size(), 1u);
  EXPECT_EQ(t.reads[0], std::make_pair(std::uint64_t{1000}, std::uint64_t{4096}));
  for (std::size_t i = 0; i < pfns.size(); ++i) EXPECT_EQ((*e)[i], pfns[i] * 3 + 1);
}

TEST(FrameTable, OrderAndRepeatsKeptAcrossSpans) {
  fake_table t;
  // Two clusters far apart, given out of order, one frame twice; the small gap (10) inside the
  // first cluster is read across, the large one (1 << 20) is not.
  const std::vector<std::uint64_t> pfns = {5000, 1 << 20, 10, 20, 5000, (1 << 20) + 1, 12};
  std::uint64_t reads = 0;
  auto e = read_frame_entries(t.reader(), pfns, &reads);
  ASSERT_TRUE(e) << e.err().message();
  EXPECT_EQ(reads, 3u);  // {10..20}, {5000}, {1<<20 .. +1}
  ASSERT_EQ(t.reads.size(), 3u);
  EXPECT_EQ(t.reads[0], std::make_pair(std::uint64_t{10}, std::uint64_t{11}));
  EXPECT_EQ(t.reads[1], std::make_pair(std::uint64_t{5000}, std::uint64_t{1}));
  EXPECT_EQ(t.reads[2], std::make_pair(std::uint64_t{1 << 20}, std::uint64_t{2}));
  for (std::size_t i = 0; i < pfns.size(); ++i) EXPECT_EQ((*e)[i], pfns[i] * 3 + 1) << i;
}

TEST(FrameTable, SpansAreCapped) {
  fake_table t;
  std::vector<std::uint64_t> pfns;
  for (std::uint64_t p = 0; p < 1000; ++p) pfns.push_back(p);
  std::uint64_t reads = 0;
  auto e = read_frame_entries(t.reader(), pfns, &reads, frame_span_limits{64, 256});
  ASSERT_TRUE(e);
  EXPECT_EQ(reads, 4u);  // 256 + 256 + 256 + 232
  for (const auto& [first, count] : t.reads) EXPECT_LE(count, 256u);
  for (std::size_t i = 0; i < pfns.size(); ++i) EXPECT_EQ((*e)[i], pfns[i] * 3 + 1);
}

TEST(FrameTable, AReadErrorIsReturned) {
  auto e = read_frame_entries(
      [](std::uint64_t, std::uint64_t, std::uint64_t*) -> result<void> { return plain_error("read /proc/kpageflags", "gone"); },
      {1, 2, 3});
  ASSERT_FALSE(e);
  EXPECT_EQ(e.err().message(), "read /proc/kpageflags failed: gone");
}

TEST(FrameTable, NoFramesNoReads) {
  fake_table t;
  std::uint64_t reads = 7;
  auto e = read_frame_entries(t.reader(), {}, &reads);
  ASSERT_TRUE(e);
  EXPECT_TRUE(e->empty());
  EXPECT_EQ(reads, 0u);
  EXPECT_TRUE(t.reads.empty());
}

}  // namespace
}  // namespace dupcache
