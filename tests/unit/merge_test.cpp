// SPDX-License-Identifier: GPL-2.0-only
// Which mappings of a /proc/PID/smaps text merge asks about.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "policy/merge.hpp"
#include "util/fd.hpp"

namespace dupcache::policy {
namespace {

// A process with a library mapped as ld.so maps it: text r-xp, RELRO r--p with copy-on-write
// pages, data rw-p; plus a shared read-only mapping, an anonymous one and a read-only private
// file mapping with no anonymous pages.
constexpr const char* smaps = R"(55d0c0000000-55d0c0200000 r-xp 00000000 00:2a 257                        /mnt/c1
Size:               2048 kB
Rss:                2048 kB
Anonymous:             0 kB
VmFlags: rd ex mr mw me
55d0c0200000-55d0c0201000 r--p 00200000 00:2a 257                        /mnt/c1
Size:                  4 kB
Anonymous:             4 kB
55d0c0201000-55d0c0202000 rw-p 00201000 00:2a 257                        /mnt/c1
Anonymous:             4 kB
7f0000000000-7f0000100000 r--s 00000000 00:2a 258                        /mnt/shared
Anonymous:             0 kB
7f0000100000-7f0000200000 rw-p 00000000 00:00 0 
Anonymous:          1024 kB
7f0000200000-7f0000204000 r--p 00003000 00:2a 259                        /mnt/path with spaces
Anonymous:             0 kB
)";

TEST(MergeSmaps, PrivateReadOnlyFileMappingsWithTheirCowPages) {
  const auto v = mergeable_vmas(smaps);
  const std::vector<vma_line> want{
      {0x55d0c0000000, 0x55d0c0200000, 0, 0},
      {0x55d0c0200000, 0x55d0c0201000, 0x200000, 4},
      {0x7f0000200000, 0x7f0000204000, 0x3000, 0},
  };
  EXPECT_EQ(v, want);
}

TEST(MergeSmaps, EmptyAndGarbageGiveNothing) {
  EXPECT_TRUE(mergeable_vmas("").empty());
  EXPECT_TRUE(mergeable_vmas("Anonymous: 4 kB\nnot a mapping\n").empty());
}


// A residency reader that reports fixed cached runs and counts what it was asked.
class fixed_runs final : public residency_reader {
 public:
  explicit fixed_runs(std::vector<page_run> runs) : runs_(std::move(runs)) {}
  result<page_counts> totals(int, std::uint64_t) override { return page_counts{}; }
  result<std::vector<page_run>> clean_runs(int, std::uint64_t first, std::uint64_t pages) override {
    asked.push_back({first, pages});
    return runs_;
  }
  result<std::vector<page_run>> cached_runs(int, std::uint64_t) override { return runs_; }
  bool knows_dirty() const override { return true; }
  const char* name() const override { return "fixed"; }
  std::vector<page_run> asked;

 private:
  std::vector<page_run> runs_;
};

// A 16-page file of the unit tests' own (its contents do not matter: only what is read).
unique_fd sixteen_pages(std::string* path) {
  char tmpl[] = "/var/tmp/dupcache-warm-XXXXXX";
  unique_fd fd(mkstemp(tmpl));
  *path = tmpl;
  const std::string page(static_cast<std::size_t>(sysconf(_SC_PAGESIZE)), 'x');
  for (int i = 0; i < 16; ++i) EXPECT_EQ(write(fd.get(), page.data(), page.size()), static_cast<ssize_t>(page.size()));
  return fd;
}

TEST(MergeWarm, OnlyTheGapsBetweenCachedRunsAreRead) {
  std::string path;
  auto fd = sixteen_pages(&path);
  const auto ps = static_cast<std::uint64_t>(sysconf(_SC_PAGESIZE));
  // Pages 2-5 and 9 cached; the range asked is pages 3..12 from the middle of page 3 to the
  // middle of page 11: cached inside it are 3.5-6 and 9-10, read are 6-9 and 10-11.5.
  fixed_runs reader({{2, 4}, {9, 1}});
  merge_run run;
  auto r = warm_range(fd.get(), 3 * ps + ps / 2, 8 * ps, reader, run);
  ASSERT_TRUE(r) << r.err().message();
  ASSERT_EQ(reader.asked.size(), 1u);
  EXPECT_EQ(reader.asked[0], (page_run{3, 9}));
  EXPECT_EQ(run.canonical_cached_bytes, ps / 2 + 2 * ps + ps);
  EXPECT_EQ(run.canonical_read_bytes, 3 * ps + ps + ps / 2);
  EXPECT_EQ(run.canonical_cached_bytes + run.canonical_read_bytes, 8 * ps);
  unlink(path.c_str());
}

TEST(MergeWarm, AWhollyCachedRangeIsNotReadAgain) {
  std::string path;
  auto fd = sixteen_pages(&path);
  const auto ps = static_cast<std::uint64_t>(sysconf(_SC_PAGESIZE));
  fixed_runs cached({{0, 16}}), empty({});
  merge_run run;
  ASSERT_TRUE(warm_range(fd.get(), 0, 16 * ps, empty, run));
  EXPECT_EQ(run.canonical_read_bytes, 16 * ps);
  EXPECT_EQ(run.canonical_cached_bytes, 0u);
  ASSERT_TRUE(warm_range(fd.get(), 0, 16 * ps, cached, run));
  EXPECT_EQ(run.canonical_read_bytes, 16 * ps);  // unchanged
  EXPECT_EQ(run.canonical_cached_bytes, 16 * ps);
  unlink(path.c_str());
}

// With the kernel's own residency: a range dropped from the cache is read once, then found
// cached by the second call.
TEST(MergeWarm, SecondMappingOfACopyFindsItCached) {
  std::string path;
  auto fd = sixteen_pages(&path);
  const auto ps = static_cast<std::uint64_t>(sysconf(_SC_PAGESIZE));
  ASSERT_EQ(fsync(fd.get()), 0);
  ASSERT_EQ(posix_fadvise(fd.get(), 0, 0, POSIX_FADV_DONTNEED), 0);
  auto reader = make_residency_reader(residency_mode::automatic, ps);
  ASSERT_TRUE(reader) << reader.err().message();
  auto before = (*reader)->totals(fd.get(), 16 * ps);
  ASSERT_TRUE(before);
  ASSERT_EQ(before->cached, 0u) << "the test file's pages could not be dropped";
  merge_run run;
  ASSERT_TRUE(warm_range(fd.get(), 0, 16 * ps, **reader, run));
  EXPECT_EQ(run.canonical_read_bytes, 16 * ps);
  ASSERT_TRUE(warm_range(fd.get(), 0, 16 * ps, **reader, run));
  EXPECT_EQ(run.canonical_read_bytes, 16 * ps);
  EXPECT_EQ(run.canonical_cached_bytes, 16 * ps);
  unlink(path.c_str());
}

}  // namespace
}  // namespace dupcache::policy
