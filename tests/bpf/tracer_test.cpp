// SPDX-License-Identifier: GPL-2.0-only
//
// Loads the real BPF programs on the running kernel and checks what they capture on a btrfs
// loop image. Needs root; skips with a reason where it cannot run, fails instead when CI=true.

#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/fiemap.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "loop_image.hpp"
#include "test_env.hpp"
#include "trace/tracer.hpp"
#include "util/fd.hpp"

namespace dupcache::test {
namespace {

using trace::decoded_event;
using trace::event_kind;
using trace::hook_path;
using trace::probe_status;
using trace::tracer;
using trace::tracer_options;

constexpr std::uint64_t KiB = 1024;
constexpr std::uint64_t MiB = 1024 * KiB;
constexpr std::uint64_t page = 4096;
constexpr std::uint64_t btrfs_top_level = 5;  // BTRFS_FS_TREE_OBJECTID

bool privilege_errno(int err) { return err == EPERM || err == EACCES; }

std::vector<decoded_event> drain(tracer& t) {
  std::vector<decoded_event> out;
  for (int round = 0; round < 100000; ++round) {
    auto n = t.poll(round == 0 ? 50 : 0, [&](const decoded_event& e) { out.push_back(e); });
    if (!n) {
      ADD_FAILURE() << n.err().message();
      break;
    }
    if (n.value() == 0 && round > 0) break;
  }
  return out;
}

std::vector<decoded_event> select(const std::vector<decoded_event>& events, event_kind kind, ino_t ino) {
  std::vector<decoded_event> out;
  for (const auto& e : events)
    if (e.kind == kind && e.ino == ino) out.push_back(e);
  return out;
}

// Every page in [first, last) covered exactly once, nothing else covered.
void expect_exact_pages(const std::vector<decoded_event>& events, std::uint64_t first, std::uint64_t last,
                        const char* what) {
  std::map<std::uint64_t, int> covered;
  std::uint64_t sum = 0;
  for (const auto& e : events) {
    sum += e.nr_pages;
    for (std::uint64_t p = e.index; p < e.index + e.nr_pages; ++p) ++covered[p];
  }
  EXPECT_EQ(sum, last - first) << what << ": sum of nr_pages";
  for (const auto& [p, n] : covered) {
    EXPECT_TRUE(p >= first && p < last) << what << ": page " << p << " outside [" << first << ", " << last << ")";
    EXPECT_EQ(n, 1) << what << ": page " << p << " reported " << n << " times";
  }
  for (std::uint64_t p = first; p < last; ++p) EXPECT_TRUE(covered.count(p)) << what << ": page " << p << " missing";
}

std::string own_comm() {
  char name[17] = {};
  ::prctl(PR_GET_NAME, name, 0, 0, 0);
  return name;
}

class bpf_fs : public ::testing::Test {
 protected:
  virtual std::string fstype() const = 0;

  void SetUp() override {
    if (auto gap = check_environment(fstype())) DC_SKIP_OR_FAIL(gap.reason);
    if (auto why = bpf_unavailable_reason(); !why.empty()) DC_SKIP_OR_FAIL(why);
    auto img = loop_image::create(fstype(), 512 * MiB);
    if (!img) {
      if (privilege_errno(img.err().err)) DC_SKIP_OR_FAIL(img.err().message());
      FAIL() << img.err().message();
    }
    img_ = std::move(img.value());
  }

  tracer_options filtered_options() const {
    tracer_options o;
    o.watch_devs = {img_->superblock_dev()};
    o.ring_buffer_bytes = 16 * MiB;
    return o;
  }

  // Opens the tracer; failure is a test failure (the environment was already checked).
  std::unique_ptr<tracer> open_tracer(const tracer_options& o) {
    auto t = tracer::open(o);
    if (!t) {
      ADD_FAILURE() << t.err().message();
      return nullptr;
    }
    return std::move(t.value());
  }

  // Writes a 1 MiB file, drops its cache, traces a pread of [64 KiB, 192 KiB) and an fadvise
  // DONTNEED, and checks the add and delete events page by page. expected_subvol: 5 on btrfs.
  void check_exact_range(std::vector<hook_path> paths, std::uint64_t expected_subvol, bool coalesce = true);

