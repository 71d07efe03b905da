// SPDX-License-Identifier: GPL-2.0-only
// The live loop on a feed of the test's own (no BPF, no root): what it asks of the opener, the
// mode it reports for each outcome, and that wake() ends an interval early.

#include <gtest/gtest.h>
#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "live/sampler.hpp"
#include "util/clock.hpp"
#include "util/fd.hpp"

namespace dupcache::live {
namespace {

struct quiet_feed final : trace::feed {
  unique_fd never_readable{eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)};
  int* polls = nullptr;
  result<int> poll(int, const event_fn&) override {
    ++*polls;
    return 0;
  }
  int epoll_fd() const override { return never_readable.get(); }
  result<std::uint64_t> total_drops() const override { return std::uint64_t{0}; }
  std::uint64_t flushed_before_ns() const override { return 0; }
  std::string_view hook_name() const override { return "test_hook"; }
};

// A feed whose horizon the test moves, delivering the records the test queues (if it gives a
// queue) at its next poll.
struct script_feed final : trace::feed {
  unique_fd never_readable{eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)};
  const std::uint64_t* horizon = nullptr;
  std::vector<trace::decoded_event>* queued = nullptr;
  result<int> poll(int, const event_fn& fn) override {
    if (!queued) return 0;
    const int n = static_cast<int>(queued->size());
    for (const auto& ev : *queued) fn(ev);
    queued->clear();
    return n;
  }
  int epoll_fd() const override { return never_readable.get(); }
  result<std::uint64_t> total_drops() const override { return std::uint64_t{0}; }
  std::uint64_t flushed_before_ns() const override { return *horizon; }
  std::string_view hook_name() const override { return "test_hook"; }
};

// An opener that hands the sampler a script_feed reading these (the test's own variables).
auto script_opener(const std::uint64_t& horizon, std::vector<trace::decoded_event>* queued = nullptr) {
  return [&horizon, queued](const trace::feed_options&) -> result<std::unique_ptr<trace::feed>> {
    auto f = std::make_unique<script_feed>();
    f->horizon = &horizon;
    f->queued = queued;
    return std::unique_ptr<trace::feed>(std::move(f));
  };
}

struct scratch {
  std::filesystem::path dir;
  scratch() {
    char tmpl[] = "/tmp/dupcache-sampler-test-XXXXXX";
    dir = mkdtemp(tmpl);
    std::ofstream(dir / "a") << "some bytes";
    // Clean: a file waiting for writeback holds a live sample's applied_before_ns back.
    const int fd = ::open((dir / "a").c_str(), O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
      ::fsync(fd);
      ::close(fd);
    }
  }
  ~scratch() { std::filesystem::remove_all(dir); }
};

sampler_options options(const scratch& s) {
  sampler_options o;
  o.scan.paths = {s.dir.string()};
  o.interval = std::chrono::milliseconds(20);
  o.containers = false;
  return o;
}

TEST(sampler, without_an_opener_it_rescans_and_says_so) {
  scratch s;
  sampler smp(options(s));
  ASSERT_TRUE(smp.start());
  EXPECT_EQ(smp.mode(), "rescan (no BPF: disabled by --no-bpf)");
  auto x = smp.next();
  ASSERT_TRUE(x) << x.err().message();
  EXPECT_FALSE(x->live);
  EXPECT_EQ(x->iteration, 1u);
  EXPECT_EQ(x->mode, smp.mode());
  EXPECT_GT(x->elapsed_s, 0);
}

TEST(sampler, a_feed_that_cannot_open_is_the_reason_for_rescans) {
  scratch s;
  auto o = options(s);
  o.open_feed = [](const trace::feed_options&) -> result<std::unique_ptr<trace::feed>> {
    return plain_error("load the BPF object", "not permitted here");
  };
  sampler smp(o);
  ASSERT_TRUE(smp.start());
  EXPECT_EQ(smp.mode(), "rescan (no BPF: load the BPF object failed: not permitted here)");
}

TEST(sampler, an_open_feed_is_live_and_named_by_its_hook) {
  scratch s;
  auto o = options(s);
  o.ring_buffer_bytes = 1 << 20;
  int polls = 0;
  trace::feed_options asked;
  o.open_feed = [&](const trace::feed_options& fo) -> result<std::unique_ptr<trace::feed>> {
    asked = fo;
    auto f = std::make_unique<quiet_feed>();
    f->polls = &polls;
    return std::unique_ptr<trace::feed>(std::move(f));
  };
  sampler smp(o);
  ASSERT_TRUE(smp.start());
  EXPECT_EQ(smp.mode(), "live (test_hook)");
  EXPECT_EQ(asked.ring_buffer_bytes, std::uint64_t{1} << 20);
  EXPECT_EQ(asked.wakeup_fraction, 8u);
  EXPECT_FALSE(asked.watch_devs.empty()) << "the scratch directory's filesystem";
  EXPECT_EQ(polls, 1) << "drained once after the seed";
  auto x = smp.next();
  ASSERT_TRUE(x) << x.err().message();
  EXPECT_TRUE(x->live);
  EXPECT_EQ(x->mode, "live (test_hook)");
  EXPECT_GT(polls, 1);
}

TEST(sampler, wake_ends_the_interval_early) {
  scratch s;
  auto o = options(s);
  o.interval = std::chrono::seconds(30);
  sampler smp(o);
  ASSERT_TRUE(smp.start());
  smp.wake();
  const auto t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE(smp.next());
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(10));
}

