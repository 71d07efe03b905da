// SPDX-License-Identifier: GPL-2.0-only
// Files users can make to stall or redirect a scan (issue 15): a 4 EiB sparse file under the
// mincore fallback, symbolic links on the way of a walk.

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstring>

#include "fs_fixture.hpp"

namespace dupcache::testing {
namespace {

void write_page(const std::string& path, std::uint64_t offset, char c) {
  const std::string page(page_size(), c);
  const int fd = open(path.c_str(), O_WRONLY);
  ASSERT_GE(fd, 0) << strerror(errno);
  ASSERT_EQ(pwrite(fd, page.data(), page.size(), static_cast<off_t>(offset)), static_cast<ssize_t>(page.size()));
  ASSERT_EQ(fsync(fd), 0);  // clean, allocated pages: data for SEEK_DATA
  close(fd);
}

struct timed_report {
  nlohmann::json doc;
  int status = -1;
  double seconds = 0;
};

timed_report report(const std::vector<std::string>& args) {
  std::vector<std::string> argv{DUPCACHE_BINARY, "report", "--json"};
  argv.insert(argv.end(), args.begin(), args.end());
  const auto t0 = std::chrono::steady_clock::now();
  auto r = run(argv, 60);
  timed_report out;
  out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  out.status = r.status;
  out.doc = nlohmann::json::parse(r.out.empty() ? "{}" : r.out);
  return out;
}

std::string errors_of(const nlohmann::json& doc, const std::string& path) {
  std::string all;
  for (const auto& e : doc.value("errors", nlohmann::json::array())) {
    if (e.value("path", "") == path) all += e.value("error", "") + "\n";
  }
  return all;
}

class sparse_fs : public ::testing::TestWithParam<std::string> {};

// Issue 15, 1: truncate -s 4E costs nothing on disk; the mincore fallback walked every 256 MiB
// window of it (12.7 s per TiB). Now: its data ranges, exactly, in well under a second.
TEST_P(sparse_fs, FourExbibyteSparseFileUnderMincoreIsQuickAndExact) {
  DUPCACHE_REQUIRE_ROOT(GetParam() == "xfs" ? "mkfs.xfs" : "mkfs.btrfs");
  scratch_fs fs(GetParam());
  const std::uint64_t ps = page_size();
  const std::string f = fs.path("sparse");
  must({"truncate", "-s", "4E", f});
  const std::uint64_t size = 1ULL << 62;
  const std::uint64_t offsets[] = {0, 1ULL << 30, 1ULL << 61, size - ps};
  char c = 'a';
  for (auto off : offsets) write_page(f, off, c++);
  for (const char* mode : {"mincore", "cachestat"}) {
    // The container view reads page charges too, over the same bounded ranges.
    auto r = report({"--residency", mode, "--by", "file,container", f});
    ASSERT_NE(r.status, -1) << mode << ": did not finish";
    EXPECT_LT(r.seconds, 5.0) << mode;
    const auto* e = file_entry(r.doc, f);
    ASSERT_NE(e, nullptr) << r.doc.dump(2);
    EXPECT_EQ((*e)["cached_bytes"], 4 * ps) << mode << "\n" << r.doc.dump(2);
  }
  // A page read from a hole is cached (zero-filled). cachestat counts it; the mincore fallback
  // cannot look at 4 EiB of holes in bounded time and says so instead of guessing.
  read_range(f, 1ULL << 40, ps);
  auto cs = report({"--residency", "cachestat", f});
  EXPECT_EQ((*file_entry(cs.doc, f))["cached_bytes"], 5 * ps) << cs.doc.dump(2);
  EXPECT_EQ(errors_of(cs.doc, f), "");
  auto mc = report({"--residency", "mincore", f});
  EXPECT_LT(mc.seconds, 5.0);
  EXPECT_EQ((*file_entry(mc.doc, f))["cached_bytes"], 4 * ps) << mc.doc.dump(2);
  EXPECT_NE(errors_of(mc.doc, f).find("of holes failed: it cannot be read in bounded time without cachestat"),
            std::string::npos)
      << mc.doc.dump(2);

  // A file whose holes are within the budget is read whole: a cached hole page counts.
  const std::string g = fs.path("small-sparse");
  must({"truncate", "-s", "64M", g});
  write_page(g, 0, 'z');
  read_range(g, 32 * MiB, ps);
  auto small = report({"--residency", "mincore", g});
  EXPECT_EQ((*file_entry(small.doc, g))["cached_bytes"], 2 * ps) << small.doc.dump(2);
  EXPECT_EQ(errors_of(small.doc, g), "");
}

INSTANTIATE_TEST_SUITE_P(, sparse_fs, ::testing::Values("btrfs", "xfs"));

// Issue 15, 9: a PATH may pass through symlinks (the caller named it); below it, the walk
// follows none, and opens each directory relative to its parent's fd.
TEST(Walk, PathMayBeASymlinkNothingBelowIsFollowed) {
  DUPCACHE_REQUIRE_ROOT("mkfs.btrfs");
  scratch_fs fs("btrfs");
  const std::uint64_t ps = page_size();
  for (const char* d : {"real", "real/sub", "real/sub/deeper", "elsewhere"}) ASSERT_EQ(mkdir(fs.path(d).c_str(), 0755), 0);
  write_file(fs.path("real/sub/deeper/a"), 64 * KiB, 1);
  write_file(fs.path("elsewhere/b"), 64 * KiB, 2);
  read_all(fs.path("real/sub/deeper/a"));
  read_all(fs.path("elsewhere/b"));
  ASSERT_EQ(symlink(fs.path("real").c_str(), fs.path("link").c_str()), 0);
  ASSERT_EQ(symlink(fs.path("elsewhere").c_str(), fs.path("real/sub/jump").c_str()), 0);
  auto r = report({fs.path("link")});
  EXPECT_EQ(r.status, 0) << r.doc.dump(2);
  const auto* a = file_entry(r.doc, fs.path("link/sub/deeper/a"));
  ASSERT_NE(a, nullptr) << r.doc.dump(2);
  EXPECT_EQ((*a)["cached_bytes"], 64 * KiB);
  EXPECT_EQ(file_entry(r.doc, fs.path("link/sub/jump/b")), nullptr) << r.doc.dump(2);
  EXPECT_EQ(r.doc["totals"]["files_scanned"], 1) << r.doc.dump(2);
  EXPECT_EQ(r.doc["skipped"]["special_files"], 1) << r.doc.dump(2);
  (void)ps;
}

}  // namespace
}  // namespace dupcache::testing