  std::unique_ptr<loop_image> img_;
};

class bpf_btrfs : public bpf_fs {
 protected:
  std::string fstype() const override { return "btrfs"; }
};

class bpf_xfs : public bpf_fs {
 protected:
  std::string fstype() const override { return "xfs"; }
};

void bpf_fs::check_exact_range(std::vector<hook_path> paths, std::uint64_t expected_subvol, bool coalesce) {
  const std::string file = img_->path("a");
  ASSERT_TRUE(write_file(file, 1 * MiB).ok());
  unique_fd fd(::open(file.c_str(), O_RDONLY | O_CLOEXEC));
  ASSERT_TRUE(fd);
  struct stat st {};
  ASSERT_EQ(::fstat(fd.get(), &st), 0);
  int generation = 0;
  ASSERT_EQ(::ioctl(fd.get(), FS_IOC_GETVERSION, &generation), 0) << std::strerror(errno);

  auto left = drop_cache(fd.get());
  ASSERT_TRUE(left.ok()) << left.err().message();
  ASSERT_EQ(left.value(), 0u) << "pages still cached after POSIX_FADV_DONTNEED";
  // Readahead: with FMODE_RANDOM, page_cache_sync_ra() does forced readahead of exactly the
  // requested count (filemap_get_pages passes last_index - index), in order-0 folios, and no
  // async readahead marks are set. So a 128 KiB pread at 64 KiB inserts pages 16..47, no more.
  ASSERT_EQ(::posix_fadvise(fd.get(), 0, 0, POSIX_FADV_RANDOM), 0);

  auto opts = filtered_options();
  opts.paths = std::move(paths);
  opts.coalesce = coalesce;
  auto t = open_tracer(opts);
  ASSERT_TRUE(t);
  ASSERT_EQ(t->coalescing(), coalesce) << "BPF_PROG_TEST_RUN on a chosen CPU works on this kernel";

  std::vector<char> buf(128 * KiB);
  ASSERT_EQ(::pread(fd.get(), buf.data(), buf.size(), 64 * KiB), static_cast<ssize_t>(buf.size()));
  auto events = drain(*t);
  auto resident = resident_pages(fd.get());
  ASSERT_TRUE(resident.ok());
  EXPECT_EQ(resident.value(), 32u) << "page cache disagrees with the assumption of the test";

  auto adds = select(events, event_kind::cache_add, st.st_ino);
  ASSERT_FALSE(adds.empty()) << "no cache_add event for ino " << st.st_ino << " (" << events.size() << " events)";
  expect_exact_pages(adds, 16, 48, "cache_add");
  const auto memcg = expected_memcg_id();
  const std::string comm = own_comm();
  for (const auto& e : adds) {
    EXPECT_TRUE(e.has_identity);
    EXPECT_EQ(e.dev, img_->superblock_dev()) << "s_dev " << e.dev_major << ":" << e.dev_minor;
    EXPECT_EQ(e.kernel_dev, trace::kernel_dev_from(img_->superblock_dev()));
    EXPECT_EQ(e.subvol_id, expected_subvol);
    EXPECT_FALSE(e.subvol_unknown);
    EXPECT_EQ(e.generation, static_cast<std::uint32_t>(generation));
    EXPECT_EQ(e.pid, static_cast<std::uint32_t>(::getpid()));
    EXPECT_EQ(e.tid, static_cast<std::uint32_t>(::gettid()));
    EXPECT_EQ(e.comm_view(), comm);
    if (memcg) {
      EXPECT_EQ(e.cgroup_id, *memcg);
    }
    EXPECT_NE(e.timestamp_ns, 0u);
    EXPECT_GE(e.end_timestamp_ns, e.timestamp_ns);
  }
  // The filter admits only this filesystem, and only regular files on it: nothing but our file.
  for (const auto& e : events) {
    if (e.is_cache()) {
      EXPECT_EQ(e.ino, st.st_ino) << "unexpected " << trace::to_string(e.kind) << " ino " << e.ino;
    }
    EXPECT_EQ(e.dev, img_->superblock_dev());
  }

  ASSERT_EQ(::posix_fadvise(fd.get(), 0, 0, POSIX_FADV_DONTNEED), 0);
  auto after = drain(*t);
  resident = resident_pages(fd.get());
  ASSERT_TRUE(resident.ok());
  ASSERT_EQ(resident.value(), 0u);
  auto deletes = select(after, event_kind::cache_delete, st.st_ino);
  expect_exact_pages(deletes, 16, 48, "cache_delete");
  for (const auto& e : deletes) {
    EXPECT_EQ(e.dev, img_->superblock_dev());
    EXPECT_EQ(e.subvol_id, expected_subvol);
    if (memcg) {
      EXPECT_EQ(e.cgroup_id, *memcg) << "a folio stays charged until it is freed";
    }
  }

  auto counters = t->counters();
  ASSERT_TRUE(counters.ok()) << counters.err().message();
  EXPECT_EQ(counters->total_drops(), 0u);
  if (coalesce) {
    // One pread inserts pages 16..47 in order, one folio each, on the CPU the reader runs on,
    // and one fadvise removes them in order: every folio went into a run, and runs break only
    // where the task changed CPU.
    EXPECT_EQ(counters->run_folios, 64u);
    EXPECT_LT(adds.size(), 32u) << "no two consecutive insertions were merged";
    EXPECT_LT(deletes.size(), 32u) << "no two consecutive removals were merged";
    EXPECT_EQ(counters->emitted_of(event_kind::cache_add), adds.size());
    EXPECT_EQ(counters->emitted_of(event_kind::cache_delete), deletes.size());
  } else {
    EXPECT_EQ(counters->run_folios, 0u);
    EXPECT_EQ(adds.size(), 32u) << "one record per folio";
    EXPECT_EQ(deletes.size(), 32u) << "one record per folio";
    EXPECT_EQ(counters->emitted_of(event_kind::cache_add), 32u);
    EXPECT_EQ(counters->emitted_of(event_kind::cache_delete), 32u);
  }
  EXPECT_EQ(counters->decode_errors, 0u);
}

// (a) exact page indices, identity and task fields, with whatever path the probe picks.
TEST_F(bpf_btrfs, add_and_delete_cover_exactly_the_read_range) {
  check_exact_range({hook_path::fentry, hook_path::tp_btf, hook_path::raw_tp}, btrfs_top_level);
}

// The last fallback must capture the same thing.
TEST_F(bpf_btrfs, raw_tracepoint_path_captures_the_same_range) {
  check_exact_range({hook_path::raw_tp}, btrfs_top_level);
}

// Without coalescing (kernels where dc_flush cannot run on a chosen CPU): one record per folio.
TEST_F(bpf_btrfs, uncoalesced_insertions_are_one_record_per_folio) {
  check_exact_range({hook_path::fentry, hook_path::tp_btf, hook_path::raw_tp}, btrfs_top_level, false);
}

// Not btrfs: subvolume id 0, same exact pages.
TEST_F(bpf_xfs, add_and_delete_cover_exactly_the_read_range) {
  check_exact_range({hook_path::fentry, hook_path::tp_btf, hook_path::raw_tp}, 0);
}

// xfs caches large folios under sequential readahead: nr_pages must be folio_nr_pages(), so the
// pages of the add events add up to the file, and so do the pages of the deletes.
TEST_F(bpf_xfs, large_folios_report_their_page_count) {
  constexpr std::uint64_t size = 32 * MiB;
  const std::string file = img_->path("seq");
  ASSERT_TRUE(write_file(file, size).ok());
  unique_fd fd(::open(file.c_str(), O_RDONLY | O_CLOEXEC));
  ASSERT_TRUE(fd);
  struct stat st {};
  ASSERT_EQ(::fstat(fd.get(), &st), 0);
  auto left = drop_cache(fd.get());
  ASSERT_TRUE(left.ok());
  ASSERT_EQ(left.value(), 0u);
  ASSERT_EQ(::posix_fadvise(fd.get(), 0, 0, POSIX_FADV_SEQUENTIAL), 0);

  // One record per folio: coalesced runs of consecutive folios are not folio-sized (a run of
  // 6144 pages was seen in CI).
  auto opts = filtered_options();
  opts.coalesce = false;
  auto t = open_tracer(opts);
  ASSERT_TRUE(t);
  std::vector<char> buf(1 * MiB);
  for (std::uint64_t off = 0; off < size; off += buf.size())
    ASSERT_EQ(::pread(fd.get(), buf.data(), buf.size(), static_cast<off_t>(off)), static_cast<ssize_t>(buf.size()));
  auto adds = select(drain(*t), event_kind::cache_add, st.st_ino);
  expect_exact_pages(adds, 0, size / page, "cache_add");
  std::uint32_t largest = 0;
  for (const auto& e : adds) {
    largest = std::max(largest, e.nr_pages);
    EXPECT_EQ(e.nr_pages & (e.nr_pages - 1), 0u) << "folio sizes are powers of two";
    EXPECT_EQ(e.index % e.nr_pages, 0u) << "folios are naturally aligned in the file";
  }
  EXPECT_GT(largest, 1u) << "no large folio seen; did xfs stop using them?";

  ASSERT_EQ(::posix_fadvise(fd.get(), 0, 0, POSIX_FADV_DONTNEED), 0);
  auto deletes = select(drain(*t), event_kind::cache_delete, st.st_ino);
  expect_exact_pages(deletes, 0, size / page, "cache_delete");
}

// (b) snapshot: same inode number in two subvolumes, told apart by the subvolume id.
TEST_F(bpf_btrfs, snapshot_events_carry_distinct_subvolume_ids) {
  ASSERT_TRUE(btrfs_create_subvolume(img_->mount_dir(), "sv").ok());
  ASSERT_TRUE(write_file(img_->path("sv/f"), 1 * MiB).ok());
  auto snap = btrfs_snapshot(img_->path("sv"), img_->mount_dir(), "snap");
  ASSERT_TRUE(snap.ok()) << snap.err().message();

  unique_fd a(::open(img_->path("sv/f").c_str(), O_RDONLY | O_CLOEXEC));
  unique_fd b(::open(img_->path("snap/f").c_str(), O_RDONLY | O_CLOEXEC));
  ASSERT_TRUE(a && b);
  struct stat sa {}, sb {};
  ASSERT_EQ(::fstat(a.get(), &sa), 0);
  ASSERT_EQ(::fstat(b.get(), &sb), 0);
  ASSERT_EQ(sa.st_ino, sb.st_ino) << "a snapshot keeps inode numbers";
  EXPECT_NE(sa.st_dev, sb.st_dev) << "btrfs gives each subvolume its own st_dev";

  auto root_a = btrfs_root_id(a.get());
  auto root_b = btrfs_root_id(b.get());
  ASSERT_TRUE(root_a.ok() && root_b.ok());
  ASSERT_NE(root_a.value(), root_b.value());
  ASSERT_NE(root_a.value(), btrfs_top_level);

  for (int fd : {a.get(), b.get()}) {
    auto left = drop_cache(fd);
    ASSERT_TRUE(left.ok());
    ASSERT_EQ(left.value(), 0u);
    ASSERT_EQ(::posix_fadvise(fd, 0, 0, POSIX_FADV_RANDOM), 0);
  }

  auto t = open_tracer(filtered_options());
  ASSERT_TRUE(t);
  std::vector<char> buf(128 * KiB);
  ASSERT_EQ(::pread(a.get(), buf.data(), buf.size(), 64 * KiB), static_cast<ssize_t>(buf.size()));
  ASSERT_EQ(::pread(b.get(), buf.data(), buf.size(), 64 * KiB), static_cast<ssize_t>(buf.size()));
  auto events = drain(*t);

  std::map<std::uint64_t, std::vector<decoded_event>> by_subvol;
  for (const auto& e : select(events, event_kind::cache_add, sa.st_ino)) {
    EXPECT_EQ(e.dev, img_->superblock_dev()) << "one superblock dev for all subvolumes";
    by_subvol[e.subvol_id].push_back(e);
  }
  ASSERT_EQ(by_subvol.size(), 2u);
  ASSERT_TRUE(by_subvol.count(root_a.value())) << "no events for subvolume " << root_a.value();
  ASSERT_TRUE(by_subvol.count(root_b.value())) << "no events for snapshot " << root_b.value();
  expect_exact_pages(by_subvol[root_a.value()], 16, 48, "subvolume");
  expect_exact_pages(by_subvol[root_b.value()], 16, 48, "snapshot");
}

// btrfs keeps its metadata in the page cache of the btree inode, which is S_IFREG: the kernel
// side must recognise it (and free-space-cache / relocation inodes) by their tree and drop them.
TEST_F(bpf_btrfs, btrfs_internal_inodes_are_not_reported) {
  // Enough inodes for many fs-tree leaves, then a fresh mount: stat()ing them reads those
  // leaves into the btree inode's (cold) page cache, while no file data is read at all.
  constexpr int files = 1000;
  ASSERT_EQ(::mkdir(img_->path("many").c_str(), 0755), 0);
  for (int i = 0; i < files; ++i) {
    unique_fd f(::open(img_->path("many/f" + std::to_string(i)).c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
    ASSERT_TRUE(f);
  }
  auto remounted = img_->remount();
  ASSERT_TRUE(remounted.ok()) << remounted.err().message();

  auto t = open_tracer(filtered_options());
  ASSERT_TRUE(t);
  for (int i = 0; i < files; ++i) {
    struct stat st {};
    ASSERT_EQ(::stat(img_->path("many/f" + std::to_string(i)).c_str(), &st), 0);
  }
  for (const auto& e : drain(*t)) {
    EXPECT_FALSE(e.is_cache()) << trace::to_string(e.kind) << " of ino " << e.ino << " subvol " << e.subvol_id;
  }
  auto c = t->counters();
  ASSERT_TRUE(c.ok());
  EXPECT_GT(c->filtered_internal, 0u) << "no btree-inode insertion seen; the test lost its point";
  EXPECT_EQ(c->emitted_of(event_kind::cache_add), 0u);
}

// (c) a ring buffer that cannot keep up counts drops instead of blocking anyone.
TEST_F(bpf_btrfs, full_ring_buffer_counts_drops) {
  constexpr std::uint64_t size = 64 * MiB;
  const std::string file = img_->path("big");
  ASSERT_TRUE(write_file(file, size).ok());
  unique_fd fd(::open(file.c_str(), O_RDONLY | O_CLOEXEC));
  ASSERT_TRUE(fd);
  auto left = drop_cache(fd.get());
  ASSERT_TRUE(left.ok());
  ASSERT_EQ(left.value(), 0u);
  ASSERT_EQ(::posix_fadvise(fd.get(), 0, 0, POSIX_FADV_RANDOM), 0);

  auto opts = filtered_options();
  opts.ring_buffer_bytes = 4096;  // room for 30 records of 128 + 8 bytes
  opts.sharing_events = false;
  opts.dirty_events = false;
  opts.coalesce = false;  // one record per page, so the reads below overflow it
  auto t = open_tracer(opts);
  ASSERT_TRUE(t);
  EXPECT_EQ(t->ring_buffer_bytes(), 4096u);

  std::vector<char> buf(page);
  for (std::uint64_t off = 0; off < size; off += page)
    ASSERT_EQ(::pread(fd.get(), buf.data(), page, static_cast<off_t>(off)), static_cast<ssize_t>(page));

  auto c = t->counters();
  ASSERT_TRUE(c.ok()) << c.err().message();
  EXPECT_GT(c->drops_of(event_kind::cache_add), 0u);
  // Every insertion is accounted for: delivered or dropped.
  EXPECT_EQ(c->emitted_of(event_kind::cache_add) + c->drops_of(event_kind::cache_add), size / page);
  EXPECT_LE(c->emitted_of(event_kind::cache_add), 4096u / 136u);
  auto events = drain(*t);
  EXPECT_EQ(events.size(), c->emitted_of(event_kind::cache_add));
}

// (d) on this kernel fentry is refused and the probe falls back to tp_btf, saying why.
TEST_F(bpf_btrfs, probe_reports_chosen_path_and_rejections) {
  auto t = open_tracer(filtered_options());
  ASSERT_TRUE(t);
  const auto& report = t->probe_report();
  auto find = [&](const std::string& hook) -> const trace::probe_result* {
    for (const auto& r : report)
      if (r.hook == hook) return &r;
    return nullptr;
  };
  const auto* fentry = find("fentry");
  const auto* tp_btf = find("tp_btf");
  const auto* raw_tp = find("raw_tp");
  ASSERT_TRUE(fentry && tp_btf && raw_tp);
  if (fentry->status == probe_status::chosen) {
    // A kernel that allows trampolines: nothing to fall back from.
    EXPECT_EQ(t->chosen_path(), hook_path::fentry);
    return;
  }
  EXPECT_EQ(fentry->status, probe_status::rejected);
  EXPECT_FALSE(fentry->reason.empty());
  EXPECT_NE(fentry->reason.find("load"), std::string::npos) << fentry->reason;
  EXPECT_EQ(t->chosen_path(), hook_path::tp_btf);
  EXPECT_EQ(tp_btf->status, probe_status::chosen);
  EXPECT_EQ(raw_tp->status, probe_status::not_tried);
  for (const auto& r : report) {
    if (r.hook == "dirty:tp_btf" || r.hook == "sharing:syscalls") {
      EXPECT_EQ(r.status, probe_status::enabled) << r.hook;
    }
    std::cout << "[ probe    ] " << r.hook << ": " << trace::to_string(r.status) << ": " << r.reason << "\n";
  }

  // Asked for fentry alone, open fails and the error carries the reason.
  auto opts = filtered_options();
  opts.paths = {hook_path::fentry};
  auto only = tracer::open(opts);
  ASSERT_FALSE(only.ok());
  EXPECT_NE(only.err().message().find("fentry"), std::string::npos) << only.err().message();
}

// FIEMAP changes nothing, and a live model's seed makes one per cached file: reported only when
// asked (dupcache trace), while the other sharing syscalls always are.
TEST_F(bpf_btrfs, fiemap_is_reported_only_when_asked) {
  const std::string path = img_->path("f");
  ASSERT_TRUE(write_file(path, 64 * KiB).ok());
  unique_fd fd(::open(path.c_str(), O_RDWR | O_CLOEXEC));
  unique_fd copy(::open(img_->path("g").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
  ASSERT_TRUE(fd && copy);
  for (bool asked : {false, true}) {
    SCOPED_TRACE(asked ? "asked" : "default");
    auto opts = filtered_options();
    opts.fiemap_events = asked;
    auto t = open_tracer(opts);
    ASSERT_TRUE(t);
    fiemap fm{};
    fm.fm_length = 64 * KiB;
    for (int i = 0; i < 3; ++i) ASSERT_EQ(::ioctl(fd.get(), FS_IOC_FIEMAP, &fm), 0) << std::strerror(errno);
    ASSERT_EQ(::ioctl(copy.get(), FICLONE, fd.get()), 0) << std::strerror(errno);
    std::vector<event_kind> kinds;
    for (const auto& e : drain(*t))
      if (e.is_sharing() && e.pid == static_cast<std::uint32_t>(::getpid())) kinds.push_back(e.kind);
    if (asked) {
      EXPECT_EQ(kinds, (std::vector<event_kind>{event_kind::share_fiemap, event_kind::share_fiemap,
                                                event_kind::share_fiemap, event_kind::share_clone}));
    } else {
      EXPECT_EQ(kinds, std::vector<event_kind>{event_kind::share_clone});
    }
  }
}

// Sharing changes: each syscall produces its event with the fd's identity and its ranges.
TEST_F(bpf_btrfs, sharing_syscalls_produce_events) {
  const std::string src_path = img_->path("src");
  const std::string dst_path = img_->path("dst");
  ASSERT_TRUE(write_file(src_path, 1 * MiB).ok());
  unique_fd src(::open(src_path.c_str(), O_RDWR | O_CLOEXEC));
  unique_fd dst(::open(dst_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
  ASSERT_TRUE(src && dst);
  struct stat s_src {}, s_dst {};
  ASSERT_EQ(::fstat(src.get(), &s_src), 0);
  ASSERT_EQ(::fstat(dst.get(), &s_dst), 0);

  // A file on another filesystem: its sharing syscalls must be filtered out in the kernel.
  char outside_path[] = "/tmp/dupcache-bpf-outside.XXXXXX";
  unique_fd outside(::mkstemp(outside_path));
  ASSERT_TRUE(outside);
  ::unlink(outside_path);

  auto opts = filtered_options();
  opts.fiemap_events = true;
  auto t = open_tracer(opts);
  ASSERT_TRUE(t);

  ASSERT_EQ(::ioctl(dst.get(), FICLONE, src.get()), 0) << std::strerror(errno);
  file_clone_range fcr{};
  fcr.src_fd = src.get();
  fcr.src_offset = 0;
  fcr.src_length = 64 * KiB;
  fcr.dest_offset = 128 * KiB;
  ASSERT_EQ(::ioctl(dst.get(), FICLONERANGE, &fcr), 0) << std::strerror(errno);
  loff_t off_in = 4096, off_out = 8192;
  ASSERT_EQ(::copy_file_range(src.get(), &off_in, dst.get(), &off_out, 4096, 0), 4096);
  ASSERT_EQ(::lseek(dst.get(), 12288, SEEK_SET), 12288);
  ASSERT_EQ(::lseek(src.get(), 0, SEEK_SET), 0);
  ASSERT_EQ(::copy_file_range(src.get(), nullptr, dst.get(), nullptr, 4096, 0), 4096);
  fiemap fm{};
  fm.fm_start = 4096;
  fm.fm_length = 1 * MiB;
  fm.fm_extent_count = 0;  // count only: no extent array follows
  ASSERT_EQ(::ioctl(src.get(), FS_IOC_FIEMAP, &fm), 0) << std::strerror(errno);
  // file_dedupe_range ends in a flexible array: lay out header + one info by hand.
  alignas(file_dedupe_range) unsigned char dedupe_buf[sizeof(file_dedupe_range) + sizeof(file_dedupe_range_info)] = {};
  auto* dedupe = reinterpret_cast<file_dedupe_range*>(dedupe_buf);
  dedupe->src_offset = 0;
  dedupe->src_length = 64 * KiB;
  dedupe->dest_count = 1;
  dedupe->info[0].dest_fd = dst.get();
  dedupe->info[0].dest_offset = 0;
  ASSERT_EQ(::ioctl(src.get(), FIDEDUPERANGE, dedupe), 0) << std::strerror(errno);
  ASSERT_EQ(::ftruncate(dst.get(), 3 * page), 0);
  ASSERT_EQ(::truncate(dst_path.c_str(), 2 * page), 0);
  ASSERT_EQ(::ftruncate(outside.get(), page), 0);
  ASSERT_EQ(::fallocate(dst.get(), 0, 0, static_cast<off_t>(4 * page)), 0);  // plain allocation: not reported
  ASSERT_EQ(::fallocate(dst.get(), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(page),
                        static_cast<off_t>(page)),
            0)
      << std::strerror(errno);

  std::vector<decoded_event> mine;
  for (const auto& e : drain(*t))
    if (e.is_sharing() && e.pid == static_cast<std::uint32_t>(::getpid())) mine.push_back(e);
  ASSERT_EQ(mine.size(), 9u);

  auto expect_identity = [&](const decoded_event& e, const struct stat& st) {
    EXPECT_TRUE(e.has_identity) << trace::to_string(e.kind);
    EXPECT_EQ(e.ino, st.st_ino) << trace::to_string(e.kind);
    EXPECT_EQ(e.dev, img_->superblock_dev()) << trace::to_string(e.kind);
    EXPECT_EQ(e.subvol_id, btrfs_top_level) << trace::to_string(e.kind);
    EXPECT_FALSE(e.args_unread) << trace::to_string(e.kind);
  };

  EXPECT_EQ(mine[0].kind, event_kind::share_clone);
  expect_identity(mine[0], s_dst);
  EXPECT_EQ(mine[0].fd, dst.get());
  EXPECT_EQ(mine[0].fd2, src.get());

  EXPECT_EQ(mine[1].kind, event_kind::share_clone_range);
  expect_identity(mine[1], s_dst);
  EXPECT_EQ(mine[1].fd2, src.get());
  EXPECT_EQ(mine[1].off, 128 * KiB);
  EXPECT_EQ(mine[1].off2, 0u);
  EXPECT_EQ(mine[1].len, 64 * KiB);

  EXPECT_EQ(mine[2].kind, event_kind::share_copy_range);
  expect_identity(mine[2], s_dst);
  EXPECT_EQ(mine[2].fd, dst.get());
  EXPECT_EQ(mine[2].fd2, src.get());
  EXPECT_EQ(mine[2].off, 8192u);
  EXPECT_EQ(mine[2].off2, 4096u);
  EXPECT_EQ(mine[2].len, 4096u);
  EXPECT_FALSE(mine[2].off_is_file_pos);

  EXPECT_EQ(mine[3].kind, event_kind::share_copy_range);
  EXPECT_TRUE(mine[3].off_is_file_pos);
  EXPECT_TRUE(mine[3].off2_is_file_pos);
  EXPECT_EQ(mine[3].off, 12288u);

  EXPECT_EQ(mine[4].kind, event_kind::share_fiemap);
  expect_identity(mine[4], s_src);
  EXPECT_EQ(mine[4].off, 4096u);
  EXPECT_EQ(mine[4].len, 1 * MiB);

  EXPECT_EQ(mine[5].kind, event_kind::share_dedupe);
  expect_identity(mine[5], s_dst);  // the file whose extents change
  EXPECT_EQ(mine[5].fd, src.get());
  EXPECT_EQ(mine[5].fd2, dst.get());
  EXPECT_EQ(mine[5].len, 64 * KiB);
  EXPECT_EQ(mine[5].aux, 1u);

  EXPECT_EQ(mine[6].kind, event_kind::share_truncate);
  expect_identity(mine[6], s_dst);
  EXPECT_EQ(mine[6].fd, dst.get());
  EXPECT_EQ(mine[6].off, 3 * page);

  EXPECT_EQ(mine[7].kind, event_kind::share_truncate);
  EXPECT_FALSE(mine[7].has_identity) << "truncate(path) is not resolved at syscall entry";
  EXPECT_EQ(mine[7].fd, -1);
  EXPECT_EQ(mine[7].off, 2 * page);

  EXPECT_EQ(mine[8].kind, event_kind::share_fallocate);
  expect_identity(mine[8], s_dst);
  EXPECT_EQ(mine[8].fd, dst.get());
  EXPECT_EQ(mine[8].off, page);
  EXPECT_EQ(mine[8].len, page);
  EXPECT_EQ(mine[8].aux, static_cast<std::uint32_t>(FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE));

  auto c = t->counters();
  ASSERT_TRUE(c.ok());
  EXPECT_GE(c->filtered_dev, 1u) << "ftruncate on /tmp should have been filtered";
}

// A clean cached page that gets written produces a folio_dirty event for that page.
TEST_F(bpf_btrfs, write_to_clean_page_produces_dirty_event) {
  const std::string file = img_->path("w");
  ASSERT_TRUE(write_file(file, 1 * MiB).ok());
  unique_fd fd(::open(file.c_str(), O_RDWR | O_CLOEXEC));
  ASSERT_TRUE(fd);
  struct stat st {};
  ASSERT_EQ(::fstat(fd.get(), &st), 0);
  auto left = drop_cache(fd.get());
  ASSERT_TRUE(left.ok());
  ASSERT_EQ(left.value(), 0u);
  ASSERT_EQ(::posix_fadvise(fd.get(), 0, 0, POSIX_FADV_RANDOM), 0);
  std::vector<char> buf(page);
  ASSERT_EQ(::pread(fd.get(), buf.data(), page, 3 * page), static_cast<ssize_t>(page));

  auto t = open_tracer(filtered_options());
  ASSERT_TRUE(t);
  ASSERT_EQ(::pwrite(fd.get(), "dupcache", 8, 3 * page + 10), 8);
  auto dirty = select(drain(*t), event_kind::folio_dirty, st.st_ino);
  ASSERT_EQ(dirty.size(), 1u);
  EXPECT_LE(dirty[0].index, 3u);
  EXPECT_GT(dirty[0].index + dirty[0].nr_pages, 3u);
  EXPECT_EQ(dirty[0].subvol_id, btrfs_top_level);
  EXPECT_EQ(dirty[0].dev, img_->superblock_dev());
  ASSERT_EQ(::fsync(fd.get()), 0);
}

}  // namespace
}  // namespace dupcache::test
