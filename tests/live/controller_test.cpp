// SPDX-License-Identifier: GPL-2.0-only
// The live controller fed by the real tracer on the running kernel. After each workload the
// live index must equal a fresh one-shot scan exactly, and both must equal the numbers the
// scenario implies.

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <pthread.h>
#include <sched.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <functional>
#include <thread>

#include "fs_fixture.hpp"
#include "live/controller.hpp"
#include "report/report.hpp"
#include "trace/tracer.hpp"
#include "util/clock.hpp"

namespace dupcache::testing {
namespace {

using namespace std::chrono_literals;

struct totals {
  std::uint64_t cached = 0;
  std::uint64_t wasted = 0;
  std::map<std::string, std::pair<std::uint64_t, std::uint64_t>> files;  // path -> (cached, shared)
  bool operator==(const totals&) const = default;
};

std::ostream& operator<<(std::ostream& os, const totals& t) {
  os << "cached " << t.cached << " wasted " << t.wasted << " {";
  for (const auto& [p, v] : t.files) os << p << ": " << v.first << "/" << v.second << "; ";
  return os << "}";
}

totals summarize(const report_model& m) {
  totals t{m.cached_bytes, m.wasted_bytes, {}};
  for (const auto& f : m.files) t.files[f.path] = {f.cached_bytes, f.shared_cached_bytes};
  return t;
}

report_model fresh_report(const std::string& dir) {
  scan_options so;
  so.paths = {dir};
  auto r = scan(so);
  if (!r) throw std::runtime_error(r.err().message());
  return build_report(*r);
}

totals fresh_scan(const std::string& dir) { return summarize(fresh_report(dir)); }

// The tracer and controller as `dupcache top` runs them, driven step by step.
class live_harness {
 public:
  explicit live_harness(const std::string& dir, std::uint64_t ring_bytes = 16 * MiB, bool coalesce = true,
                        residency_mode residency = residency_mode::automatic, bool sharing = true,
                        std::size_t compact_min_gone = 16384) {
    live::controller_options co;
    co.scan.paths = {dir};
    co.compact_min_gone = compact_min_gone;
    co.scan.residency = residency;
    co.settle = 50ms;
    ctl_ = std::make_unique<live::controller>(co);
    auto devs = live::superblock_devs(co.scan);
    if (!devs) throw std::runtime_error(devs.err().message());
    trace::tracer_options to;
    to.ring_buffer_bytes = ring_bytes;
    to.watch_devs = *devs;
    to.coalesce = coalesce;
    to.sharing_events = sharing;
    auto t = trace::tracer::open(to);
    if (!t) throw std::runtime_error(t.err().message());
    tracer_ = std::move(t.value());
    if (auto r = ctl_->seed(); !r) throw std::runtime_error(r.err().message());
    auto drained = tracer_->poll(0, [this](const trace::decoded_event& ev) { ctl_->touch(ev); });
    if (!drained) throw std::runtime_error(drained.err().message());
    ctl_->set_horizon(tracer_->flushed_before_ns());
    if (auto r = ctl_->tick(); !r) throw std::runtime_error(r.err().message());
  }

  // Consumes events until the feed has been quiet for a while and every pending inode is
  // re-resolved.
  void settle() {
    auto quiet_since = std::chrono::steady_clock::now();
    for (;;) {
      std::uint64_t n = 0;
      auto r = tracer_->poll(50, [&](const trace::decoded_event& ev) {
        // FIEMAP calls (the controller's own among them) change nothing.
        if (ev.kind != trace::event_kind::share_fiemap) ++n;
        if (!drop || !drop(ev)) ctl_->apply(ev);
      });
      if (!r) throw std::runtime_error(r.err().message());
      if (auto c = tracer_->counters()) ctl_->note_drops(c->total_drops());
      ctl_->set_horizon(tracer_->flushed_before_ns());
      if (auto t = ctl_->tick(); !t) throw std::runtime_error(t.err().message());
      if (n > 0) quiet_since = std::chrono::steady_clock::now();
      if (std::chrono::steady_clock::now() - quiet_since > 400ms) break;
    }
  }

  // One round of the loop: poll the feed once, apply, tick.
  void pump() {
    auto r = tracer_->poll(0, [&](const trace::decoded_event& ev) {
      if (!drop || !drop(ev)) ctl_->apply(ev);
    });
    if (!r) throw std::runtime_error(r.err().message());
    ctl_->set_horizon(tracer_->flushed_before_ns());
    if (auto t = ctl_->tick(); !t) throw std::runtime_error(t.err().message());
  }
  // What the daemon asks after acting on a file: re-read it from the kernel at the next tick.
  // False when the live model knows no such file.
  bool recheck(const std::string& path) {
    const auto& st = ctl_->state();
    for (copy_id c = 0; c < st.files.size(); ++c) {
      if (st.files[c].path == path) {
        ctl_->recheck({c});
        return true;
      }
    }
    return false;
  }

  totals now() const { return summarize(build_report(ctl_->state())); }
  report_model report() const {
    report_model m = build_report(ctl_->state());
    m.files_scanned = ctl_->known_files();  // as the sampler fills it in
    return m;
  }
  const live::live_counters& counters() const { return ctl_->counters(); }
  std::size_t known_files() const { return ctl_->known_files(); }
  std::uint64_t applied_before() const { return ctl_->applied_before_ns(); }
  const scan_result& state() const { return ctl_->state(); }

  // Records for which this says true are not applied, and nothing tells the model (a record
  // the kernel made that never arrives).
  std::function<bool(const trace::decoded_event&)> drop;

