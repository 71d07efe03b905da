// SPDX-License-Identifier: GPL-2.0-only
// The live controller's order rules (live/ordering.hpp) on hand-made records: which may have
// been overtaken by another CPU's record, which a cachestat count already holds, and when the
// horizon lets old records go.
#include <gtest/gtest.h>

#include <vector>

#include "live/ordering.hpp"

namespace dupcache::live {
namespace {

using trace::event_kind;
using verdicts = std::vector<admission>;

constexpr std::uint64_t slack = 100'000;
constexpr admission apply = admission::apply;
constexpr admission doubt = admission::doubt;
constexpr admission counted = admission::counted;

// A record of `kind` on CPU `cpu`, begun at `ts` and flushed at `end_ts`, for pages
// [index, index + pages).
trace::decoded_event rec(event_kind kind, std::uint32_t cpu, std::uint64_t ts, std::uint64_t end_ts,
                         std::uint64_t index, std::uint32_t pages) {
  trace::decoded_event ev;
  ev.kind = kind;
  ev.cpu = cpu;
  ev.timestamp_ns = ts;
  ev.end_timestamp_ns = end_ts;
  ev.index = index;
  ev.nr_pages = pages;
  return ev;
}
constexpr auto add = event_kind::cache_add;
constexpr auto del = event_kind::cache_delete;
constexpr auto dirty = event_kind::folio_dirty;

// Admits the records in order, each under its window, as the controller does.
verdicts feed(inode_order& o, const std::vector<trace::decoded_event>& records, order_window w = {slack, 0}) {
  verdicts out;
  for (const auto& r : records) out.push_back(admit(o, r, w));
  return out;
}

TEST(Ordering, RemovalOvertakenByTheInsertionThatPutItsPageBack) {
  // CPU 1's insertion of pages 0-3 is applied first; CPU 0's removal of page 2 began before
  // that run ended, so it may belong before the insertion.
  inode_order o;
  EXPECT_EQ(feed(o, {rec(add, 1, 1'000'000, 1'200'000, 0, 4), rec(del, 0, 1'100'000, 1'100'000, 2, 1)}),
            (verdicts{apply, doubt}));
  EXPECT_EQ(o.removed.ns, 0u) << "a doubted record is not remembered";
}

TEST(Ordering, InsertionOvertakenByARemovalOfItsPages) {
  // Only the insertion that overlaps the removal's pages [8, 16) is in doubt.
  inode_order o;
  EXPECT_EQ(feed(o, {rec(del, 3, 2'000'000, 2'000'000, 8, 8), rec(add, 2, 1'900'000, 2'050'000, 15, 2),
                     rec(add, 2, 1'900'000, 2'050'000, 16, 2), rec(add, 2, 1'900'000, 2'050'000, 4, 4)}),
            (verdicts{apply, doubt, apply, apply}));
}

TEST(Ordering, DirtyingCountsAsARemovalForLaterInsertions) {
  inode_order o;
  EXPECT_EQ(feed(o, {rec(dirty, 0, 500'000, 500'000, 0, 1), rec(add, 1, 450'000, 460'000, 0, 1)}),
            (verdicts{apply, doubt}));
  EXPECT_EQ(o.removed.end, 1u);
}

TEST(Ordering, OneCpusRecordsAreInOrderUnlessFlaggedUnordered) {
  inode_order o;
  auto unordered = rec(del, 5, 1'300'000, 1'300'000, 3, 1);
  unordered.unordered = true;  // could not flush its CPU's run first: may have overtaken it
  EXPECT_EQ(feed(o, {rec(add, 5, 1'000'000, 1'200'000, 0, 4), rec(del, 5, 1'100'000, 1'100'000, 2, 1),
                     rec(add, 5, 1'150'000, 1'150'000, 2, 1), unordered}),
            (verdicts{apply, apply, apply, doubt}));
}

TEST(Ordering, RangesOfSeveralCpusMerge) {
  // After insertions from CPUs 0 and 1 the range [0, 12) belongs to several CPUs, so even
  // CPU 0's own removal inside it is in doubt.
  inode_order o;
  EXPECT_EQ(feed(o, {rec(add, 0, 1'000'000, 1'000'000, 0, 2), rec(add, 1, 1'010'000, 1'020'000, 10, 2)}),
            (verdicts{apply, apply}));
  EXPECT_EQ(o.added.first, 0u);
  EXPECT_EQ(o.added.end, 12u);
  EXPECT_EQ(o.added.cpu, -1);
  EXPECT_EQ(o.added.ns, 1'020'000u);
  EXPECT_EQ(feed(o, {rec(del, 0, 1'030'000, 1'030'000, 5, 1)}), (verdicts{doubt}));
}

TEST(Ordering, TimestampSlackEdge) {
  // Begun exactly one slack after the insertion's end: not clearly apart. One ns later: apart.
  const auto inserted = rec(add, 1, 900'000, 1'000'000, 0, 1);
  inode_order at_edge;
  EXPECT_EQ(feed(at_edge, {inserted, rec(del, 0, 1'000'000 + slack, 1'000'000 + slack, 0, 1)}),
            (verdicts{apply, doubt}));
  inode_order past_edge;
  EXPECT_EQ(feed(past_edge, {inserted, rec(del, 0, 1'000'001 + slack, 1'000'001 + slack, 0, 1)}),
            (verdicts{apply, apply}));
}

TEST(Ordering, RecordsAlreadyCountedByACachestatReconcile) {
  // Ended before the count was taken: held by it. Ended after it but begun within the slack:
  // the count may or may not hold it. Begun clearly after it: applied. A removal is stamped
  // just before its page leaves the cache: held by the count only when it ended more than the
  // slack before it.
  inode_order o;
  o.counted_ns = 5'000'000;
  EXPECT_EQ(feed(o, {rec(add, 0, 4'000'000, 4'999'999, 0, 1), rec(del, 0, 4'999'999 - slack, 4'999'999 - slack, 0, 1),
                     rec(del, 0, 5'000'000 - slack, 5'000'000 - slack, 0, 1), rec(del, 0, 4'999'999, 4'999'999, 0, 1),
                     rec(add, 0, 4'000'000, 5'000'000, 0, 1), rec(add, 0, 5'000'000 + slack, 5'000'000 + slack, 0, 1),
                     rec(add, 0, 5'000'001 + slack, 5'000'001 + slack, 0, 1)}),
            (verdicts{counted, counted, doubt, doubt, doubt, doubt, apply}));
  EXPECT_EQ(o.added.ns, 5'000'001 + slack);
}

TEST(Ordering, RecordsBegunWhileTheCountWasTakenAreInDoubt) {
  // The count call ran from 5 ms to 7 ms (a reader preempted inside it). A record begun at 6 ms
  // may or may not be in the count, although it began well past counted_ns + slack; one begun
  // past 7 ms + slack is not in it.
  inode_order o;
  o.counted_ns = 5'000'000;
  o.counted_until_ns = 7'000'000;
  EXPECT_EQ(feed(o, {rec(add, 0, 4'000'000, 4'999'999, 0, 1), rec(add, 0, 6'000'000, 6'000'000, 1, 1),
                     rec(del, 0, 7'000'000 + slack, 7'000'000 + slack, 2, 1),
                     rec(add, 0, 7'000'001 + slack, 7'000'001 + slack, 3, 1)}),
            (verdicts{counted, doubt, doubt, apply}));
}

TEST(Ordering, HorizonForgetsOldRecords) {
  const auto inserted = rec(add, 1, 900'000, 1'000'000, 0, 4);
  const auto removed = rec(del, 0, 950'000, 950'000, 2, 1);
  // Everything before the horizon has been applied: past insertion end + slack it cannot
  // overtake the removal; at the edge it still may.
  inode_order past;
  feed(past, {inserted});
  EXPECT_EQ(feed(past, {removed}, {slack, 1'000'001 + slack}), (verdicts{apply}));
  inode_order edge;
  feed(edge, {inserted});
  EXPECT_EQ(feed(edge, {removed}, {slack, 1'000'000 + slack}), (verdicts{doubt}));
  // A record after the horizon starts the range afresh instead of widening it, so a removal of
  // the old pages by another CPU is not in doubt.
  inode_order fresh;
  feed(fresh, {inserted});
  EXPECT_EQ(feed(fresh, {rec(add, 0, 2'500'000, 2'500'000, 10, 2), rec(del, 1, 2'500'000, 2'500'000, 2, 1)},
                 {slack, 2'000'000}),
            (verdicts{apply, apply}));
  EXPECT_EQ(fresh.added.first, 10u);
  EXPECT_EQ(fresh.added.end, 12u);
  EXPECT_EQ(fresh.added.cpu, 0);
}

TEST(Ordering, DirtyingIsNeverInDoubtBeforeACount) {
  inode_order o;
  EXPECT_EQ(feed(o, {rec(del, 0, 1'000'000, 1'000'000, 0, 1), rec(add, 1, 1'000'000, 1'000'000, 0, 1),
                     rec(dirty, 1, 1'000'000, 1'000'000, 0, 1)}),
            (verdicts{apply, doubt, apply}));
}

}  // namespace
}  // namespace dupcache::live
