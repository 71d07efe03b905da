// SPDX-License-Identifier: GPL-2.0-only
// The live loop on a feed of the test's own (no BPF, no root): what it asks of the opener, the
// mode it reports for each outcome, and that wake() ends an interval early.

#include <gtest/gtest.h>
#include <sys/eventfd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include "live/sampler.hpp"
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

struct scratch {
  std::filesystem::path dir;
  scratch() {
    char tmpl[] = "/tmp/dupcache-sampler-test-XXXXXX";
    dir = mkdtemp(tmpl);
    std::ofstream(dir / "a") << "some bytes";
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

}  // namespace
}  // namespace dupcache::live