 private:
  std::unique_ptr<live::controller> ctl_;
  std::unique_ptr<trace::tracer> tracer_;
};

void evict_range(const std::string& path, std::uint64_t off, std::uint64_t len) {
  int fd = open(path.c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  posix_fadvise(fd, static_cast<off_t>(off), static_cast<off_t>(len), POSIX_FADV_DONTNEED);
  close(fd);
}

// Runs fn on a thread pinned to cpu, and waits for it.
template <typename Fn>
void on_cpu(int cpu, Fn&& fn) {
  std::exception_ptr error;
  std::thread t([&] {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (pthread_setaffinity_np(pthread_self(), sizeof set, &set) != 0) {
      error = std::make_exception_ptr(std::runtime_error("pin to CPU " + std::to_string(cpu)));
      return;
    }
    try {
      fn();
    } catch (...) {
      error = std::current_exception();
    }
  });
  t.join();
  if (error) std::rethrow_exception(error);
}

bool two_cpus() {
  cpu_set_t set;
  return sched_getaffinity(0, sizeof set, &set) == 0 && CPU_ISSET(0, &set) && CPU_ISSET(1, &set);
}

#define DUPCACHE_REQUIRE_TWO_CPUS()                                                          \
  do {                                                                                       \
    if (!two_cpus()) {                                                                       \
      if (under_ci()) FAIL() << "CI=true: CPUs 0 and 1 are needed to order events across CPUs"; \
      GTEST_SKIP() << "CPUs 0 and 1 are needed to order events across CPUs";                 \
    }                                                                                        \
  } while (0)

// Flushing goes CPU by CPU in order, so to make a record of CPU 1 overtake CPU 0's open run,
// CPU 1 must write its record out itself: reading an uncached file opens a new run there,
// which flushes the one before.
void flush_cpu1_by_reading(const std::string& path) { read_all(path); }

// The run a reader on CPU 0 opened is still in CPU 0's slot when CPU 1 evicts those pages, so
// the delete records arrive before the insertions they undo. Applied in arrival order the file
// would look cached; the controller must notice and re-resolve it.
TEST(Live, RemovalsOvertakingTheirInsertionRunAreRepaired) {
  DUPCACHE_REQUIRE_ROOT("mkfs.btrfs");
  DUPCACHE_REQUIRE_TWO_CPUS();
  scratch_fs fs("btrfs");
  const std::uint64_t p = page_size();
  write_file(fs.path("a"), 128 * p, 30);
  reflink(fs.path("a"), fs.path("b"));
  write_file(fs.path("c"), 8 * p, 33);
  for (auto n : {"a", "b", "c"}) evict(fs.path(n));
  live_harness live(fs.dir());
  read_all(fs.path("a"));
  live.settle();
  on_cpu(0, [&] { read_all(fs.path("b")); });
  on_cpu(1, [&] {
    evict_range(fs.path("b"), 32 * p, 64 * p);  // b keeps 0..31 and 96..127
    flush_cpu1_by_reading(fs.path("c"));
  });
  live.settle();
  EXPECT_GT(live.counters().reordered, 0u) << "the deletes did not overtake the run: the test lost its point";
  EXPECT_EQ(live.now().cached, 128 * p + 64 * p + 8 * p) << live.now();
  EXPECT_EQ(live.now().wasted, 64 * p) << live.now();
  EXPECT_EQ(live.now(), fresh_scan(fs.dir()));
}

// The other way round: CPU 1 evicts a range (its removal run stays open), CPU 0 reads it back
// and its insertion run is written out first. Applied in arrival order the removal would
// empty what was just read.
TEST(Live, InsertionsOvertakingTheRemovalRunBeforeThemAreRepaired) {
  DUPCACHE_REQUIRE_ROOT("mkfs.btrfs");
  DUPCACHE_REQUIRE_TWO_CPUS();
  scratch_fs fs("btrfs");
  const std::uint64_t p = page_size();
  write_file(fs.path("a"), 128 * p, 34);
  reflink(fs.path("a"), fs.path("b"));
  for (auto n : {"a", "b"}) evict(fs.path(n));
  live_harness live(fs.dir());
  read_all(fs.path("a"));
  read_all(fs.path("b"));
  live.settle();
  on_cpu(1, [&] { evict_range(fs.path("b"), 0, 64 * p); });
  on_cpu(0, [&] {
    read_range(fs.path("b"), 0, 64 * p);
    write_file(fs.path("c"), 8 * p, 35);  // records of another kind on CPU 0: its run leaves first
  });
  live.settle();
  EXPECT_GT(live.counters().reordered, 0u) << "the insertions did not overtake the removals: the test lost its point";
  EXPECT_EQ(live.now().cached, 256 * p + 8 * p) << live.now();
  EXPECT_EQ(live.now().wasted, 128 * p) << live.now();
  EXPECT_EQ(live.now(), fresh_scan(fs.dir()));
}

// The same with dirtying: a write on CPU 1 to pages whose insertion run is still on CPU 0.
// Dirty pages must not count as shared, even for the moment before the run arrives.
TEST(Live, DirtyingOvertakingTheInsertionRunIsRepaired) {
  DUPCACHE_REQUIRE_ROOT("mkfs.btrfs");
  DUPCACHE_REQUIRE_TWO_CPUS();
  scratch_fs fs("btrfs");
  const std::uint64_t p = page_size();
  write_file(fs.path("a"), 64 * p, 31);
  reflink(fs.path("a"), fs.path("b"));
  write_file(fs.path("c"), 8 * p, 33);
  for (auto n : {"a", "b", "c"}) evict(fs.path(n));
  live_harness live(fs.dir());
  read_all(fs.path("a"));
  live.settle();
  on_cpu(0, [&] { read_all(fs.path("b")); });
  on_cpu(1, [&] {
    overwrite(fs.path("b"), 0, 16 * p, 32);
    flush_cpu1_by_reading(fs.path("c"));
  });
  live.settle();
  EXPECT_GT(live.counters().reordered, 0u) << "the dirtying did not overtake the run: the test lost its point";
  EXPECT_EQ(live.now().cached, 128 * p + 8 * p) << live.now();
  EXPECT_EQ(live.now().wasted, 48 * p) << live.now();
  EXPECT_EQ(live.now(), fresh_scan(fs.dir()));
}

// Seen with the daemon: a copy evicted while a process was still reading it in. Readahead
// inserts pages on one CPU while DONTNEED removes them on the other, over and over; at
// quiescence the live model must equal a fresh scan exactly, whatever order the runs arrived in.
void read_sequential(const std::string& path, std::uint64_t chunk) {
  int fd = open(path.c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);  // large readahead windows
  std::vector<char> buf(static_cast<std::size_t>(chunk));
  while (read(fd, buf.data(), buf.size()) > 0) std::this_thread::sleep_for(200us);
  close(fd);
}

TEST(Live, PagesReadInWhileACopyIsEvictedAreCounted) {
  DUPCACHE_REQUIRE_ROOT("mkfs.btrfs", "mkfs.xfs");
  DUPCACHE_REQUIRE_TWO_CPUS();
  // mincore, the fallback before Linux 6.5, sees a page only once its read has completed.
  for (auto [type, residency] : {std::pair{"btrfs", residency_mode::automatic}, std::pair{"xfs", residency_mode::mincore}}) {
    SCOPED_TRACE(std::string(type) + (residency == residency_mode::mincore ? " mincore" : " cachestat"));
    scratch_fs fs(type);
    const std::uint64_t p = page_size();
    write_file(fs.path("a"), 1024 * p, 40);
    reflink(fs.path("a"), fs.path("b"));
    for (auto n : {"a", "b"}) evict(fs.path(n));
    live_harness live(fs.dir(), 16 * MiB, true, residency);
    read_all(fs.path("a"));
    live.settle();
    for (int round = 0; round < 2; ++round) {
      std::atomic<bool> reading{true};
      std::thread reader([&] {
        on_cpu(0, [&] { read_sequential(fs.path("b"), 16 * p); });
        reading = false;
      });
      on_cpu(1, [&] {
        while (reading) {
          evict_range(fs.path("b"), 0, 1024 * p);
          std::this_thread::sleep_for(1ms);
        }
      });
      reader.join();
      // The tail the reader read in after the last eviction stays: a known, nonzero waste.
      live.settle();
      const totals truth = fresh_scan(fs.dir());
      EXPECT_EQ(live.now(), truth) << "round " << round << "; reordered " << live.counters().reordered;
      EXPECT_EQ(truth.cached, 1024 * p + cached_pages(fs.path("b")) * p);
    }
  }
}

// A blkio (cgroup v1) group that throttles reads from one block device, for the threads put
// in it: reads stay in flight long enough to be caught at a count.
class read_throttle {
 public:
  static constexpr const char* root = "/sys/fs/cgroup/blkio";
  read_throttle(dev_t dev, std::uint64_t bytes_per_s) : dir_(std::string(root) + "/dupcache-live-" + std::to_string(getpid())) {
    if (mkdir(dir_.c_str(), 0755) != 0) throw std::runtime_error("mkdir " + dir_);
    write(dir_ + "/blkio.throttle.read_bps_device",
          std::to_string(major(dev)) + ":" + std::to_string(minor(dev)) + " " + std::to_string(bytes_per_s));
  }
  ~read_throttle() { rmdir(dir_.c_str()); }
  void enter() const { write(dir_ + "/tasks", std::to_string(gettid())); }
  static void leave() { write(std::string(root) + "/tasks", std::to_string(gettid())); }

 private:
  static void write(const std::string& file, const std::string& line) {
    std::ofstream f(file);
    f << line << "\n";
    f.flush();
    if (!f) throw std::runtime_error("write " + line + " to " + file);
  }
  std::string dir_;
};

// Issue 18, the late pages: a file re-read from the kernel (as the daemon has it done after
// acting on it) while readahead is still reading pages in. The insertions were reported when
// the pages entered the cache, before their reads completed; mincore (the residency fallback
// before Linux 6.5) does not see such pages yet, so the count missed them, their insertions
// were skipped as already counted, and the file stayed short of them (and of its waste) for
// good. cachestat counts them; both must end equal to a fresh scan.
TEST(Live, PagesStillBeingReadInWhenAFileIsRecountedAreCounted) {
  DUPCACHE_REQUIRE_ROOT("mkfs.xfs");
  if (access(read_throttle::root, W_OK) != 0) {
    if (under_ci()) FAIL() << "CI=true: the blkio cgroup (v1) is needed to slow reads down";
    GTEST_SKIP() << "the blkio cgroup (v1) is needed to slow reads down";
  }
  for (auto residency : {residency_mode::mincore, residency_mode::cachestat}) {
    SCOPED_TRACE(residency == residency_mode::mincore ? "mincore" : "cachestat");
    scratch_fs fs("xfs");  // st_dev is the loop device, which the throttle names
    const std::uint64_t p = page_size();
    write_file(fs.path("a"), 128 * p, 41);
    reflink(fs.path("a"), fs.path("b"));
    for (auto n : {"a", "b"}) evict(fs.path(n));
    struct stat st {};
    ASSERT_EQ(stat(fs.dir().c_str(), &st), 0);
    read_throttle slow(st.st_dev, 256 * KiB);  // 512 KiB: about 2 s of reads in flight
    live_harness live(fs.dir(), 16 * MiB, true, residency);
    read_all(fs.path("a"));
    live.settle();
    std::atomic<bool> reading{true};
    std::thread reader([&] {
      slow.enter();
      read_sequential(fs.path("b"), 16 * p);
      read_throttle::leave();
      reading = false;
    });
    int rechecked = 0;  // b is known once its first insertion has been applied
    while (reading) {
      rechecked += live.recheck(fs.path("b"));
      live.pump();
      std::this_thread::sleep_for(100ms);
    }
    reader.join();
    EXPECT_GT(rechecked, 5) << "b was not re-read while it was read in";
    live.settle();
    const totals truth = fresh_scan(fs.dir());
    EXPECT_EQ(truth.cached, 256 * p);
    EXPECT_EQ(truth.wasted, 128 * p);
    EXPECT_EQ(live.now(), truth);
  }
}

TEST(Live, MixedWorkloadEqualsFreshScan) {
  DUPCACHE_REQUIRE_ROOT("mkfs.btrfs");
  scratch_fs fs("btrfs");
  const std::uint64_t p = page_size();
  write_file(fs.path("a"), 1024 * p, 1);
  reflink(fs.path("a"), fs.path("b"));
  reflink(fs.path("a"), fs.path("c"));
  for (auto n : {"a", "b", "c"}) evict(fs.path(n));
  live_harness live(fs.dir());
  EXPECT_EQ(live.now().cached, 0u);

  read_all(fs.path("a"));
  read_range(fs.path("b"), 0, 512 * p);
  read_all(fs.path("c"));
  live.settle();
  EXPECT_EQ(live.now().wasted, (512 + 1024) * p) << live.now();

  overwrite(fs.path("c"), 0, 64 * p, 7);  // dirty, then COW at writeback
  {
    int fd = open(fs.path("c").c_str(), O_RDWR);
    fsync(fd);
    close(fd);
  }
  reflink(fs.path("a"), fs.path("d"));  // a file the seed never saw
  read_all(fs.path("d"));
  ASSERT_EQ(unlink(fs.path("b").c_str()), 0);
  evict_range(fs.path("a"), 512 * p, 512 * p);
  clone_range(fs.path("a"), 0, 256 * p, fs.path("e"), 0);
  read_all(fs.path("e"));
  ASSERT_EQ(truncate(fs.path("c").c_str(), static_cast<off_t>(512 * p)), 0);
  live.settle();

  // Physical blocks of a's extent, by who caches them:
  //   0..63    a, d, e      (c's were overwritten)  -> 2 extra copies each
  //   64..255  a, c, d, e                           -> 3
  //   256..511 a, c, d                              -> 2
  //   512..    d alone (a's upper half evicted, c truncated, b deleted)
  const std::uint64_t wasted = (64 * 2 + 192 * 3 + 256 * 2) * p;
  const std::uint64_t cached = (512 + 512 + 1024 + 256) * p;
  const totals truth = fresh_scan(fs.dir());
  EXPECT_EQ(truth.wasted, wasted);
  EXPECT_EQ(truth.cached, cached);
  EXPECT_EQ(live.now(), truth);
  EXPECT_EQ(live.counters().lost_events, 0u);
  EXPECT_GT(live.counters().sharing_changes, 0u);
}

TEST(Live, CloneOverACachedFileRereadsItsExtents) {
  DUPCACHE_REQUIRE_ROOT("mkfs.btrfs");
  scratch_fs fs("btrfs");
  const std::uint64_t p = page_size();
  write_file(fs.path("a"), 128 * p, 8);
  write_file(fs.path("f"), 128 * p, 9);  // its own data, not shared
  for (auto n : {"a", "f"}) evict(fs.path(n));
  live_harness live(fs.dir());
  read_all(fs.path("a"));
  read_all(fs.path("f"));
  live.settle();
  EXPECT_EQ(live.now().wasted, 0u);
  // f's first 64 pages now share a's blocks; the kernel drops f's cached copy of that range.
  clone_range(fs.path("a"), 0, 64 * p, fs.path("f"), 0);
  read_all(fs.path("f"));
  live.settle();
  EXPECT_EQ(live.now().wasted, 64 * p) << live.now();
  EXPECT_EQ(live.now(), fresh_scan(fs.dir()));
}

TEST(Live, DirtyPagesLeaveTheIndexUntilWrittenBack) {
  DUPCACHE_REQUIRE_ROOT("mkfs.btrfs");
  scratch_fs fs("btrfs");
  const std::uint64_t p = page_size();
  write_file(fs.path("a"), 64 * p, 10);
  reflink(fs.path("a"), fs.path("b"));
  for (auto n : {"a", "b"}) evict(fs.path(n));
  live_harness live(fs.dir());
  read_all(fs.path("a"));
  read_all(fs.path("b"));
  overwrite(fs.path("b"), 0, 16 * p, 11);  // dirty, not written back
  live.settle();
  EXPECT_EQ(live.now().wasted, 48 * p) << live.now();
  EXPECT_EQ(live.now(), fresh_scan(fs.dir()));
  must({"sync"});
  live.settle();
  EXPECT_EQ(live.now().wasted, 48 * p) << "after writeback the COW copy shares nothing";
  EXPECT_EQ(live.now(), fresh_scan(fs.dir()));
}

TEST(Live, DuplicateInsertionsAreCounted) {
  DUPCACHE_REQUIRE_ROOT("mkfs.btrfs");
  scratch_fs fs("btrfs");
  const std::uint64_t p = page_size();
  write_file(fs.path("a"), 256 * p, 2);
  reflink(fs.path("a"), fs.path("b"));
  for (auto n : {"a", "b"}) evict(fs.path(n));
  live_harness live(fs.dir());
  read_range(fs.path("a"), 0, 200 * p);
  live.settle();
  const auto before = live.counters();
  EXPECT_EQ(before.duplicate_inserted_pages, 0u);
  read_range(fs.path("b"), 100 * p, 156 * p);  // pages 100..255: 100..199 were cached by a
  live.settle();
  EXPECT_EQ(live.counters().duplicate_inserted_pages - before.duplicate_inserted_pages, 100u);
  EXPECT_EQ(live.counters().inserted_pages - before.inserted_pages, 156u);
  EXPECT_EQ(live.now(), fresh_scan(fs.dir()));
  EXPECT_EQ(live.now().wasted, 100 * p);
}

TEST(Live, SnapshotCopiesStayApart) {
  DUPCACHE_REQUIRE_ROOT("mkfs.btrfs", "btrfs");
  scratch_fs fs("btrfs");
  const std::uint64_t p = page_size();
  must({"btrfs", "-q", "subvolume", "create", fs.path("vol")});
  write_file(fs.path("vol/f"), 300 * p, 3);
  must({"btrfs", "-q", "subvolume", "snapshot", fs.path("vol"), fs.path("snap")});
  for (auto n : {"vol/f", "snap/f"}) evict(fs.path(n));
  live_harness live(fs.dir());
  read_all(fs.path("vol/f"));
  read_all(fs.path("snap/f"));
  live.settle();
  const auto now = live.now();
  EXPECT_EQ(now.files.size(), 2u) << now;
  EXPECT_EQ(now.cached, 600 * p);
  EXPECT_EQ(now.wasted, 300 * p);
  EXPECT_EQ(now, fresh_scan(fs.dir()));
}

// path -> subvolume id of every cached file, and the files counted.
std::pair<std::map<std::string, std::uint64_t>, std::uint64_t> subvols(const report_model& m) {
  std::map<std::string, std::uint64_t> by_path;
  for (const auto& f : m.files) by_path[f.path] = f.subvol;
  return {by_path, m.files_scanned};
}

// A snapshot made after another was deleted gets the deleted one's anonymous st_dev; its files
// must still be filed under their own subvolume, and the deleted snapshot's file not counted.
TEST(Live, SnapshotReusingADeletedSnapshotsDeviceGetsItsOwnSubvolume) {
  DUPCACHE_REQUIRE_ROOT("mkfs.btrfs", "btrfs");
  scratch_fs fs("btrfs");
  const std::uint64_t p = page_size();
  must({"btrfs", "-q", "subvolume", "create", fs.path("sv")});
  ASSERT_EQ(mkdir(fs.path("snaps").c_str(), 0755), 0);
  write_file(fs.path("sv/f"), 16 * p, 12);
  evict(fs.path("sv/f"));
  live_harness live(fs.dir());
  must({"btrfs", "-q", "subvolume", "snapshot", "-r", fs.path("sv"), fs.path("snaps/a")});
  struct stat a {};
  ASSERT_EQ(stat(fs.path("snaps/a/f").c_str(), &a), 0);
  read_all(fs.path("snaps/a/f"));
  live.settle();
  must({"btrfs", "-q", "subvolume", "delete", fs.path("snaps/a")});
  must({"btrfs", "-q", "subvolume", "snapshot", "-r", fs.path("sv"), fs.path("snaps/b")});
  struct stat b {};
  ASSERT_EQ(stat(fs.path("snaps/b/f").c_str(), &b), 0);
  ASSERT_EQ(a.st_dev, b.st_dev) << "the scene needs the device number reused";
  read_all(fs.path("snaps/b/f"));
  live.settle();

  scan_options so;
  so.paths = {fs.dir()};
  auto fresh = scan(so);
  ASSERT_TRUE(fresh) << fresh.err().message();
  const auto truth = subvols(build_report(*fresh));
  EXPECT_EQ(truth.first.at(fs.path("snaps/b/f")), 258u);  // 256 sv, 257 a, 258 b
  EXPECT_EQ(truth.second, 2u);                             // sv/f and snaps/b/f
  EXPECT_EQ(subvols(live.report()), truth);
  EXPECT_EQ(live.now(), fresh_scan(fs.dir()));
}

// FIDEDUPERANGE of the whole of src onto dst (same length, same contents).
void dedupe_whole(const std::string& src, const std::string& dst, std::uint64_t len) {
  int sfd = open(src.c_str(), O_RDONLY);
  int dfd = open(dst.c_str(), O_RDWR);
  ASSERT_GE(sfd, 0);
  ASSERT_GE(dfd, 0);
  std::vector<char> buf(sizeof(file_dedupe_range) + sizeof(file_dedupe_range_info), 0);
  auto* arg = reinterpret_cast<file_dedupe_range*>(buf.data());
  arg->src_length = len;
  arg->dest_count = 1;
  arg->info[0].dest_fd = dfd;
  ASSERT_EQ(ioctl(sfd, FIDEDUPERANGE, arg), 0) << strerror(errno);
  EXPECT_EQ(arg->info[0].status, FILE_DEDUPE_RANGE_SAME);
  EXPECT_EQ(arg->info[0].bytes_deduped, len);
  close(sfd);
  close(dfd);
}

// Sharing made by a clone or a dedupe while both files are cached: the side whose extents
// change may keep its pages, and must be placed again, whichever side the ioctl was made on.
TEST(Live, SharingChangesWhileBothSidesAreCachedEqualFreshScan) {
  DUPCACHE_REQUIRE_ROOT("mkfs.btrfs", "mkfs.xfs");
  const std::uint64_t p = page_size();
  for (const char* type : {"btrfs", "xfs"}) {
    SCOPED_TRACE(type);
    scratch_fs fs(type);
    write_file(fs.path("a"), 64 * p, 21);
    write_file(fs.path("b"), 64 * p, 22);
    write_file(fs.path("c"), 64 * p, 21);  // a's contents in its own blocks
    for (auto n : {"a", "b", "c"}) evict(fs.path(n));
    live_harness live(fs.dir());
    for (auto n : {"a", "b", "c"}) read_all(fs.path(n));
    live.settle();
    ASSERT_EQ(live.now().wasted, 0u) << live.now();

    clone_range(fs.path("a"), 0, 16 * p, fs.path("b"), 0);
    read_all(fs.path("b"));
    dedupe_whole(fs.path("a"), fs.path("c"), 64 * p);
    read_all(fs.path("c"));
    live.settle();
    const totals truth = fresh_scan(fs.dir());
    EXPECT_EQ(truth.cached, 3 * 64 * p);
    EXPECT_EQ(truth.wasted, (16 + 64) * p) << truth;  // b's first 16 pages and all of c are a's
    EXPECT_EQ(live.now(), truth);
  }
}

// A clone drops the destination's cached pages inside the syscall (the kernel invalidates its
// page cache over the cloned range). Its record must come after those removals: a consumer that
// re-read the destination's extents on a record made at syscall entry could read them before
// the clone (btrfs first writes the source's dirty range back, which can take long) and keep
// the old blocks for every page read in afterwards.
TEST(Live, SharingRecordsFollowTheChangeTheyAnnounce) {
  DUPCACHE_REQUIRE_ROOT("mkfs.btrfs", "mkfs.xfs");
  const std::uint64_t p = page_size();
  for (const char* type : {"btrfs", "xfs"}) {
    SCOPED_TRACE(type);
    scratch_fs fs(type);
    write_file(fs.path("a"), 64 * p, 31);
    write_file(fs.path("b"), 64 * p, 32);
    read_all(fs.path("b"));  // b's 64 pages cached: the clone removes them
    scan_options so;
    so.paths = {fs.dir()};
    auto devs = live::superblock_devs(so);
    ASSERT_TRUE(devs) << devs.err().message();
    trace::tracer_options to;
    to.watch_devs = *devs;
    auto t = trace::tracer::open(to);
    ASSERT_TRUE(t) << t.err().message();
    struct stat st {};
    ASSERT_EQ(stat(fs.path("b").c_str(), &st), 0);
    std::uint64_t last_delete_ns = 0, deleted_pages = 0, clone_ns = 0;
    int clones = 0;
    auto take = [&](const trace::decoded_event& ev) {
      if (!ev.has_identity || ev.ino != st.st_ino) return;
      if (ev.kind == trace::event_kind::cache_delete) {
        last_delete_ns = std::max(last_delete_ns, ev.timestamp_ns);
        deleted_pages += ev.nr_pages;
      }
      if (ev.kind == trace::event_kind::share_clone_range) {
        clone_ns = ev.timestamp_ns;
        ++clones;
      }
    };
    clone_range(fs.path("a"), 0, 64 * p, fs.path("b"), 0);  // b's pages go inside the ioctl
    const std::uint64_t returned_ns = monotonic_ns();
    for (int i = 0; i < 10; ++i) ASSERT_TRUE((*t)->poll(20, take));
    EXPECT_EQ(deleted_pages, 64u);
    ASSERT_EQ(clones, 1);
    EXPECT_GE(clone_ns, last_delete_ns) << "the clone's record was made before the kernel acted";
    EXPECT_LE(clone_ns, returned_ns);
  }
}

// A repair (or first) seed while files are dirty: the scan leaves their dirty pages out of the
// index, and writeback sends no event. Once written back they are clean and placed, and a
// reflink of them makes them shared: the live model must have re-resolved them by then.
// Without sharing records: the scan's own FIEMAP records would re-resolve the file after the
// seed and hide the case, and they are not there when the kernel has no syscall tracepoints or
// when they are lost with the rest in the overflow a repair follows.
TEST(Live, FilesDirtyAtTheSeedAreIndexedOnceWrittenBack) {
  DUPCACHE_REQUIRE_ROOT("mkfs.btrfs", "mkfs.xfs");
  const std::uint64_t p = page_size();
  for (const char* type : {"btrfs", "xfs"}) {
    SCOPED_TRACE(type);
    scratch_fs fs(type);
    write_file(fs.path("a"), 64 * p, 41);
    evict(fs.path("a"));
    overwrite(fs.path("a"), 0, 64 * p, 42);  // 64 dirty pages, nothing else cached
    live_harness live(fs.dir(), 16 * MiB, true, residency_mode::automatic, false);
    live.settle();
    EXPECT_EQ(live.now().cached, 64 * p) << live.now();
    must({"sync"});
    reflink(fs.path("a"), fs.path("b"));
    read_all(fs.path("b"));
    live.settle();
    const totals truth = fresh_scan(fs.dir());
    EXPECT_EQ(truth.wasted, 64 * p) << truth;  // a's 64 written-back pages and b's, one extent
    EXPECT_EQ(live.now(), truth);
  }
}

// A rename sends no event. The live model must show a cached file under its new name (fresh
// scans do; the daemon acts by path), also when a file was moved over another one.
TEST(Live, RenamedFilesAreShownUnderTheirNewName) {
  DUPCACHE_REQUIRE_ROOT("mkfs.btrfs", "mkfs.xfs");
  const std::uint64_t p = page_size();
  for (const char* type : {"btrfs", "xfs"}) {
    SCOPED_TRACE(type);
    scratch_fs fs(type);
    ASSERT_EQ(mkdir(fs.path("d").c_str(), 0755), 0);
    write_file(fs.path("a"), 32 * p, 51);
    write_file(fs.path("b"), 16 * p, 52);
    reflink(fs.path("a"), fs.path("d/c"));
    for (auto n : {"a", "b", "d/c"}) evict(fs.path(n));
    live_harness live(fs.dir());
    for (auto n : {"a", "b", "d/c"}) read_all(fs.path(n));
    live.settle();
    ASSERT_EQ(live.now(), fresh_scan(fs.dir()));
    ASSERT_EQ(rename(fs.path("a").c_str(), fs.path("d/a2").c_str()), 0);
    ASSERT_EQ(rename(fs.path("d/c").c_str(), fs.path("b").c_str()), 0);  // b is replaced
    const totals truth = fresh_scan(fs.dir());
    EXPECT_EQ(truth.files.size(), 2u) << truth;
    EXPECT_EQ(truth.wasted, 32 * p) << truth;
    // Paths are checked about once a second.
    const auto end = std::chrono::steady_clock::now() + 5s;
    while (live.now() != truth && std::chrono::steady_clock::now() < end) {
      live.pump();
      std::this_thread::sleep_for(50ms);
    }
    EXPECT_EQ(live.now(), truth);
  }
}

// One file can hold the same blocks at two offsets (two clones of one range into it). The index
// holds each physical block once per copy, so while either offset is cached the blocks are the
// file's: evicting one offset must not take them out of the index while the other still
// caches them (the scan counts them; the soak saw this as shared bytes missing from `top`).
TEST(Live, BlocksAFileHoldsTwiceStayIndexedWhileOneOffsetIsCached) {
  DUPCACHE_REQUIRE_ROOT("mkfs.btrfs", "mkfs.xfs");
  const std::uint64_t p = page_size();
  for (const char* type : {"btrfs", "xfs"}) {
    SCOPED_TRACE(type);
    scratch_fs fs(type);
    write_file(fs.path("a"), 16 * p, 71);
    write_file(fs.path("b"), 16 * p, 72);
    clone_range(fs.path("a"), 0, 4 * p, fs.path("b"), 0);
    clone_range(fs.path("a"), 0, 4 * p, fs.path("b"), 8 * p);  // b[0,4) and b[8,12): a's first 4 blocks
    evict(fs.path("a"));
    evict(fs.path("b"));
    live_harness live(fs.dir());
    read_all(fs.path("a"));
    read_all(fs.path("b"));
    live.settle();
    totals truth = fresh_scan(fs.dir());
    ASSERT_EQ(truth.wasted, 4 * p) << truth;  // a's 4 blocks, cached by a and by b (once)
    ASSERT_EQ(live.now(), truth);
    const std::uint64_t evicted_ns = monotonic_ns();
    evict_range(fs.path("b"), 0, 4 * p);  // b[8,12) still caches the 4 blocks
    live.pump();  // the removals applied; b waits to be read again
    EXPECT_LT(live.applied_before(), evicted_ns) << "b is in doubt: not current to the eviction";
    live.settle();
    EXPECT_GT(live.applied_before(), evicted_ns);
    truth = fresh_scan(fs.dir());
    EXPECT_EQ(truth.wasted, 4 * p) << truth;
    EXPECT_EQ(truth.cached, 28 * p) << truth;
    EXPECT_EQ(live.now(), truth);
    evict_range(fs.path("b"), 8 * p, 4 * p);  // now no offset of b caches them
    live.settle();
    truth = fresh_scan(fs.dir());
    EXPECT_EQ(truth.wasted, 0u) << truth;
    EXPECT_EQ(live.now(), truth);
    read_all(fs.path("b"));
    live.settle();
    ASSERT_EQ(unlink(fs.path("b").c_str()), 0);  // its pages go as the inode does
    live.settle();
    truth = fresh_scan(fs.dir());
    EXPECT_EQ(truth.files.size(), 1u) << truth;
    EXPECT_EQ(live.now(), truth);
  }
}

// A file unlinked while something still holds it keeps its pages cached, but it is no longer a
// file of the tree and a scan cannot see it: the live model drops it too (within about a
// second: paths are checked that often). Seen in the soak as btrfs delayed iputs: unlinked
// inodes that no process held kept their pages for tens of seconds.
TEST(Live, UnlinkedFilesLeaveTheModelWhileStillHeld) {
  DUPCACHE_REQUIRE_ROOT("mkfs.btrfs", "mkfs.xfs");
  const std::uint64_t p = page_size();
  for (const char* type : {"btrfs", "xfs"}) {
    SCOPED_TRACE(type);
    scratch_fs fs(type);
    write_file(fs.path("a"), 16 * p, 81);
    reflink(fs.path("a"), fs.path("b"));
    evict(fs.path("a"));
    evict(fs.path("b"));
    live_harness live(fs.dir());
    read_all(fs.path("a"));
    read_all(fs.path("b"));
    live.settle();
    totals truth = fresh_scan(fs.dir());
    ASSERT_EQ(truth.wasted, 16 * p) << truth;
    ASSERT_EQ(live.now(), truth);
    const int held = open(fs.path("b").c_str(), O_RDONLY | O_CLOEXEC);
    ASSERT_GE(held, 0);
    ASSERT_EQ(unlink(fs.path("b").c_str()), 0);
    {
      void* m = mmap(nullptr, 16 * p, PROT_READ, MAP_SHARED, held, 0);
      ASSERT_NE(m, MAP_FAILED);
      std::vector<unsigned char> vec(16);
      ASSERT_EQ(mincore(m, 16 * p, vec.data()), 0);
      munmap(m, 16 * p);
      EXPECT_EQ(std::count_if(vec.begin(), vec.end(), [](unsigned char c) { return c & 1; }), 16)
          << "b's pages stay cached while it is held";
    }
    truth = fresh_scan(fs.dir());
    EXPECT_EQ(truth.files.size(), 1u) << truth;
    EXPECT_EQ(truth.wasted, 0u) << truth;
    const auto end = std::chrono::steady_clock::now() + 5s;
    while (live.now() != truth && std::chrono::steady_clock::now() < end) {
      live.pump();
      std::this_thread::sleep_for(50ms);
    }
    EXPECT_EQ(live.now(), truth);
    close(held);
  }
}

// fallocate changes extents too: a punched hole frees the file's blocks there (another copy may
// still hold them), and a read of the hole caches zeroes that no block backs. The model must
// not place them at the old blocks (seen in the soak as shared bytes on XFS that no scan saw).
TEST(Live, PunchedHolesAreNotPlacedAtTheirOldBlocks) {
  DUPCACHE_REQUIRE_ROOT("mkfs.btrfs", "mkfs.xfs");
  const std::uint64_t p = page_size();
  for (const char* type : {"btrfs", "xfs"}) {
    SCOPED_TRACE(type);
    scratch_fs fs(type);
    write_file(fs.path("a"), 16 * p, 91);
    reflink(fs.path("a"), fs.path("b"));
    evict(fs.path("a"));
    evict(fs.path("b"));
    live_harness live(fs.dir());
    read_all(fs.path("a"));
    read_all(fs.path("b"));
    live.settle();
    totals truth = fresh_scan(fs.dir());
    ASSERT_EQ(truth.wasted, 16 * p) << truth;
    ASSERT_EQ(live.now(), truth);
    {
      const int fd = open(fs.path("b").c_str(), O_RDWR | O_CLOEXEC);
      ASSERT_GE(fd, 0);
      ASSERT_EQ(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, static_cast<off_t>(4 * p)), 0);
      close(fd);
    }
    live.settle();
    read_all(fs.path("b"));  // its first 4 pages come back as zeroes of a hole
    live.settle();
    truth = fresh_scan(fs.dir());
    EXPECT_EQ(truth.wasted, 12 * p) << truth;
    EXPECT_EQ(truth.cached, 32 * p) << truth;
    EXPECT_EQ(live.now(), truth);
  }
}

// Two cached reflink copies (16 pages wasted) under a controller whose compaction floor is 8,
// then 24 short-lived files, each made and deleted by come_and_go(live, path). The index must
// stay bounded throughout and still equal a fresh scan at the end.
void files_come_and_go(const std::function<void(live_harness&, const std::string&)>& come_and_go,
                       std::uint64_t min_compactions) {
  const std::uint64_t p = page_size();
  scratch_fs fs("btrfs");
  write_file(fs.path("a"), 16 * p, 95);
  reflink(fs.path("a"), fs.path("b"));
  live_harness live(fs.dir(), 16 * MiB, true, residency_mode::automatic, true, 8);
  read_all(fs.path("a"));
  read_all(fs.path("b"));
  live.settle();
  for (int i = 0; i < 24; ++i) {
    come_and_go(live, fs.path("t" + std::to_string(i)));
    live.settle();
    EXPECT_LE(live.state().files.size(), 2u + 2 * 8 + 2) << "after file " << i;
    EXPECT_LE(live.known_files(), 2u + 2 * 8 + 2) << "after file " << i;
  }
  EXPECT_GE(live.counters().compactions, min_compactions);
  const totals truth = fresh_scan(fs.dir());
  EXPECT_EQ(truth.wasted, 16 * p) << truth;
  EXPECT_EQ(truth.cached, 32 * p) << truth;
  EXPECT_EQ(live.now(), truth);
}

// Every file created adds a copy id, and a deleted file's entry stays until the next seed. On a
// host where files come and go, the controller seeds again once the entries of files gone
// outnumber the files known (and a floor, 8 here): memory follows what is known.
TEST(Live, EntriesOfFilesGoneAreCompactedAway) {
  DUPCACHE_REQUIRE_ROOT("mkfs.btrfs");
  files_come_and_go(
      [](live_harness& live, const std::string& t) {
        write_file(t, 4 * page_size(), 96);
        live.pump();
        ASSERT_EQ(unlink(t.c_str()), 0);
      },
      2);
}

// A file deleted while nothing of it is cached sends no event at all: its slot and entry are
// only known to be idle. They must not pile up either (the soak's daemon grew 1.5 MiB a minute).
TEST(Live, FilesDeletedWhileEvictedAreCompactedAway) {
  DUPCACHE_REQUIRE_ROOT("mkfs.btrfs");
  files_come_and_go(
      [](live_harness& live, const std::string& t) {
        write_file(t, 4 * page_size(), 98);
        read_all(t);
        live.settle();
        evict(t);  // nothing of it cached: the model learns it from the removals
        live.settle();
        ASSERT_EQ(unlink(t.c_str()), 0);  // and this sends nothing
      },
      1);
}

struct row_figures {
  std::uint64_t cached_bytes = 0, dirty_bytes = 0;
};

// The figures of `path`'s row in a report model (zero when it has none).
row_figures row_of(const report_model& m, const std::string& path) {
  for (const auto& f : m.files) {
    if (f.path == path) return {f.cached_bytes, f.dirty_bytes};
  }
  return {};
}

// Overwrites `pages` pages of `path` from offset 0 with `byte`, leaving them dirty.
void dirty_pages(const std::string& path, std::uint64_t pages, char byte) {
  const std::vector<char> buf(pages * page_size(), byte);
  int fd = open(path.c_str(), O_WRONLY);
  ASSERT_GE(fd, 0) << strerror(errno);
  ASSERT_EQ(pwrite(fd, buf.data(), buf.size(), 0), static_cast<ssize_t>(buf.size())) << strerror(errno);
  close(fd);
}

void sync_file(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY);
  ASSERT_GE(fd, 0) << strerror(errno);
  ASSERT_EQ(fsync(fd), 0) << strerror(errno);
  close(fd);
}

// Writeback sends no event: a row's dirty bytes must still follow it, whether the pages were
// dirty when the model was seeded (a rescan or compaction in the middle of writes: the soak's
// daemon kept such rows dirty for good) or were dirtied under it.
TEST(Live, DirtyBytesFollowWriteback) {
  DUPCACHE_REQUIRE_ROOT("mkfs.btrfs", "mkfs.xfs");
  const std::uint64_t p = page_size();
  for (const char* type : {"btrfs", "xfs"}) {
    SCOPED_TRACE(type);
    scratch_fs fs(type);
    write_file(fs.path("a"), 16 * p, 41);
    reflink(fs.path("a"), fs.path("b"));
    read_all(fs.path("a"));
    read_all(fs.path("b"));
    dirty_pages(fs.path("b"), 4, 'x');  // dirty when the seed scans
    live_harness live(fs.dir());
    const std::uint64_t dirty_b = row_of(live.report(), fs.path("b")).dirty_bytes;
    if (std::string(type) == "btrfs") {
      EXPECT_EQ(dirty_b, 4 * p);
    }
    EXPECT_GE(dirty_b, 4 * p);
    sync_file(fs.path("b"));
    live.settle();
    EXPECT_EQ(row_of(live.report(), fs.path("b")).dirty_bytes, 0u);
    EXPECT_EQ(row_of(live.report(), fs.path("b")).cached_bytes, 16 * p);
    dirty_pages(fs.path("a"), 2, 'y');  // dirtied under the model
    live.settle();
    // Counted by folio: on XFS the 2 pages may lie in one large folio, all of it dirty.
    const std::uint64_t dirty_a = row_of(live.report(), fs.path("a")).dirty_bytes;
    if (std::string(type) == "btrfs") {
      EXPECT_EQ(dirty_a, 2 * p);
    }
    EXPECT_GE(dirty_a, 2 * p);
    EXPECT_EQ(dirty_a, row_of(fresh_report(fs.dir()), fs.path("a")).dirty_bytes);
    EXPECT_EQ(live.now(), fresh_scan(fs.dir()));
    sync_file(fs.path("a"));
    live.settle();
    EXPECT_EQ(row_of(live.report(), fs.path("a")).dirty_bytes, 0u);
    EXPECT_EQ(live.now(), fresh_scan(fs.dir()));
  }
}

// A dirty file re-read in the middle of applying records (an insertion after the extents
// changed: here a dedupe elsewhere) must still be looked at once written back. The soak's daemon
// kept 58-62 dirty pages in such rows, and their written-back pages out of the index, until a
// repair rescan.
TEST(Live, DirtyFileReadAgainWhileApplyingIsWatchedUntilWrittenBack) {
  DUPCACHE_REQUIRE_ROOT("mkfs.btrfs", "mkfs.xfs");
  const std::uint64_t p = page_size();
  for (const char* type : {"btrfs", "xfs"}) {
    SCOPED_TRACE(type);
    scratch_fs fs(type);
    write_file(fs.path("a"), 16 * p, 43);
    reflink(fs.path("a"), fs.path("b"));
    write_file(fs.path("c"), 8 * p, 44);
    write_file(fs.path("d"), 8 * p, 44);
    for (auto n : {"a", "b", "c", "d"}) evict(fs.path(n));
    read_all(fs.path("a"));
    read_all(fs.path("b"));
    evict_range(fs.path("a"), 12 * p, 4 * p);
    live_harness live(fs.dir());
    dirty_pages(fs.path("a"), 2, 'z');
    live.settle();  // a waits for writeback
    dedupe_whole(fs.path("c"), fs.path("d"), 8 * p);  // every file's extents are read again
    read_all(fs.path("a"));  // its next insertion re-reads a while it is still dirty
    live.settle();
    EXPECT_GE(row_of(live.report(), fs.path("a")).dirty_bytes, 2 * p);
    sync_file(fs.path("a"));
    live.settle();
    EXPECT_EQ(row_of(live.report(), fs.path("a")).dirty_bytes, 0u);
    EXPECT_EQ(row_of(live.report(), fs.path("a")).cached_bytes, 16 * p);
    // On btrfs the two pages were written to new blocks: b shares 14 of a's 16. The dedupe
    // read c and d in to compare them: 8 more.
    if (std::string(type) == "btrfs") {
      EXPECT_EQ(live.now().wasted, (14 + 8) * p);
    }
    EXPECT_EQ(live.now(), fresh_scan(fs.dir()));
  }
}

// A record the kernel made that the model never applied, with nothing to tell it was lost (no
// drop counted): the audit finds the file's count different from cachestat's once the file is
// quiet, and re-reads it. A quiet scene first: the audit compares every file and repairs none.
TEST(Live, TheAuditRepairsARecordNeverApplied) {
  DUPCACHE_REQUIRE_ROOT("mkfs.btrfs", "mkfs.xfs");
  const std::uint64_t p = page_size();
  for (const char* type : {"btrfs", "xfs"}) {
    SCOPED_TRACE(type);
    scratch_fs fs(type);
    write_file(fs.path("a"), 64 * p, 45);
    reflink(fs.path("a"), fs.path("b"));
    read_all(fs.path("a"));
    read_all(fs.path("b"));
    live_harness live(fs.dir());
    const auto pump_for = [&](std::chrono::milliseconds d) {
      for (const auto end = std::chrono::steady_clock::now() + d; std::chrono::steady_clock::now() < end;) {
        live.pump();
        std::this_thread::sleep_for(20ms);
      }
    };
    pump_for(1500ms);  // a whole audit round (every second) over quiet files
    EXPECT_EQ(live.counters().audit_repairs, 0u);
    EXPECT_EQ(live.now().wasted, 64 * p);
    struct stat st {};
    ASSERT_EQ(stat(fs.path("b").c_str(), &st), 0);
    int dropped = 0;
    live.drop = [&](const trace::decoded_event& ev) {
      if (dropped > 0 || ev.kind != trace::event_kind::cache_delete || ev.ino != st.st_ino) return false;
      ++dropped;
      return true;
    };
    evict(fs.path("b"));
    live.settle();
    EXPECT_EQ(dropped, 1);
    EXPECT_GT(row_of(live.report(), fs.path("b")).cached_bytes, 0u) << "the model misses the removal";
    pump_for(1500ms);  // quiet for the audit's 250 ms, then its next round
    live.settle();
    EXPECT_EQ(live.counters().audit_repairs, 1u);
    EXPECT_EQ(live.counters().lost_events, 0u);
    EXPECT_EQ(row_of(live.report(), fs.path("b")).cached_bytes, 0u);
    EXPECT_EQ(live.now().wasted, 0u);
    EXPECT_EQ(live.now(), fresh_scan(fs.dir()));
  }
}

TEST(Live, XfsNewFilesResolvedByHandle) {
  DUPCACHE_REQUIRE_ROOT("mkfs.xfs");
  scratch_fs fs("xfs");
  const std::uint64_t p = page_size();
  write_file(fs.path("a"), 128 * p, 4);
  evict(fs.path("a"));
  live_harness live(fs.dir());
  mkdir(fs.path("sub").c_str(), 0755);
  reflink(fs.path("a"), fs.path("sub/new"));
  read_all(fs.path("a"));
  read_all(fs.path("sub/new"));
  live.settle();
  const auto now = live.now();
  EXPECT_EQ(now.wasted, 128 * p) << now;
  EXPECT_EQ(now, fresh_scan(fs.dir()));
  EXPECT_EQ(live.counters().unresolved_events, 0u);
}

TEST(Live, LostEventsAreCountedAndRepaired) {
  DUPCACHE_REQUIRE_ROOT("mkfs.btrfs");
  scratch_fs fs("btrfs");
  const std::uint64_t p = page_size();
  write_file(fs.path("a"), 2048 * p, 5);
  reflink(fs.path("a"), fs.path("b"));
  for (auto n : {"a", "b"}) evict(fs.path(n));
  // One page of ring buffer: about 30 records. Without coalescing, 4096 single-page
  // insertions with nobody polling: most of them are dropped.
  live_harness live(fs.dir(), 4096, false);
  read_all(fs.path("a"));
  read_all(fs.path("b"));
  live.settle();
  EXPECT_GT(live.counters().lost_events, 1000u);
  EXPECT_GE(live.counters().rescans, 2u) << "the loss must trigger a rescan";
  EXPECT_EQ(live.now().wasted, 2048 * p);
  EXPECT_EQ(live.now(), fresh_scan(fs.dir()));
}

// Coalesced runs are lost too when the ring buffer is full at flush time; the repair is the same.
TEST(Live, LostRunsAreCountedAndRepaired) {
  DUPCACHE_REQUIRE_ROOT("mkfs.btrfs");
  scratch_fs fs("btrfs");
  const std::uint64_t p = page_size();
  constexpr int files = 64;
  for (int i = 0; i < files; ++i) write_file(fs.path("f" + std::to_string(i)), 16 * p, 20 + i);
  reflink(fs.path("f0"), fs.path("g"));
  for (int i = 0; i < files; ++i) evict(fs.path("f" + std::to_string(i)));
  evict(fs.path("g"));
  live_harness live(fs.dir(), 4096);
  // One run per file (64 records, ring room for about 30), nobody polling in between.
  for (int i = 0; i < files; ++i) read_all(fs.path("f" + std::to_string(i)));
  read_all(fs.path("g"));
  live.settle();
  EXPECT_GT(live.counters().lost_events, 0u);
  EXPECT_GE(live.counters().rescans, 2u) << "the loss must trigger a rescan";
  EXPECT_EQ(live.now().wasted, 16 * p);
  EXPECT_EQ(live.now().cached, (files + 1) * 16 * p);
  EXPECT_EQ(live.now(), fresh_scan(fs.dir()));
}

TEST(Live, FilesOutsideTheWatchedPathAreIgnored) {
  DUPCACHE_REQUIRE_ROOT("mkfs.btrfs");
  scratch_fs fs("btrfs");
  const std::uint64_t p = page_size();
  mkdir(fs.path("in").c_str(), 0755);
  mkdir(fs.path("out").c_str(), 0755);
  write_file(fs.path("in/a"), 64 * p, 6);
  reflink(fs.path("in/a"), fs.path("out/b"));
  for (auto n : {"in/a", "out/b"}) evict(fs.path(n));
  live_harness live(fs.path("in"));
  read_all(fs.path("in/a"));
  read_all(fs.path("out/b"));
  reflink(fs.path("in/a"), fs.path("out/c"));  // created after the seed, outside
  read_all(fs.path("out/c"));
  live.settle();
  EXPECT_EQ(live.now().wasted, 0u);
  EXPECT_EQ(live.now().cached, 64 * p);
  EXPECT_EQ(live.now(), fresh_scan(fs.path("in")));
}

}  // namespace
}  // namespace dupcache::testing
