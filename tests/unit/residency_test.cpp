// SPDX-License-Identifier: GPL-2.0-only
// Clean cached runs found by bisection over a counting query (cachestat's shape), against a
// fake file whose page states are listed one by one.
#include <gtest/gtest.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "scan/residency.hpp"

namespace dupcache {
namespace {

enum class pg : std::uint8_t { absent, clean, dirty, writeback };

// A file's page cache, one state per page, counted the way cachestat(2) counts: nr_cache
// includes dirty and writeback pages.
struct fake_file {
  std::vector<pg> pages;
  std::uint64_t queries = 0;

  range_query query() {
    return [this](std::uint64_t first, std::uint64_t n) -> result<page_counts> {
      ++queries;
      EXPECT_GT(n, 0u) << "empty query";
      EXPECT_LE(first + n, pages.size()) << "query past the end";
      page_counts c;
      for (std::uint64_t p = first; p < first + n && p < pages.size(); ++p) {
        if (pages[p] != pg::absent) ++c.cached;
        if (pages[p] == pg::dirty) ++c.dirty;
        if (pages[p] == pg::writeback) ++c.writeback;
      }
      return c;
    };
  }
};

fake_file from_string(const std::string& s) {  // '.' absent, 'c' clean, 'd' dirty, 'w' writeback
  fake_file f;
  for (char ch : s) {
    f.pages.push_back(ch == 'c' ? pg::clean : ch == 'd' ? pg::dirty : ch == 'w' ? pg::writeback : pg::absent);
  }
  return f;
}

using runs = std::vector<page_run>;

runs clean_runs_of(fake_file& f, std::uint64_t first, std::uint64_t pages) {
  auto r = clean_cached_runs(f.query(), first, pages);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.err().message());
  return r.ok() ? r.value() : runs{};
}

runs whole(fake_file& f) { return clean_runs_of(f, 0, f.pages.size()); }

TEST(CleanCachedRuns, AllAbsent) {
  auto f = from_string("..........");
  EXPECT_EQ(whole(f), runs{});
  EXPECT_EQ(f.queries, 1u);  // one count of zero ends it
}

TEST(CleanCachedRuns, AllClean) {
  auto f = from_string("cccccccccc");
  EXPECT_EQ(whole(f), (runs{{0, 10}}));
  EXPECT_EQ(f.queries, 1u);
}

TEST(CleanCachedRuns, AllDirtyOrWriteback) {
  auto f = from_string("dddwwwd");
  EXPECT_EQ(whole(f), runs{});
}

TEST(CleanCachedRuns, Alternating) {
  auto f = from_string("c.c.c.c");
  EXPECT_EQ(whole(f), (runs{{0, 1}, {2, 1}, {4, 1}, {6, 1}}));
  auto g = from_string(".c.c.c.c");
  EXPECT_EQ(whole(g), (runs{{1, 1}, {3, 1}, {5, 1}, {7, 1}}));
}

TEST(CleanCachedRuns, DirtyPageInsideCleanRun) {
  auto f = from_string("ccccdcccc");
  EXPECT_EQ(whole(f), (runs{{0, 4}, {5, 4}}));
  auto g = from_string("ccccwcccc");
  EXPECT_EQ(whole(g), (runs{{0, 4}, {5, 4}}));
}

TEST(CleanCachedRuns, RunsAtTheEdges) {
  auto f = from_string("c...c");
  EXPECT_EQ(whole(f), (runs{{0, 1}, {4, 1}}));
  auto g = from_string("cc.......cc");
  EXPECT_EQ(whole(g), (runs{{0, 2}, {9, 2}}));
}

TEST(CleanCachedRuns, OddLengths) {
  auto f = from_string("...ccccccc...");  // 13 pages, clean 3..9
  EXPECT_EQ(whole(f), (runs{{3, 7}}));
  auto g = from_string("c");
  EXPECT_EQ(whole(g), (runs{{0, 1}}));
  auto h = from_string("d");
  EXPECT_EQ(whole(h), runs{});
}

TEST(CleanCachedRuns, PiecesFoundInSeparateHalvesAreJoined) {
  // Bisection finds [0,4), [4,6) and [6,7) separately; they are one run.
  auto f = from_string("cccccccd");
  EXPECT_EQ(whole(f), (runs{{0, 7}}));
}

TEST(CleanCachedRuns, FirstNotZero) {
  // 20 pages, clean 5..11. Asking for [8, 18): clean 8..11.
  auto f = from_string(".....ccccccc........");
  EXPECT_EQ(clean_runs_of(f, 8, 10), (runs{{8, 4}}));
  // Asking for [2, 7): clean 5, 6.
  EXPECT_EQ(clean_runs_of(f, 2, 5), (runs{{5, 2}}));
  // Asking for [12, 20): nothing.
  EXPECT_EQ(clean_runs_of(f, 12, 8), runs{});
}

TEST(CleanCachedRuns, ZeroPagesAsksNothing) {
  auto f = from_string("cccc");
  EXPECT_EQ(clean_runs_of(f, 2, 0), runs{});
  EXPECT_EQ(f.queries, 0u);
}

TEST(CleanCachedRuns, RandomPatternsMatchPageByPage) {
  std::uint64_t state = 0x9E3779B97F4A7C15ULL;
  auto rnd = [&](std::uint64_t n) {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state % n;
  };
  for (int iter = 0; iter < 300; ++iter) {
    fake_file f;
    const std::uint64_t n = 1 + rnd(200);
    pg cur = pg::absent;
    for (std::uint64_t p = 0; p < n; ++p) {
      if (rnd(6) == 0) cur = static_cast<pg>(rnd(4));  // runs, not noise
      f.pages.push_back(cur);
    }
    const std::uint64_t first = rnd(n);
    const std::uint64_t len = rnd(n - first + 1);
    runs want;
    for (std::uint64_t p = first; p < first + len; ++p) {
      if (f.pages[p] != pg::clean) continue;
      if (!want.empty() && want.back().first + want.back().pages == p) ++want.back().pages;
      else want.push_back({p, 1});
    }
    SCOPED_TRACE(::testing::Message() << "iteration " << iter << " [" << first << "," << first + len << ")");
    ASSERT_EQ(clean_runs_of(f, first, len), want);
  }
}

TEST(CleanCachedRuns, HalfCachedHugeFileTakesThreeQueries) {
  // Root [0, 2^20) is mixed; [0, 2^19) is all clean, [2^19, 2^20) all absent: 3 queries.
  constexpr std::uint64_t n = 1u << 20;
  fake_file f;
  f.pages.assign(n, pg::absent);
  std::fill(f.pages.begin(), f.pages.begin() + n / 2, pg::clean);
  EXPECT_EQ(whole(f), (runs{{0, n / 2}}));
  EXPECT_EQ(f.queries, 3u);
}

TEST(CleanCachedRuns, OneTransitionCostsLogarithmicQueries) {
  // One transition at an odd place: each level of the descent splits only the range holding
  // it, two queries per level, 20 levels for 2^20 pages: at most 2*20 + 2.
  constexpr std::uint64_t n = 1u << 20;
  for (std::uint64_t t : {std::uint64_t{1}, std::uint64_t{300001}, n - 1}) {
    fake_file f;
    f.pages.assign(n, pg::absent);
    std::fill(f.pages.begin(), f.pages.begin() + t, pg::clean);
    SCOPED_TRACE(t);
    EXPECT_EQ(whole(f), (runs{{0, t}}));
    EXPECT_LE(f.queries, 2u * 20 + 2);
  }
  // And a dirty page alone in a clean file: same bound.
  fake_file g;
  g.pages.assign(n, pg::clean);
  g.pages[777777] = pg::dirty;
  EXPECT_EQ(whole(g), (runs{{0, 777777}, {777778, n - 777778}}));
  EXPECT_LE(g.queries, 2u * 20 + 2);
}

TEST(CleanCachedRuns, QueryErrorPropagates) {
  auto f = from_string("c.c.c.c.");
  std::uint64_t calls = 0;
  auto inner = f.query();
  range_query failing = [&](std::uint64_t first, std::uint64_t n) -> result<page_counts> {
    if (++calls == 3) return errno_error("read residency (cachestat)", EIO);
    return inner(first, n);
  };
  auto r = clean_cached_runs(failing, 0, 8);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.err().err, EIO);
  EXPECT_EQ(r.err().action, "read residency (cachestat)");
  EXPECT_EQ(calls, 3u);  // stops at the failure

  range_query first_fails = [](std::uint64_t, std::uint64_t) -> result<page_counts> {
    return errno_error("read residency (cachestat)", EPERM);
  };
  auto r2 = clean_cached_runs(first_fails, 0, 8);
  ASSERT_FALSE(r2.ok());
  EXPECT_EQ(r2.err().err, EPERM);
  EXPECT_EQ(r2.err().message(), std::string("read residency (cachestat) failed: ") + std::strerror(EPERM));
}

}  // namespace
}  // namespace dupcache
