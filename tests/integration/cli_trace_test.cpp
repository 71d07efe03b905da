// SPDX-License-Identifier: GPL-2.0-only
// dupcache trace as a user runs it: the JSON lines of the insertions the test itself makes, and
// the counters it ends with.

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <regex>

#include "cli_test.hpp"

namespace dupcache::testing {
namespace {

using nlohmann::json;

// major:minor of the filesystem mounted at dir, as mountinfo shows it (the superblock's s_dev,
// which on btrfs differs from stat()'s per-subvolume st_dev).
std::string mountinfo_dev(const std::string& dir) {
  std::ifstream in("/proc/self/mountinfo");
  std::string found;
  for (std::string line; std::getline(in, line);) {
    const auto t = tokens(line);
    if (t.size() > 4 && t[4] == dir) found = t[2];  // the last mount on dir is the visible one
  }
  return found;
}

TEST(Trace, JsonLines) {
  DUPCACHE_REQUIRE_ROOT("mkfs.btrfs");
  scratch_fs fs("btrfs");
  const std::string f = fs.path("f");
  write_file(f, 1 * MiB, 18);
  evict(f);
  ASSERT_EQ(cached_pages(f), 0u);
  struct stat sb {};
  ASSERT_EQ(stat(f.c_str(), &sb), 0);

  const std::string dev = mountinfo_dev(fs.dir());
  ASSERT_FALSE(dev.empty()) << fs.dir() << " not in mountinfo";
  constexpr int pages = 8;
  background tr({DUPCACHE_BINARY, "trace", "--per-folio", "-n", std::to_string(pages), fs.dir()});
  ASSERT_TRUE(tr.wait_for([&] { return contains(tr.err(), "page-cache hooks:"); }, 20))
      << tr.command() << " did not report its hooks\nstderr: " << tr.err();
  read_range(f, 0, pages * ps());
  ASSERT_EQ(cached_pages(f), static_cast<std::uint64_t>(pages));
  const int status = tr.finish(20);
  EXPECT_EQ(status, 0) << "(-1: still running 20 s after the read, killed) " << tr.command() << "\nstdout:\n"
                       << tr.out() << "stderr:\n" << tr.err();

  const auto lines = split_lines(tr.out());
  ASSERT_EQ(lines.size(), static_cast<std::size_t>(pages)) << tr.out();
  std::vector<std::uint64_t> indexes;
  for (const auto& l : lines) {
    json e;
    ASSERT_NO_THROW(e = json::parse(l)) << l;
    EXPECT_EQ(e.value("kind", ""), "cache_add") << l;
    EXPECT_EQ(e.value("ino", std::uint64_t{0}), static_cast<std::uint64_t>(sb.st_ino)) << l;
    EXPECT_EQ(e.value("dev", std::string()), dev) << "the superblock device of " << fs.dir() << ": " << l;
    EXPECT_EQ(e.value("subvol", std::uint64_t{0}), 5u) << "the top-level subvolume of a fresh btrfs: " << l;
    EXPECT_EQ(e.value("nr_pages", std::uint64_t{0}), 1u) << l;
    EXPECT_EQ(e.value("pid", 0), static_cast<int>(getpid())) << "the test read the pages: " << l;
    ASSERT_TRUE(e.contains("index")) << l;
    indexes.push_back(e["index"].get<std::uint64_t>());
  }
  std::sort(indexes.begin(), indexes.end());
  std::vector<std::uint64_t> want(pages);
  for (int i = 0; i < pages; ++i) want[static_cast<std::size_t>(i)] = static_cast<std::uint64_t>(i);
  EXPECT_EQ(indexes, want);

  const auto err_lines = split_lines(tr.err());
  ASSERT_FALSE(err_lines.empty());
  const std::regex counters(R"(^dupcache: trace: (\d+) events emitted, (\d+) dropped.*$)");
  std::smatch m;
  ASSERT_TRUE(std::regex_match(err_lines.back(), m, counters)) << "stderr must end with the counters:\n" << tr.err();
  EXPECT_GE(std::stoull(m[1].str()), static_cast<unsigned long long>(pages));
  EXPECT_EQ(m[2].str(), "0");
}

// By default consecutive insertions come as runs: fewer lines, the same pages.
TEST(Trace, CoalescedRunsCoverExactlyTheReadPages) {
  DUPCACHE_REQUIRE_ROOT("mkfs.btrfs");
  scratch_fs fs("btrfs");
  const std::string f = fs.path("f");
  write_file(f, 1 * MiB, 19);
  evict(f);
  struct stat sb {};
  ASSERT_EQ(stat(f.c_str(), &sb), 0);
  constexpr std::uint64_t pages = 64;
  background tr({DUPCACHE_BINARY, "trace", "--duration", "3", "--no-sharing", fs.dir()});
  ASSERT_TRUE(tr.wait_for([&] { return contains(tr.err(), "page-cache hooks:"); }, 20)) << tr.err();
  EXPECT_TRUE(contains(tr.err(), "insertions coalesced into runs")) << tr.err();
  read_range(f, 0, pages * ps());
  ASSERT_EQ(cached_pages(f), pages);
  ASSERT_EQ(tr.finish(20), 0) << tr.err();

  std::vector<int> covered(pages, 0);
  std::size_t records = 0;
  for (const auto& l : split_lines(tr.out())) {
    json e = json::parse(l);
    if (e.value("kind", "") != "cache_add" || e.value("ino", std::uint64_t{0}) != sb.st_ino) continue;
    ++records;
    const auto first = e["index"].get<std::uint64_t>();
    const auto n = e["nr_pages"].get<std::uint64_t>();
    ASSERT_LE(first + n, pages) << l;
    for (std::uint64_t i = first; i < first + n; ++i) ++covered[i];
    if (n > 1) {
      EXPECT_GE(e.value("ts_end_ns", std::uint64_t{0}), e["ts_ns"].get<std::uint64_t>()) << l;
    }
  }
  EXPECT_EQ(covered, std::vector<int>(pages, 1)) << "every page read exactly once:\n" << tr.out();
  EXPECT_LT(records, pages) << "nothing was coalesced:\n" << tr.out();
}


}  // namespace
}  // namespace dupcache::testing