// The same bytes in two files, written back (content passes hash clean pages only) and so
// still cached.
void write_clean(const std::filesystem::path& p, std::size_t bytes) {
  std::vector<char> buf(bytes);
  for (std::size_t i = 0; i < bytes; ++i) buf[i] = static_cast<char>(i * 7 + i / 4096);
  const int fd = ::open(p.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  ASSERT_GE(fd, 0) << p;
  ASSERT_EQ(::write(fd, buf.data(), buf.size()), static_cast<ssize_t>(buf.size()));
  ASSERT_EQ(::fsync(fd), 0);
  ::close(fd);
}

// --content: the pass runs on its own thread, so samples keep their 20 ms cadence while the
// first pass is under way and after it, and a 1 h content interval means one pass only.
TEST(sampler, content_passes_run_beside_the_samples) {
  scratch s;
  const std::size_t bytes = 16 * static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
  write_clean(s.dir / "x", bytes);
  write_clean(s.dir / "y", bytes);
  auto o = options(s);
  o.content_interval = std::chrono::hours(1);
  sampler smp(o);
  ASSERT_TRUE(smp.start());
  std::optional<sample> with;
  for (int i = 0; i < 250 && !with; ++i) {
    auto x = smp.next();
    ASSERT_TRUE(x) << x.err().message();
    EXPECT_LT(x->elapsed_s, 2.0) << "a sample waited for hashing";
    if (x->model.content) with = std::move(*x);
    else EXPECT_EQ(x->content_status, "content: first pass running");
  }
  ASSERT_TRUE(with) << "no content pass ended within 250 samples";
  EXPECT_EQ(with->model.content->wasted_bytes, bytes) << "y caches x's bytes a second time";
  EXPECT_EQ(with->content_status.rfind("content pass ", 0), 0u) << with->content_status;
  // Mapped onto the live copy ids: y, whose path sorts after x's, carries the waste.
  const auto& c = *with->model.content;
  for (const auto& f : with->model.files) {
    const std::uint64_t mine = f.copy < c.copy_wasted_bytes.size() ? c.copy_wasted_bytes[f.copy] : 0;
    EXPECT_EQ(mine, f.path == (s.dir / "y").string() ? bytes : 0u) << f.path.str();
  }
  auto again = smp.next();
  ASSERT_TRUE(again);
  ASSERT_TRUE(again->model.content) << "the latest figures stay on every sample";
  EXPECT_EQ(again->model.content->wasted_bytes, bytes);
}

// With nothing in doubt, a live sample is current to the feed's horizon: every record made
// before it has been applied.
TEST(sampler, a_live_sample_is_current_to_the_feeds_horizon) {
  scratch s;
  auto o = options(s);
  std::uint64_t horizon = 5000;
  o.open_feed = script_opener(horizon);
  sampler smp(o);
  ASSERT_TRUE(smp.start());
  auto x = smp.next();
  ASSERT_TRUE(x) << x.err().message();
  EXPECT_EQ(x->applied_before_ns, 5000u);
  horizon = 9000;
  x = smp.next();
  ASSERT_TRUE(x) << x.err().message();
  EXPECT_EQ(x->applied_before_ns, 9000u);
}

// A record that arrives after the horizon has passed its time (a late run): the file it leaves
// in doubt holds the sample back to before the record, not to the horizon it arrived under.
TEST(sampler, a_late_record_holds_the_sample_back_to_its_own_time) {
  scratch s;
  auto o = options(s);
  const std::uint64_t base = monotonic_ns() + 1'000'000'000;  // after the seed: applied, not touched
  std::uint64_t horizon = base + 9'000'000;
  std::vector<trace::decoded_event> queued;
  o.open_feed = script_opener(horizon, &queued);
  sampler smp(o);
  ASSERT_TRUE(smp.start());
  auto x = smp.next();
  ASSERT_TRUE(x) << x.err().message();
  ASSERT_EQ(x->applied_before_ns, base + 9'000'000);
  // The page of a removed, made at base + 6 ms: the file is read again once settled (100 ms).
  struct stat st {};
  ASSERT_EQ(::stat((s.dir / "a").c_str(), &st), 0);
  trace::decoded_event ev;
  ev.kind = trace::event_kind::cache_delete;
  ev.timestamp_ns = ev.end_timestamp_ns = base + 6'000'000;
  ev.has_identity = true;
  ev.dev = st.st_dev;
  ev.ino = st.st_ino;
  ev.index = 0;
  ev.nr_pages = 1;
  queued.push_back(ev);
  horizon = base + 12'000'000;
  x = smp.next();
  ASSERT_TRUE(x) << x.err().message();
  EXPECT_EQ(x->applied_before_ns, base + 6'000'000 - 100'000) << "the record's time, less the slack";
  EXPECT_EQ(x->late_records, 1u) << "made 3 ms before the horizon it arrived under";
}

// In rescan mode each sample is a scan: current to when that scan began.
TEST(sampler, a_rescan_sample_is_current_to_its_scan) {
  scratch s;
  sampler smp(options(s));
  ASSERT_TRUE(smp.start());
  const std::uint64_t before = monotonic_ns();
  auto x = smp.next();
  const std::uint64_t after = monotonic_ns();
  ASSERT_TRUE(x) << x.err().message();
  EXPECT_GE(x->applied_before_ns, before);
  EXPECT_LE(x->applied_before_ns, after);
  // Each sample is a rescan (the seed was the first); right after one the index holds the
  // cached files only.
  EXPECT_EQ(x->rescans, 2u);
  EXPECT_EQ(x->compactions, 0u);
  EXPECT_GT(x->model.files_cached, 0u);
  EXPECT_EQ(x->index_entries, x->model.files_cached);
  auto y = smp.next();
  ASSERT_TRUE(y) << y.err().message();
  EXPECT_EQ(y->rescans, 3u);
}

}  // namespace
}  // namespace dupcache::live
