// SPDX-License-Identifier: GPL-2.0-only
// `dupcache report --content` on real filesystems: overlayfs layers on ext4, plain and
// reflinked copies on btrfs and XFS. Every expected figure comes from the scenario, and the
// residency of every file is compared page by page before and after the report.

#include <fcntl.h>
#include <sys/mount.h>
#include <unistd.h>
#include <sys/stat.h>

#include <map>

#include "fs_fixture.hpp"

namespace dupcache::testing {
namespace {

std::uint64_t ps() { return page_size(); }
std::uint64_t total(const nlohmann::json& r, const char* key) { return r["totals"][key].get<std::uint64_t>(); }
std::uint64_t of_file(const nlohmann::json& r, const std::string& path, const char* key) {
  auto* f = file_entry(r, path);
  return f && f->contains(key) ? (*f)[key].get<std::uint64_t>() : ~0ULL;
}

// An overlayfs mount made by the test, unmounted before the filesystem under it.
class overlay_mount {
 public:
  overlay_mount(const std::string& lower, const std::string& upper, const std::string& work, const std::string& at)
      : at_(at) {
    for (const auto& d : {upper, work, at}) mkdir(d.c_str(), 0755);
    must({"mount", "-t", "overlay", "overlay", "-o", "lowerdir=" + lower + ",upperdir=" + upper + ",workdir=" + work,
          at});
  }
  ~overlay_mount() {
    if (run({"umount", at_}).status != 0) run({"umount", "-l", at_});
  }
  overlay_mount(const overlay_mount&) = delete;
  overlay_mount& operator=(const overlay_mount&) = delete;

