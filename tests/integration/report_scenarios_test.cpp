// SPDX-License-Identifier: GPL-2.0-only
// `dupcache report` on real filesystems: every expected number is computed from the scenario.

#include <fcntl.h>
#include <linux/fiemap.h>
#include <sys/stat.h>
#include <unistd.h>

#include <map>
#include <set>

#include "fs_fixture.hpp"

namespace dupcache::testing {
namespace {

std::uint64_t ps() { return page_size(); }
std::uint64_t wasted(const nlohmann::json& r) { return r["totals"]["wasted_bytes"].get<std::uint64_t>(); }
std::uint64_t cached(const nlohmann::json& r) { return r["totals"]["cached_bytes"].get<std::uint64_t>(); }
std::uint64_t shared_of(const nlohmann::json& r, const std::string& p) {
  auto* f = file_entry(r, p);
  return f ? (*f)["shared_cached_bytes"].get<std::uint64_t>() : ~0ULL;
}

// Runs the report twice, with and without the SHARED-flag shortcut, and checks they agree.
nlohmann::json report_both(const std::string& dir) {
  auto fast = report_json({dir});
  auto full = report_json({"--all-extents", dir});
  EXPECT_EQ(wasted(fast), wasted(full)) << "the SHARED flag shortcut changed the result";
  EXPECT_EQ(cached(fast), cached(full));
  return fast;
}

void n_reflink_copies(const std::string& type) {
  scratch_fs fs(type);
  constexpr int n = 4;
  const std::uint64_t size = 4 * MiB;
  write_file(fs.path("f0"), size, 1);
  for (int i = 1; i < n; ++i) reflink(fs.path("f0"), fs.path("f" + std::to_string(i)));
  for (int i = 0; i < n; ++i) evict(fs.path("f" + std::to_string(i)));
  for (int i = 0; i < n; ++i) read_all(fs.path("f" + std::to_string(i)));
  for (int i = 0; i < n; ++i) ASSERT_EQ(cached_pages(fs.path("f" + std::to_string(i))), size / ps());

  auto r = report_both(fs.dir());
  EXPECT_EQ(cached(r), n * size);
  EXPECT_EQ(wasted(r), (n - 1) * size);
  EXPECT_EQ(r["totals"]["files_scanned"], n);
  EXPECT_EQ(r["totals"]["files_cached"], n);
  for (int i = 0; i < n; ++i) EXPECT_EQ(shared_of(r, fs.path("f" + std::to_string(i))), size);
  ASSERT_EQ(r["groups"].size(), 1u);
  EXPECT_EQ(r["groups"][0]["copies"], n);
  EXPECT_EQ(r["groups"][0]["bytes_per_copy"], size);
  // The split of the waste among copies adds up to the total.
  std::uint64_t parts = 0;
  for (const auto& f : r["files"]) parts += f["wasted_bytes"].get<std::uint64_t>();
  EXPECT_EQ(parts, wasted(r));
}

TEST(ReportBtrfs, ReflinkCopiesFullyRead) {
  DUPCACHE_REQUIRE_ROOT("mkfs.btrfs");
  n_reflink_copies("btrfs");
}

TEST(ReportXfs, ReflinkCopiesFullyRead) {
  DUPCACHE_REQUIRE_ROOT("mkfs.xfs");
  n_reflink_copies("xfs");
}

// More files than one walker hands over at a time (256), on two walker threads and on one:
// every file counted once, every cached byte and the waste of 300 reflinks of one page.
TEST(ReportBtrfs, ManyFilesOverManyWalkerBatches) {
  DUPCACHE_REQUIRE_ROOT("mkfs.btrfs");
  scratch_fs fs("btrfs");
  constexpr int dirs = 3, per_dir = 700, clones = 300;
  std::uint64_t cached_files = 0;
  for (int d = 0; d < dirs; ++d) {
    ASSERT_EQ(::mkdir(fs.path("d" + std::to_string(d)).c_str(), 0755), 0);
    for (int i = 0; i < per_dir; ++i) {
      const std::string f = fs.path("d" + std::to_string(d) + "/f" + std::to_string(i));
      write_file(f, ps(), static_cast<std::uint32_t>(d * per_dir + i + 1));
    }
  }
  write_file(fs.path("src"), ps(), 7);
  ASSERT_EQ(::mkdir(fs.path("r").c_str(), 0755), 0);
  for (int i = 0; i < clones; ++i) reflink(fs.path("src"), fs.path("r/c" + std::to_string(i)));
  ::sync();
  for (int d = 0; d < dirs; ++d) {
    for (int i = 0; i < per_dir; ++i) {
      const std::string f = fs.path("d" + std::to_string(d) + "/f" + std::to_string(i));
      evict(f);
      if (i % 3 != 0) {
        read_all(f);
        ++cached_files;
      }
    }
  }
  evict(fs.path("src"));
  read_all(fs.path("src"));
  for (int i = 0; i < clones; ++i) read_all(fs.path("r/c" + std::to_string(i)));
  ASSERT_EQ(cached_files, 3u * (700 - 234));  // i % 3 != 0 of 0..699: 466 a directory
  cached_files += clones + 1;
  for (const char* jobs : {"2", "1"}) {
    SCOPED_TRACE(std::string("-j ") + jobs);
    auto r = report_json({"-j", jobs, fs.dir()});
    EXPECT_EQ(r["totals"]["files_scanned"], dirs * per_dir + clones + 1);
    EXPECT_EQ(r["totals"]["files_cached"], cached_files);
    EXPECT_EQ(cached(r), cached_files * ps());
    EXPECT_EQ(wasted(r), clones * ps());
    ASSERT_EQ(r["files"].size(), cached_files);
    std::uint64_t sum = 0;
    std::set<std::string> paths;
    for (const auto& f : r["files"]) {
      sum += f["cached_bytes"].get<std::uint64_t>();
      paths.insert(f["path"].get<std::string>());
    }
    EXPECT_EQ(sum, cached_files * ps());
    EXPECT_EQ(paths.size(), cached_files);
    ASSERT_EQ(r["groups"].size(), 1u);
    EXPECT_EQ(r["groups"][0]["copies"], clones + 1);
    ASSERT_EQ(r["filesystems"].size(), 1u);
    EXPECT_EQ(r["filesystems"][0]["files_scanned"], dirs * per_dir + clones + 1);
    EXPECT_EQ(r["filesystems"][0]["files_cached"], cached_files);
    EXPECT_EQ(r["filesystems"][0]["cached_bytes"], cached_files * ps());
  }
}

TEST(ReportBtrfs, PartlyOverlappingRanges) {
  DUPCACHE_REQUIRE_ROOT("mkfs.btrfs");
  scratch_fs fs("btrfs");
  const std::uint64_t size = 1 * MiB;  // 256 pages of 4 KiB
  write_file(fs.path("a"), size, 2);
  reflink(fs.path("a"), fs.path("b"));
  reflink(fs.path("a"), fs.path("c"));
  for (auto n : {"a", "b", "c"}) evict(fs.path(n));
  const std::uint64_t p = ps();
  read_range(fs.path("a"), 0, 128 * p);         // pages [0, 128)
  read_range(fs.path("b"), 64 * p, 128 * p);    // pages [64, 192)
  read_range(fs.path("c"), 160 * p, 96 * p);    // pages [160, 256)
  ASSERT_EQ(cached_pages(fs.path("a")), 128u);
  ASSERT_EQ(cached_pages(fs.path("b")), 128u);
  ASSERT_EQ(cached_pages(fs.path("c")), 96u);

  auto r = report_both(fs.dir());
  // a∩b = [64,128): 64 pages; b∩c = [160,192): 32 pages; a∩c is empty.
  EXPECT_EQ(wasted(r), (64 + 32) * p);
  EXPECT_EQ(cached(r), (128 + 128 + 96) * p);
  EXPECT_EQ(shared_of(r, fs.path("a")), 64 * p);
  EXPECT_EQ(shared_of(r, fs.path("b")), 96 * p);
  EXPECT_EQ(shared_of(r, fs.path("c")), 32 * p);
}

TEST(ReportBtrfs, SnapshotsWithEqualInodeNumbers) {
  DUPCACHE_REQUIRE_ROOT("mkfs.btrfs", "btrfs");
  scratch_fs fs("btrfs");
  must({"btrfs", "-q", "subvolume", "create", fs.path("vol")});
  const std::uint64_t size = 2 * MiB;
  write_file(fs.path("vol/lib.so"), size, 3);
  must({"btrfs", "-q", "subvolume", "snapshot", fs.path("vol"), fs.path("snap1")});
  must({"btrfs", "-q", "subvolume", "snapshot", fs.path("vol"), fs.path("snap2")});
  const std::vector<std::string> copies{fs.path("vol/lib.so"), fs.path("snap1/lib.so"), fs.path("snap2/lib.so")};
  struct stat s0 {}, s1 {};
  ASSERT_EQ(stat(copies[0].c_str(), &s0), 0);
  ASSERT_EQ(stat(copies[1].c_str(), &s1), 0);
  ASSERT_EQ(s0.st_ino, s1.st_ino) << "the scenario needs equal inode numbers across snapshots";
  for (const auto& c : copies) evict(c);
  for (const auto& c : copies) read_all(c);

  auto r = report_both(fs.dir());
  EXPECT_EQ(r["totals"]["files_cached"], 3);
  EXPECT_EQ(cached(r), 3 * size);
  EXPECT_EQ(wasted(r), 2 * size);
  std::set<std::uint64_t> subvols;
  for (const auto& c : copies) {
    auto* f = file_entry(r, c);
    ASSERT_NE(f, nullptr) << c;
    EXPECT_EQ((*f)["ino"], s0.st_ino);
    subvols.insert((*f)["subvol"].get<std::uint64_t>());
  }
  EXPECT_EQ(subvols.size(), 3u) << "each snapshot is its own subvolume";
}

TEST(ReportBtrfs, OverwriteBreaksSharing) {
  DUPCACHE_REQUIRE_ROOT("mkfs.btrfs");
  scratch_fs fs("btrfs");
  const std::uint64_t p = ps();
  write_file(fs.path("a"), 256 * p, 4);
  reflink(fs.path("a"), fs.path("b"));
  overwrite(fs.path("b"), 0, 64 * p, 99);  // COW: b's first 64 pages get new extents
  for (auto n : {"a", "b"}) evict(fs.path(n));
  for (auto n : {"a", "b"}) read_all(fs.path(n));
  auto r = report_both(fs.dir());
  EXPECT_EQ(cached(r), 512 * p);
  EXPECT_EQ(wasted(r), (256 - 64) * p);
  EXPECT_EQ(shared_of(r, fs.path("a")), 192 * p);
  EXPECT_EQ(shared_of(r, fs.path("b")), 192 * p);
}

TEST(ReportXfs, OverwriteBreaksSharing) {
  DUPCACHE_REQUIRE_ROOT("mkfs.xfs");
  scratch_fs fs("xfs");
  const std::uint64_t p = ps();
  write_file(fs.path("a"), 256 * p, 4);
  reflink(fs.path("a"), fs.path("b"));
  overwrite(fs.path("b"), 128 * p, 32 * p, 99);
  for (auto n : {"a", "b"}) evict(fs.path(n));
  for (auto n : {"a", "b"}) read_all(fs.path(n));
  auto r = report_both(fs.dir());
  EXPECT_EQ(wasted(r), (256 - 32) * p);
}

// Compressed extents: FIEMAP names the start of the compressed extent, not where a clone's bytes
// sit inside it, so clones of different sub-ranges would look alike. Never a duplicate.
TEST(ReportBtrfs, CompressedClonesOfSubRangesAreNeverDuplicates) {
  DUPCACHE_REQUIRE_ROOT("mkfs.btrfs");
  scratch_fs fs("btrfs", "compress-force=zstd");
  const std::uint64_t p = ps();
  write_file(fs.path("a"), 1 * MiB, 5, /*compressible=*/true);
  clone_range(fs.path("a"), 0, 16 * p, fs.path("b"), 0);        // a's pages [0,16)
  clone_range(fs.path("a"), 16 * p, 16 * p, fs.path("c"), 0);   // a's pages [16,32), same extent
  reflink(fs.path("a"), fs.path("d"));
  for (auto n : {"a", "b", "c", "d"}) {
    for (auto f : extent_flags(fs.path(n))) ASSERT_TRUE(f & FIEMAP_EXTENT_ENCODED) << n << " is not compressed";
    evict(fs.path(n));
  }
  for (auto n : {"a", "b", "c", "d"}) read_all(fs.path(n));
  auto r = report_both(fs.dir());
  EXPECT_EQ(cached(r), (256 + 16 + 16 + 256) * p);
  EXPECT_EQ(wasted(r), 0u);
}

TEST(ReportBtrfs, HolesAreCachedButNeverShared) {
  DUPCACHE_REQUIRE_ROOT("mkfs.btrfs");
  scratch_fs fs("btrfs");
  const std::uint64_t p = ps();
  // 256 data pages, a 256-page hole, 256 data pages.
  write_file(fs.path("a"), 256 * p, 6);
  {
    std::vector<char> tail(256 * p, 'x');
    int fd = open(fs.path("a").c_str(), O_WRONLY);
    ASSERT_EQ(pwrite(fd, tail.data(), tail.size(), static_cast<off_t>(512 * p)), static_cast<ssize_t>(tail.size()));
    fsync(fd);
    close(fd);
  }
  reflink(fs.path("a"), fs.path("b"));
  for (auto n : {"a", "b"}) evict(fs.path(n));
  for (auto n : {"a", "b"}) read_all(fs.path(n));
  ASSERT_EQ(cached_pages(fs.path("a")), 768u);
  auto r = report_both(fs.dir());
  EXPECT_EQ(cached(r), 2 * 768 * p);
  EXPECT_EQ(wasted(r), 512 * p);
}

TEST(ReportBtrfs, InlineFilesShareNothing) {
  DUPCACHE_REQUIRE_ROOT("mkfs.btrfs");
  scratch_fs fs("btrfs");
  write_file(fs.path("tiny"), 100, 7);
  reflink(fs.path("tiny"), fs.path("tiny2"));
  for (auto n : {"tiny", "tiny2"}) {
    auto flags = extent_flags(fs.path(n));
    ASSERT_EQ(flags.size(), 1u);
    ASSERT_TRUE(flags[0] & FIEMAP_EXTENT_DATA_INLINE) << n << " is not inline";
    evict(fs.path(n));
    read_all(fs.path(n));
  }
  auto r = report_both(fs.dir());
  EXPECT_EQ(cached(r), 2 * ps());
  EXPECT_EQ(wasted(r), 0u);
}

// Preallocated, never written: both inodes read zeros from the same unwritten extent; the
// pages are identical and come from one physical place, so they are duplicates.
TEST(ReportBtrfs, SharedPreallocatedRangeIsDuplicated) {
  DUPCACHE_REQUIRE_ROOT("mkfs.btrfs");
  scratch_fs fs("btrfs");
  const std::uint64_t p = ps();
  {
    int fd = open(fs.path("a").c_str(), O_RDWR | O_CREAT, 0644);
    ASSERT_EQ(fallocate(fd, 0, 0, static_cast<off_t>(64 * p)), 0);
    fsync(fd);
    close(fd);
  }
  reflink(fs.path("a"), fs.path("b"));
  for (auto n : {"a", "b"}) {
    for (auto f : extent_flags(fs.path(n))) ASSERT_TRUE(f & FIEMAP_EXTENT_UNWRITTEN);
    evict(fs.path(n));
    read_all(fs.path(n));
  }
  auto r = report_both(fs.dir());
  EXPECT_EQ(cached(r), 128 * p);
  EXPECT_EQ(wasted(r), 64 * p);
}

// A file still being written: dirty pages may already differ from the blocks they cover, and
// delalloc ranges have no address yet. Neither counts as shared; both count as cached.
TEST(ReportBtrfs, DirtyAndDelallocPagesAreNotShared) {
  DUPCACHE_REQUIRE_ROOT("mkfs.btrfs");
  scratch_fs fs("btrfs");
  const std::uint64_t p = ps();
  write_file(fs.path("a"), 64 * p, 8);
  reflink(fs.path("a"), fs.path("b"));
  for (auto n : {"a", "b"}) evict(fs.path(n));
  read_all(fs.path("a"));
  read_all(fs.path("b"));
  overwrite(fs.path("b"), 0, 16 * p, 77);  // dirty, not yet written back
  {
    // A new file with no blocks yet (delalloc).
    int fd = open(fs.path("new").c_str(), O_WRONLY | O_CREAT, 0644);
    std::vector<char> buf(32 * p, 'n');
    ASSERT_EQ(write(fd, buf.data(), buf.size()), static_cast<ssize_t>(buf.size()));
    close(fd);
  }
  auto r = report_both(fs.dir());
  EXPECT_EQ(cached(r), (64 + 64 + 32) * p);
  EXPECT_EQ(wasted(r), (64 - 16) * p);
  auto* b = file_entry(r, fs.path("b"));
  ASSERT_NE(b, nullptr);
  EXPECT_EQ((*b)["dirty_bytes"], 16 * p);
  EXPECT_EQ(shared_of(r, fs.path("new")), 0u);
  must({"sync"});
}

TEST(ReportBtrfs, HardlinksAndBindMountsAreOneCopy) {
  DUPCACHE_REQUIRE_ROOT("mkfs.btrfs");
  scratch_fs fs("btrfs");
  const std::uint64_t p = ps();
  mkdir(fs.path("d1").c_str(), 0755);
  mkdir(fs.path("d2").c_str(), 0755);
  mkdir(fs.path("bind").c_str(), 0755);
  write_file(fs.path("d1/f"), 64 * p, 9);
  ASSERT_EQ(link(fs.path("d1/f").c_str(), fs.path("d2/f-link").c_str()), 0);
  must({"mount", "--bind", fs.path("d1"), fs.path("bind")});
  evict(fs.path("d1/f"));
  read_all(fs.path("bind/f"));
  auto r = report_json({"--cross-mounts", fs.dir(), fs.path("bind"), fs.path("d2/f-link")});
  run({"umount", fs.path("bind")});
  EXPECT_EQ(wasted(r), 0u);
  EXPECT_EQ(cached(r), 64 * p);
  EXPECT_EQ(r["totals"]["files_scanned"], 1);
  EXPECT_EQ(r["totals"]["files_cached"], 1);
  EXPECT_GE(r["skipped"]["repeated_inodes"].get<int>(), 1);
}

// How container runtimes mount their storage: Podman and Docker bind-mount their btrfs
// directory onto itself, and put mounts of other filesystems (tmpfs, overlay) below it. The
// walk enters every mount of the filesystem it walks, with no option, counts each inode once
// however many mounts reach it, and says which mounts of other filesystems it left out.
TEST(ReportBtrfs, StorageBindMountedOntoItselfIsWalked) {
  DUPCACHE_REQUIRE_ROOT("mkfs.btrfs");
  scratch_fs fs("btrfs");
  const std::uint64_t size = 1 * MiB;
  for (const char* d : {"storage", "storage/btrfs", "storage/btrfs/a", "storage/btrfs/b", "storage/shm", "again"}) {
    ASSERT_EQ(mkdir(fs.path(d).c_str(), 0755), 0) << d;
  }
  write_file(fs.path("storage/btrfs/a/lib.so"), size, 21);
  reflink(fs.path("storage/btrfs/a/lib.so"), fs.path("storage/btrfs/b/lib.so"));
  must({"mount", "--bind", fs.path("storage/btrfs"), fs.path("storage/btrfs")});
  must({"mount", "--make-private", fs.path("storage/btrfs")});
  must({"mount", "--bind", fs.path("storage/btrfs/a"), fs.path("again")});  // a second way in
  must({"mount", "-t", "tmpfs", "-o", "size=4m", "dupcache-test", fs.path("storage/shm")});
  write_file(fs.path("storage/shm/seg"), 64 * KiB, 22);
  struct unmount {
    const scratch_fs& fs;
    ~unmount() {
      for (const char* d : {"storage/shm", "again", "storage/btrfs"}) run({"umount", fs.path(d)});
    }
  } cleanup{fs};
  for (const char* f : {"storage/btrfs/a/lib.so", "storage/btrfs/b/lib.so"}) {
    evict(fs.path(f));
    read_all(fs.path(f));
  }
  for (const std::string& where : {fs.dir(), fs.path("storage")}) {
    auto r = report_json({where});
    EXPECT_EQ(wasted(r), size) << where;
    EXPECT_EQ(cached(r), 2 * size) << where;
    EXPECT_EQ(r["totals"]["files_cached"], 2) << where;
    EXPECT_GE(r["skipped"]["same_fs_mounts_walked"].get<int>(), 1) << where;
    ASSERT_EQ(r["skipped"]["mounts"].size(), 1u) << r["skipped"].dump();
    EXPECT_EQ(r["skipped"]["mounts"][0]["path"], fs.path("storage/shm"));
    EXPECT_EQ(r["skipped"]["mounts"][0]["type"], "tmpfs");
  }
  // The text names what was left out and how to include it, in one line.
  auto text = run({DUPCACHE_BINARY, "report", fs.dir()});
  ASSERT_EQ(text.status, 0) << text.err;
  EXPECT_NE(text.out.find("note: 1 mount(s) of other filesystems not entered: " + fs.path("storage/shm") +
                          " (tmpfs); name them as PATHs or add --cross-mounts\n"),
            std::string::npos)
      << text.out;
  // --cross-mounts enters the tmpfs too: its cached page counts, nothing more is shared.
  auto all = report_json({"--cross-mounts", fs.dir()});
  EXPECT_EQ(wasted(all), size);
  EXPECT_EQ(cached(all), 2 * size + 64 * KiB);
  EXPECT_EQ(all["skipped"]["mounts"].size(), 0u);
}

// With no PATH every filesystem is a root of its own. One mounted inside another (here through
// a bind mount of it) is walked from its own root, whichever walk meets it first, and is not
// reported as left out.
TEST(ReportBtrfs, NoPathWalksAFilesystemMountedInsideAnother) {
  DUPCACHE_REQUIRE_ROOT("mkfs.btrfs");
  scratch_fs outer("btrfs"), inner("btrfs");
  const std::uint64_t a = 1 * MiB, b = 512 * KiB;
  ASSERT_EQ(mkdir(outer.path("inner").c_str(), 0755), 0);
  write_file(outer.path("x"), a, 31);
  reflink(outer.path("x"), outer.path("y"));
  write_file(inner.path("x"), b, 32);
  reflink(inner.path("x"), inner.path("y"));
  must({"mount", "--bind", inner.dir(), outer.path("inner")});
  struct unmount {
    const scratch_fs& fs;
    ~unmount() { run({"umount", fs.path("inner")}); }
  } cleanup{outer};
  for (const auto* fs : {&outer, &inner}) {
    for (const char* f : {"x", "y"}) {
      evict(fs->path(f));
      read_all(fs->path(f));
    }
  }
  for (int round = 0; round < 3; ++round) {
    auto r = report_json({"-j", "16"});
    std::map<std::string, std::uint64_t> wasted_at;
    for (const auto& f : r["filesystems"]) wasted_at[f["path"].get<std::string>()] = f["wasted_bytes"].get<std::uint64_t>();
    EXPECT_EQ(wasted_at[outer.dir()], a) << r["filesystems"].dump();
    EXPECT_EQ(wasted_at[inner.dir()], b) << r["filesystems"].dump();
    for (const auto& m : r["skipped"]["mounts"]) EXPECT_NE(m["path"], outer.path("inner")) << r["skipped"].dump();
  }
}

TEST(ReportExt4, NoSharingEveryCachedByteCounted) {
  DUPCACHE_REQUIRE_ROOT("mkfs.ext4");
  scratch_fs fs("ext4");
  const std::uint64_t p = ps();
  write_file(fs.path("a"), 100 * p, 10);
  must({"cp", fs.path("a"), fs.path("b")});
  must({"sync"});
  for (auto n : {"a", "b"}) evict(fs.path(n));
  read_all(fs.path("a"));
  read_range(fs.path("b"), 10 * p, 30 * p);
  auto r = report_both(fs.dir());
  EXPECT_EQ(cached(r), (100 + 30) * p);
  EXPECT_EQ(wasted(r), 0u);
  EXPECT_EQ(r["totals"]["files_cached"], 2);
}

TEST(ReportBtrfs, ResidencyIsLeftExactlyAsItWas) {
  DUPCACHE_REQUIRE_ROOT("mkfs.btrfs");
  scratch_fs fs("btrfs");
  const std::uint64_t p = ps();
  write_file(fs.path("a"), 512 * p, 11);
  reflink(fs.path("a"), fs.path("b"));
  write_file(fs.path("cold"), 256 * p, 12);
  for (auto n : {"a", "b", "cold"}) evict(fs.path(n));
  // Ragged residency: every third page of a, a middle run of b, nothing of cold.
  for (std::uint64_t i = 0; i < 512; i += 3) read_range(fs.path("a"), i * p, p);
  read_range(fs.path("b"), 100 * p, 200 * p);
  std::map<std::string, std::vector<unsigned char>> before;
  for (auto n : {"a", "b", "cold"}) before[n] = residency(fs.path(n));
  report_json({fs.dir()});
  report_json({"--all-extents", fs.dir()});
  report_json({"--residency", "mincore", fs.dir()});
  for (auto n : {"a", "b", "cold"}) EXPECT_EQ(residency(fs.path(n)), before[n]) << n << " residency changed";
  // And the numbers for the ragged case: a's cached pages inside [100, 300) are shared with b.
  std::uint64_t overlap = 0;
  for (std::uint64_t i = 100; i < 300; ++i) overlap += (i % 3 == 0);
  auto r = report_json({fs.dir()});
  EXPECT_EQ(wasted(r), overlap * p);
}

TEST(ReportBtrfs, MincoreFallbackAgreesWithCachestat) {
  DUPCACHE_REQUIRE_ROOT("mkfs.btrfs");
  scratch_fs fs("btrfs");
  const std::uint64_t p = ps();
  write_file(fs.path("a"), 256 * p, 13);
  reflink(fs.path("a"), fs.path("b"));
  for (auto n : {"a", "b"}) evict(fs.path(n));
  read_range(fs.path("a"), 0, 200 * p);
  read_range(fs.path("b"), 50 * p, 200 * p);
  auto c = report_json({"--residency", "cachestat", fs.dir()});
  auto m = report_json({"--residency", "mincore", fs.dir()});
  EXPECT_EQ(wasted(c), 150 * p);
  EXPECT_EQ(wasted(m), 150 * p);
  EXPECT_EQ(c["residency"], "cachestat");
  EXPECT_EQ(m["residency"], "mincore");
}

}  // namespace
}  // namespace dupcache::testing
