// SPDX-License-Identifier: GPL-2.0-only
//
// tracer::poll() contract: EINTR is not an error, callback exceptions come back out of poll().
// Needs BPF (root) but no special filesystem.

#include <fcntl.h>
#include <gtest/gtest.h>
#include <pthread.h>
#include <signal.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "test_env.hpp"
#include "trace/tracer.hpp"
#include "util/fd.hpp"

namespace dupcache::test {
namespace {

using trace::decoded_event;
using trace::tracer;
using trace::tracer_options;

void on_usr1(int) {}

TEST(bpf_tracer, poll_returns_zero_when_interrupted_by_a_signal) {
  if (auto why = bpf_unavailable_reason(); !why.empty()) DC_SKIP_OR_FAIL(why);
  tracer_options o;
  o.watch_devs = {makedev(0, 0xfffff)};  // nothing lives there: poll() can only end by signal
  o.sharing_events = false;
  o.dirty_events = false;
  o.coalesce = false;  // coalescing caps every wait at the flush interval (tested below)
  auto t = tracer::open(o);
  ASSERT_TRUE(t.ok()) << t.err().message();

  struct sigaction sa {}, old {};
  sa.sa_handler = on_usr1;  // no SA_RESTART: epoll_wait fails with EINTR
  sigemptyset(&sa.sa_mask);
  ASSERT_EQ(::sigaction(SIGUSR1, &sa, &old), 0);
  const pthread_t self = ::pthread_self();
  std::thread killer([self] {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    ::pthread_kill(self, SIGUSR1);
  });
  auto start = std::chrono::steady_clock::now();
  auto n = t.value()->poll(10000, [](const decoded_event&) {});
  auto waited = std::chrono::steady_clock::now() - start;
  killer.join();
  ::sigaction(SIGUSR1, &old, nullptr);

  ASSERT_TRUE(n.ok()) << n.err().message();
  EXPECT_EQ(n.value(), 0);
  EXPECT_LT(waited, std::chrono::seconds(5));
}

TEST(bpf_tracer, coalescing_caps_a_wait_at_the_flush_interval) {
  if (auto why = bpf_unavailable_reason(); !why.empty()) DC_SKIP_OR_FAIL(why);
  tracer_options o;
  o.watch_devs = {makedev(0, 0xfffff)};
  o.sharing_events = false;
  o.dirty_events = false;
  auto t = tracer::open(o);
  ASSERT_TRUE(t.ok()) << t.err().message();
  ASSERT_TRUE(t.value()->coalescing());
  auto start = std::chrono::steady_clock::now();
  auto n = t.value()->poll(10000, [](const decoded_event&) {});
  auto waited = std::chrono::steady_clock::now() - start;
  ASSERT_TRUE(n.ok()) << n.err().message();
  EXPECT_EQ(n.value(), 0);
  EXPECT_GE(waited, std::chrono::milliseconds(tracer::flush_interval_ms));
  EXPECT_LT(waited, std::chrono::seconds(5));
}

TEST(bpf_tracer, callback_exception_is_rethrown_from_poll) {
  if (auto why = bpf_unavailable_reason(); !why.empty()) DC_SKIP_OR_FAIL(why);
  tracer_options o;  // every filesystem
  o.sharing_events = false;
  o.dirty_events = false;
  auto t = tracer::open(o);
  ASSERT_TRUE(t.ok()) << t.err().message();

  // Make page-cache traffic: write, evict, read back a small temporary file.
  char path[] = "/tmp/dupcache-poll-test.XXXXXX";
  unique_fd fd(::mkstemp(path));
  ASSERT_TRUE(fd);
  ::unlink(path);
  std::vector<char> buf(64 * 1024, 'x');
  ASSERT_EQ(::write(fd.get(), buf.data(), buf.size()), static_cast<ssize_t>(buf.size()));
  ASSERT_EQ(::fsync(fd.get()), 0);
  ASSERT_EQ(::posix_fadvise(fd.get(), 0, 0, POSIX_FADV_DONTNEED), 0);
  ASSERT_EQ(::pread(fd.get(), buf.data(), buf.size(), 0), static_cast<ssize_t>(buf.size()));

  int calls = 0;
  EXPECT_THROW(t.value()->poll(1000,
                               [&](const decoded_event&) {
                                 ++calls;
                                 throw std::runtime_error("stop");
                               }),
               std::runtime_error);
  EXPECT_EQ(calls, 1) << "consumption stops at the first exception";
  // The tracer stays usable.
  auto n = t.value()->poll(0, [](const decoded_event&) {});
  EXPECT_TRUE(n.ok());
}

}  // namespace
}  // namespace dupcache::test
