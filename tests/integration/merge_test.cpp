// SPDX-License-Identifier: GPL-2.0-only
// The user side of merging, on real btrfs and XFS images: the FIEMAP check that a copy and a
// canonical copy hold a range with the same physical extents, content names, and what merge does
// where the companion module is absent. The module itself is proven in the qemu guest
// (tests/guest/kmod_test.sh): this kernel cannot load modules.

#include <dupcache_kmod.h>
#include <fcntl.h>
#include <sys/ioctl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstddef>

#include "fs_fixture.hpp"
#include "policy/merge.hpp"
#include "scan/extent_compare.hpp"
#include "util/fd.hpp"

namespace dupcache::testing {
namespace {

unique_fd open_ro(const std::string& path) {
  unique_fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) throw std::runtime_error("open " + path);
  return fd;
}

bool same(const std::string& a, const std::string& b, std::uint64_t off, std::uint64_t len, std::string* why) {
  return same_extents(open_ro(a).get(), open_ro(b).get(), off, len, why);
}

std::string name_of(const std::string& path) {
  auto n = content_name(open_ro(path).get());
  if (!n) throw std::runtime_error(n.err().message());
  return *n;
}

void extents_checked_on(const std::string& type, const std::string& opts) {
  scratch_fs fs(type, opts);
  const std::uint64_t size = 1 * MiB;
  write_file(fs.path("a"), size, 3);
  reflink(fs.path("a"), fs.path("b"));
  must({"cp", "--reflink=never", fs.path("a"), fs.path("plain")});
  must({"sync"});
  std::string why;
  EXPECT_TRUE(same(fs.path("a"), fs.path("b"), 0, size, &why)) << why;
  EXPECT_EQ(name_of(fs.path("a")), name_of(fs.path("b")));
  EXPECT_EQ(name_of(fs.path("a")).size(), 16u);
  // Same bytes, other blocks: not the same extents, whatever the contents.
  EXPECT_FALSE(same(fs.path("a"), fs.path("plain"), 0, size, &why));
  EXPECT_EQ(why, "bytes 0..1048576 are not held by the same physical extents");
  EXPECT_NE(name_of(fs.path("a")), name_of(fs.path("plain")));

  // b rewritten at [64 KiB, 128 KiB): the whole range differs; a range after it does not.
  overwrite(fs.path("b"), 64 * KiB, 64 * KiB, 9);
  must({"sync"});
  EXPECT_FALSE(same(fs.path("a"), fs.path("b"), 0, size, &why));
  EXPECT_TRUE(same(fs.path("a"), fs.path("b"), 256 * KiB, 512 * KiB, &why)) << why;
  EXPECT_TRUE(same(fs.path("a"), fs.path("b"), 0, 64 * KiB, &why)) << why;
  EXPECT_NE(name_of(fs.path("a")), name_of(fs.path("b")));

  // Not yet written back (delayed allocation): refused, it has no place yet.
  write_file(fs.path("c"), 0, 1);
  {
    unique_fd w(::open(fs.path("c").c_str(), O_WRONLY | O_CLOEXEC));
    std::string buf(64 * KiB, 'x');
    ASSERT_EQ(pwrite(w.get(), buf.data(), buf.size(), 0), static_cast<ssize_t>(buf.size()));
  }
  EXPECT_FALSE(same(fs.path("c"), fs.path("c"), 0, 64 * KiB, &why));
  EXPECT_NE(why.find("not at a fixed place"), std::string::npos) << why;

  // Preallocated, never written: unwritten extents read as zeros; refused too.
  must({"fallocate", "-l", "1M", fs.path("prealloc")});
  EXPECT_FALSE(same(fs.path("prealloc"), fs.path("prealloc"), 0, size, &why));
  EXPECT_NE(why.find("not at a fixed place"), std::string::npos) << why;
}

TEST(MergeExtents, SameExtentsOnlyForReflinkedWrittenRangesBtrfs) {
  DUPCACHE_REQUIRE_ROOT("mkfs.btrfs");
  extents_checked_on("btrfs", "");
}

TEST(MergeExtents, SameExtentsOnlyForReflinkedWrittenRangesXfs) {
  DUPCACHE_REQUIRE_ROOT("mkfs.xfs");
  extents_checked_on("xfs", "");
}

// Compressed extents are encoded: their pages are not the disk's bytes, so never merged.
TEST(MergeExtents, CompressedExtentsAreRefused) {
  DUPCACHE_REQUIRE_ROOT("mkfs.btrfs");
  scratch_fs fs("btrfs", "compress-force=zstd");
  write_file(fs.path("a"), 1 * MiB, 5, true);
  reflink(fs.path("a"), fs.path("b"));
  must({"sync"});
  std::string why;
  EXPECT_FALSE(same(fs.path("a"), fs.path("b"), 0, 1 * MiB, &why));
  EXPECT_NE(why.find("not at a fixed place (FIEMAP flags"), std::string::npos) << why;
}

TEST(MergeModule, AbsentDeviceSaysNotLoaded) {
  auto m = policy::merge_module::open("/nonexistent/dupcache");
  ASSERT_FALSE(m);
  EXPECT_EQ(m.err().message(), "use the companion module failed: not loaded (/nonexistent/dupcache does not exist)");
  auto dev = policy::merge_module::open("/dev/null");  // a device that is not ours
  ASSERT_FALSE(dev);
  EXPECT_NE(dev.err().reason().find("does not answer DUPCACHE_IOC_VERSION"), std::string::npos) << dev.err().reason();
  EXPECT_EQ(policy::refusal_name(DUPCACHE_R_COW), "cow");
  EXPECT_EQ(policy::refusal_name(DUPCACHE_R_IDENTITY), "identity");
  EXPECT_EQ(policy::refusal_name(99), "reason_99");
  // ABI 1.1's reasons, and dupcache's own ptrace refusal.
  EXPECT_EQ(policy::refusal_name(DUPCACHE_R_STOPPED), "stopped");
  EXPECT_EQ(policy::refusal_name(DUPCACHE_R_PENDING), "pending");
  EXPECT_EQ(policy::refusal_name(DUPCACHE_R_WRITERS), "writers");
  EXPECT_EQ(policy::refusal_name(DUPCACHE_R_CONTENT), "content");
  EXPECT_EQ(policy::refusal_name(DUPCACHE_R_RACED), "raced");
  EXPECT_EQ(policy::refusal_name(policy::refused_ptrace), "ptrace");
}

TEST(MergeModule, AbiKeepsTheFirstLayout) {
  // A 1.1 module still takes 1.0 clients: the first fields stay where they were, and the 1.0
  // ioctl numbers (which encode the first sizes) stay defined.
  static_assert(offsetof(dupcache_merge, flags) == 56);
  static_assert(offsetof(dupcache_merge, pidfd) == DUPCACHE_MERGE_SIZE_V1);
  static_assert(sizeof(dupcache_merge) == DUPCACHE_MERGE_SIZE_V2);
  static_assert(offsetof(dupcache_stats, refused) + DUPCACHE_R_COUNT_V1 * 8 == DUPCACHE_STATS_SIZE_V1);
  static_assert(_IOC_SIZE(DUPCACHE_IOC_MERGE_V1) == DUPCACHE_MERGE_SIZE_V1);
  static_assert(_IOC_NR(DUPCACHE_IOC_MERGE_V1) == _IOC_NR(DUPCACHE_IOC_MERGE));
  SUCCEED();
}

TEST(MergeModule, NoModuleFlagForcesTheFallback) {
  DUPCACHE_REQUIRE_ROOT("mkfs.btrfs");
  scratch_fs fs("btrfs");
  write_file(fs.path("a"), 256 * KiB, 2);
  reflink(fs.path("a"), fs.path("b"));
  read_all(fs.path("a"));
  read_all(fs.path("b"));
  auto r = run({DUPCACHE_BINARY, "merge", "--no-module", "--json", "--pid", std::to_string(getpid()), fs.dir()});
  ASSERT_EQ(r.status, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["fallback"], "--no-module");
  EXPECT_EQ(j["module"], nullptr);
  EXPECT_EQ(j["mapped_copies"], 0);  // this process maps neither copy
  EXPECT_EQ(j["mappings"].size(), 0u);
  auto t = run({DUPCACHE_BINARY, "merge", "--timeout", "0", "--all"});
  EXPECT_EQ(t.status, 2);
  EXPECT_NE(t.err.find("--timeout"), std::string::npos) << t.err;
}

}  // namespace
}  // namespace dupcache::testing