 private:
  std::string at_;
};

using residency_map = std::map<std::string, std::vector<unsigned char>>;
residency_map residency_of(const std::vector<std::string>& files) {
  residency_map out;
  for (const auto& f : files) out[f] = residency(f);
  return out;
}
void expect_same_residency(const residency_map& before, const residency_map& after) {
  for (const auto& [path, pages] : before) {
    const auto& now = after.at(path);
    ASSERT_EQ(pages.size(), now.size()) << path;
    for (std::size_t i = 0; i < pages.size(); ++i) {
      EXPECT_EQ(pages[i], now[i]) << path << " page " << i << " changed residency during the report";
    }
  }
}

TEST(ContentOverlay, TwoImagesOnExt4) {
  DUPCACHE_REQUIRE_ROOT("mkfs.ext4");
  scratch_fs fs("ext4");
  const std::uint64_t p = ps();
  for (auto d : {"base", "img1", "img2"}) mkdir(fs.path(d).c_str(), 0755);
  // Two images: the same library (identical bytes, separate files), a data file that differs
  // in one page, and a base layer both stack on (one inode: never a duplicate of itself).
  const std::uint64_t lib = 1 * MiB, near = 256 * KiB, common = 128 * KiB, partial = 1 * MiB;
  write_file(fs.path("img1/lib.so"), lib, 1);
  write_file(fs.path("img2/lib.so"), lib, 1);
  write_file(fs.path("img1/near.bin"), near, 2);
  write_file(fs.path("img2/near.bin"), near, 2);
  overwrite(fs.path("img2/near.bin"), 10 * p, p, 9);
  write_file(fs.path("base/common.bin"), common, 3);
  write_file(fs.path("img1/partial.bin"), partial, 4);
  write_file(fs.path("img2/partial.bin"), partial, 4);
  sync();
  overlay_mount o1(fs.path("img1") + ":" + fs.path("base"), fs.path("u1"), fs.path("w1"), fs.path("m1"));
  overlay_mount o2(fs.path("img2") + ":" + fs.path("base"), fs.path("u2"), fs.path("w2"), fs.path("m2"));
  const std::vector<std::string> real{fs.path("img1/lib.so"),     fs.path("img2/lib.so"),   fs.path("img1/near.bin"),
                                      fs.path("img2/near.bin"),   fs.path("base/common.bin"), fs.path("img1/partial.bin"),
                                      fs.path("img2/partial.bin")};
  for (const auto& f : real) evict(f);
  for (const auto* m : {"m1", "m2"}) {
    read_all(fs.path(std::string(m) + "/lib.so"));
    read_all(fs.path(std::string(m) + "/near.bin"));
    read_all(fs.path(std::string(m) + "/common.bin"));
  }
  // Partly cached: pages [0, 8) and [100, 104) through m1, [4, 12) through m2: equal pages at
  // [4, 8) only; the pages around them must stay uncached.
  read_range(fs.path("m1/partial.bin"), 0, 8 * p);
  read_range(fs.path("m1/partial.bin"), 100 * p, 4 * p);
  read_range(fs.path("m2/partial.bin"), 4 * p, 8 * p);
  ASSERT_EQ(cached_pages(fs.path("img1/lib.so")), lib / p) << "reads through an overlay cache the layer's file";
  ASSERT_EQ(cached_pages(fs.path("img1/partial.bin")), 12u);
  ASSERT_EQ(cached_pages(fs.path("img2/partial.bin")), 8u);
  const auto before = residency_of(real);

  auto r = report_json({"--content", fs.path("m1"), fs.path("m2")});
  expect_same_residency(before, residency_of(real));

  // lib.so: every page twice; near.bin: all but one page; partial.bin: pages [4, 8).
  const std::uint64_t expected = lib + (near - p) + 4 * p;
  EXPECT_EQ(total(r, "content_wasted_bytes"), expected);
  EXPECT_EQ(total(r, "wasted_bytes"), 0u) << "ext4 shares no extent";
  EXPECT_EQ(total(r, "content_shareable_bytes"), expected);
  EXPECT_EQ(r["what_if"]["content_sharing_saves_bytes"], expected);
  EXPECT_EQ(r["content"]["hash_collisions"], 0);
  // The copy whose path sorts first keeps the content; the other carries the waste.
  EXPECT_EQ(of_file(r, fs.path("img1/lib.so"), "content_wasted_bytes"), 0u);
  EXPECT_EQ(of_file(r, fs.path("img2/lib.so"), "content_wasted_bytes"), lib);
  EXPECT_EQ(of_file(r, fs.path("img2/lib.so"), "content_duplicate_bytes"), lib);
  EXPECT_EQ(of_file(r, fs.path("img2/near.bin"), "content_wasted_bytes"), near - p);
  EXPECT_EQ(of_file(r, fs.path("img1/near.bin"), "content_duplicate_bytes"), near - p);
  EXPECT_EQ(of_file(r, fs.path("img2/partial.bin"), "content_wasted_bytes"), 4 * p);
  // The base layer's file, read through both overlays, is one inode in one place.
  EXPECT_EQ(of_file(r, fs.path("base/common.bin"), "content_wasted_bytes"), 0u);
  EXPECT_EQ(of_file(r, fs.path("base/common.bin"), "cached_bytes"), common);
  // Identical files: lib.so only (near.bin differs, partial.bin is partly cached).
  ASSERT_EQ(r["content_groups"].size(), 1u) << r["content_groups"].dump();
  EXPECT_EQ(r["content_groups"][0]["copies"], 2);
  EXPECT_EQ(r["content_groups"][0]["bytes_per_copy"], lib);
  EXPECT_EQ(r["content_groups"][0]["wasted_bytes"], lib);
  std::uint64_t fs_sum = 0;
  for (const auto& f : r["filesystems"]) fs_sum += f["content_wasted_bytes"].get<std::uint64_t>();
  EXPECT_EQ(fs_sum, expected);

  // The text says what the walk did with the overlays.
  auto t = run({DUPCACHE_BINARY, "report", "--content", "--bytes", fs.path("m1"), fs.path("m2")});
  EXPECT_EQ(t.status, 0) << t.err;
  EXPECT_NE(t.out.find("CONTENT DUPLICATES: " + std::to_string(expected) + " wasted"), std::string::npos) << t.out;
  EXPECT_NE(t.out.find("what if: a page cache shared by content"), std::string::npos) << t.out;
  EXPECT_NE(t.out.find(fs.path("m1") + " is on overlayfs; read through its layers"), std::string::npos) << t.out;
}

// Plain copies (separate extents) are content waste; a reflinked copy is shared-extent waste
// and is not counted again as content.
void copies_on(const std::string& type) {
  scratch_fs fs(type);
  const std::uint64_t size = 1 * MiB;
  write_file(fs.path("a"), size, 5);
  write_file(fs.path("b"), size, 5);  // the same bytes, written again: its own extents
  reflink(fs.path("a"), fs.path("c"));
  const std::vector<std::string> files{fs.path("a"), fs.path("b"), fs.path("c"), fs.path("d")};
  write_file(fs.path("d"), 8 * MiB, 6);
  for (const auto& f : files) evict(f);
  for (const auto& f : files) read_all(f);
  // d: an ordinary read of its start, so the kernel's readahead leaves a window with a
  // PG_readahead marker; touching the marked page the wrong way would read further.
  evict(fs.path("d"));
  // A page held at that moment (isolated by reclaim, say) is skipped by the eviction, and a read
  // that hits it starts no readahead (seen once in CI: 4 pages cached): evict until none is left.
  for (int i = 0; i < 20 && cached_pages(fs.path("d")) != 0; ++i) {
    usleep(50000);
    evict(fs.path("d"));
  }
  ASSERT_EQ(cached_pages(fs.path("d")), 0u) << "the scenario starts with d uncached";
  {
    const int fd = open(fs.path("d").c_str(), O_RDONLY | O_CLOEXEC);
    ASSERT_GE(fd, 0);
    std::vector<char> buf(4 * ps());
    ASSERT_EQ(pread(fd, buf.data(), buf.size(), 0), static_cast<ssize_t>(buf.size()));
    close(fd);
  }
  const std::uint64_t d_cached = cached_pages(fs.path("d"));
  ASSERT_GT(d_cached, 4u) << "the scenario needs readahead";
  ASSERT_LT(d_cached, 8 * MiB / ps());
  const auto before = residency_of(files);

  auto r = report_json({"--content", fs.dir()});
  expect_same_residency(before, residency_of(files));
  EXPECT_EQ(total(r, "wasted_bytes"), size) << "c shares a's extents";
  EXPECT_EQ(total(r, "content_wasted_bytes"), size) << "b is one more place with the same bytes, c is not";
  EXPECT_EQ(total(r, "content_shareable_bytes"), 2 * size);
  EXPECT_EQ(of_file(r, fs.path("b"), "content_wasted_bytes"), size);
  EXPECT_EQ(of_file(r, fs.path("c"), "content_wasted_bytes"), 0u);
  ASSERT_EQ(r["content_groups"].size(), 1u);
  EXPECT_EQ(r["content_groups"][0]["copies"], 3);
  EXPECT_EQ(r["content_groups"][0]["wasted_bytes"], size);
  // Without --content the document has none of the content keys.
  auto plain = report_json({fs.dir()});
  EXPECT_FALSE(plain["totals"].contains("content_wasted_bytes"));
  EXPECT_FALSE(plain.contains("content_groups"));
}

TEST(ContentBtrfs, PlainAndReflinkedCopies) {
  DUPCACHE_REQUIRE_ROOT("mkfs.btrfs");
  copies_on("btrfs");
}

TEST(ContentXfs, PlainAndReflinkedCopies) {
  DUPCACHE_REQUIRE_ROOT("mkfs.xfs");
  copies_on("xfs");
}

}  // namespace
}  // namespace dupcache::testing
