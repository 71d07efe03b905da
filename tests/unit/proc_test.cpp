// SPDX-License-Identifier: GPL-2.0-only
#include <gtest/gtest.h>
#include <unistd.h>

#include "util/path.hpp"
#include "util/proc.hpp"

namespace dupcache {
namespace {

TEST(Proc, MeminfoFieldsInBytes) {
  const std::string text = "MemTotal:       24576000 kB\nMemAvailable:   1000 kB\nCached:  7 kB\nHugePages_Total:       3\n";
  EXPECT_EQ(proc::meminfo_bytes(text, "MemAvailable"), 1000u * 1024);
  EXPECT_EQ(proc::meminfo_bytes(text, "Cached"), 7u * 1024);
  EXPECT_EQ(proc::meminfo_bytes(text, "HugePages_Total"), 3u);
  EXPECT_EQ(proc::meminfo_bytes(text, "Mem"), std::nullopt);
  EXPECT_EQ(proc::meminfo_bytes("Cached: lots kB\n", "Cached"), std::nullopt);
  EXPECT_EQ(proc::meminfo_bytes("Cached: 99999999999999999999 kB\n", "Cached"), std::nullopt);
  EXPECT_TRUE(proc::meminfo_bytes("MemTotal").has_value());
}

TEST(Proc, PsiAverages) {
  const std::string text = "some avg10=1.25 avg60=0.50 avg300=0.10 total=123\nfull avg10=0.75 avg60=0.00 avg300=0.00 total=9\n";
  EXPECT_DOUBLE_EQ(*proc::psi_avg10(text, "some"), 1.25);
  EXPECT_DOUBLE_EQ(*proc::psi_avg10(text, "full"), 0.75);
  EXPECT_EQ(proc::psi_avg10("some avg60=1.0\n", "some"), std::nullopt);
  EXPECT_EQ(proc::psi_avg10_file("/nonexistent/memory.pressure", "some"), std::nullopt);
}

TEST(Proc, ThisProcessIsListedAndRunning) {
  const auto pids = proc::process_ids();
  EXPECT_NE(std::find(pids.begin(), pids.end(), getpid()), pids.end());
  EXPECT_EQ(proc::process_state(getpid()), 'R');
  EXPECT_EQ(proc::process_state(-1), 0);
}

TEST(Proc, HeldFilesOfThisProcess) {
  // The test binary is mapped by this process; stdin may or may not be a regular file.
  std::size_t mapped = 0;
  ASSERT_TRUE(proc::for_each_held_file(getpid(), proc::held_kind::mapped, [&](const proc::held_file& h) {
    EXPECT_LT(h.start, h.end);
    ++mapped;
  }));
  EXPECT_GT(mapped, 0u);
  EXPECT_FALSE(proc::for_each_held_file(-1, proc::held_kind::open, [](const proc::held_file&) {}));
}

TEST(Path, UnderByComponent) {
  EXPECT_TRUE(path_under("/a/b", "/a"));
  EXPECT_TRUE(path_under("/a", "/a/"));
  EXPECT_FALSE(path_under("/ab", "/a"));
  EXPECT_TRUE(path_under("/x", "/"));
  EXPECT_FALSE(path_under("/x", ""));
  EXPECT_FALSE(path_below("/a", "/a"));
  EXPECT_TRUE(path_below("/a/b", "/a"));
  EXPECT_TRUE(path_under_any("/q", {}, true));
  EXPECT_FALSE(path_under_any("/q", {}, false));
  EXPECT_TRUE(path_under_any("/q/r", {"/p", "/q"}, false));
}

}  // namespace
}  // namespace dupcache
