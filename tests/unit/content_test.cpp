// SPDX-License-Identifier: GPL-2.0-only
// find_content_duplicates() with pages in memory: equal bytes make a duplicate, equal hashes
// alone never do, and a physical place cached by several inodes counts once.

#include <gtest/gtest.h>

#include <cstring>
#include <map>

#include "scan/content.hpp"
#include "scan/content_roots.hpp"

namespace dupcache {
namespace {

constexpr std::uint64_t ps = 4096;

// Every page collides.
class constant_hasher final : public page_hasher {
 public:
  std::uint64_t hash(std::span<const std::byte>) const override { return 42; }
};

// Pages made from a byte value, per (copy, page); a missing one is "not cached any more".
class memory_source final : public page_source {
 public:
  std::map<std::pair<copy_id, std::uint64_t>, unsigned char> fill;
  bool read(copy_id c, std::uint64_t page, std::span<std::byte> out) override {
    auto it = fill.find({c, page});
    if (it == fill.end()) return false;
    std::memset(out.data(), it->second, out.size());
    return true;
  }
};

std::vector<std::byte> page_of(unsigned char v) { return std::vector<std::byte>(ps, std::byte{v}); }

struct scenario {
  content_pages pages;
  memory_source source;
  // Adds a page of `copy` holding bytes `v`, at physical place `phys` of domain 0 (or none).
  void add(copy_id copy, std::uint64_t page, unsigned char v, const page_hasher& h, std::int64_t phys = -1) {
    if (pages.by_copy.size() <= copy) pages.by_copy.resize(copy + 1);
    if (pages.domains.empty()) pages.domains.push_back("fs");
    const auto bytes = page_of(v);
    pages.by_copy[copy].push_back({page, h.hash(bytes), phys < 0 ? -1 : 0, phys < 0 ? 0 : static_cast<std::uint64_t>(phys)});
    source.fill[{copy, page}] = v;
  }
};

void build(scenario& s, const page_hasher& h) {
  // copy 0: pages A B C; copy 1: A B D (a near copy); copy 2: C; copy 3: X.
  s.add(0, 0, 'A', h);
  s.add(0, 1, 'B', h);
  s.add(0, 2, 'C', h);
  s.add(1, 0, 'A', h);
  s.add(1, 1, 'B', h);
  s.add(1, 2, 'D', h);
  s.add(2, 0, 'C', h);
  s.add(3, 0, 'X', h);
}

TEST(Content, EqualBytesAreDuplicates) {
  xxh3_hasher h;
  scenario s;
  build(s, h);
  auto r = find_content_duplicates(s.pages, s.source, ps, {});
  // A twice, B twice, C twice: three pages of waste.
  EXPECT_EQ(r.wasted_bytes, 3 * ps);
  EXPECT_EQ(r.hash_collisions, 0u);
  EXPECT_EQ(r.copy_wasted_bytes[0], 0u);
  EXPECT_EQ(r.copy_wasted_bytes[1], 2 * ps);
  EXPECT_EQ(r.copy_wasted_bytes[2], ps);
  EXPECT_EQ(r.duplicate_bytes[0], 3 * ps);
  EXPECT_EQ(r.duplicate_bytes[3], 0u);
}

TEST(Content, ForcedHashCollisionsNeverMakeDuplicates) {
  constant_hasher h;
  scenario s;
  build(s, h);
  auto r = find_content_duplicates(s.pages, s.source, ps, {});
  EXPECT_EQ(r.wasted_bytes, 3 * ps) << "the same answer as with a real hash";
  EXPECT_EQ(r.copy_wasted_bytes[1], 2 * ps);
  EXPECT_EQ(r.copy_wasted_bytes[3], 0u) << "X collides with everything and equals nothing";
  EXPECT_EQ(r.pages_compared, 8u);
  // One bucket holding five different contents: four of them were collisions.
  EXPECT_EQ(r.hash_collisions, 4u);
  EXPECT_NE(r.classes[0][2], r.classes[1][2]) << "C and D differ";
  EXPECT_EQ(r.classes[0][2], r.classes[2][0]);
}

TEST(Content, OnePhysicalPlaceCountsOnce) {
  constant_hasher h;
  scenario s;
  // copies 0 and 1 cache the same physical page (reflinks): shared-extent waste, not content.
  s.add(0, 0, 'A', h, 0);
  s.add(1, 0, 'A', h, 0);
  // copy 2 holds the same bytes elsewhere: one more place, one page of content waste.
  s.add(2, 0, 'A', h, 8192);
  auto r = find_content_duplicates(s.pages, s.source, ps, {});
  EXPECT_EQ(r.wasted_bytes, ps);
  EXPECT_EQ(r.copy_wasted_bytes[1], 0u);
  EXPECT_EQ(r.copy_wasted_bytes[2], ps);
  EXPECT_EQ(r.classes[1][0], r.classes[0][0]) << "a shared place takes its content's class";
}

TEST(Content, RankDecidesWhichCopyKeepsAndGonePagesCountNothing) {
  xxh3_hasher h;
  scenario s;
  s.add(0, 0, 'A', h);
  s.add(1, 0, 'A', h);
  s.add(2, 0, 'A', h);
  s.source.fill.erase({2, 0});  // evicted before the comparison
  auto r = find_content_duplicates(s.pages, s.source, ps, {2, 1, 0});
  EXPECT_EQ(r.wasted_bytes, ps);
  EXPECT_EQ(r.copy_wasted_bytes[0], ps) << "copy 1 ranks first among the two still cached";
  EXPECT_EQ(r.copy_wasted_bytes[1], 0u);
  EXPECT_EQ(r.pages_gone, 1u);
}

TEST(ContentRoots, OverlayLayersFromMountOptions) {
  using v = std::vector<std::string>;
  EXPECT_EQ(overlay_layers("rw,lowerdir=/l1:/l2,upperdir=/u,workdir=/w,uuid=on"), (v{"/u", "/l1", "/l2"}));
  EXPECT_EQ(overlay_layers("ro,lowerdir=/a\\:b:/c,redirect_dir=on"), (v{"/a:b", "/c"}));
  EXPECT_EQ(overlay_layers("rw,lowerdir+=/l1,lowerdir+=/l2,datadir+=/d,upperdir=/u,workdir=/w"),
            (v{"/u", "/l1", "/l2", "/d"}));
  EXPECT_TRUE(overlay_layers("rw,relatime").empty());
}

TEST(ContentRoots, LocalBlockFilesystemsOncePerDevice) {
  std::vector<mount_entry> m(5);
  m[0] = {1, 0, 8, 1, "/", "/", "rw", "ext4", "/dev/sda1", "rw"};
  m[1] = {2, 1, 8, 1, "/var/lib", "/mnt/bind", "rw", "ext4", "/dev/sda1", "rw"};
  m[2] = {3, 1, 0, 30, "/", "/tmp", "rw", "tmpfs", "tmpfs", "rw"};
  m[3] = {4, 1, 0, 40, "/", "/merged", "rw", "overlay", "overlay", "rw,lowerdir=/l"};
  m[4] = {5, 1, 8, 2, "/", "/data", "rw", "xfs", "/dev/sda2", "rw"};
  auto chosen = local_fs_mounts(m);
  ASSERT_EQ(chosen.size(), 2u);
  EXPECT_EQ(chosen[0].mount_point, "/");
  EXPECT_EQ(chosen[1].mount_point, "/data");
  auto roots = resolve_content_roots({}, m);
  EXPECT_EQ(roots.paths, (std::vector<std::string>{"/", "/data"}));
  ASSERT_EQ(roots.notes.size(), 1u);
  EXPECT_NE(roots.notes[0].find("not walked: 1 overlay, 1 tmpfs mount(s)"), std::string::npos) << roots.notes[0];
}

}  // namespace
}  // namespace dupcache
