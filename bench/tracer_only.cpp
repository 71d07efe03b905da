// SPDX-License-Identifier: GPL-2.0-only
// Attaches the tracer to the filesystems holding PATHs and consumes events doing nothing with
// them, until SIGINT/SIGTERM. Separates the kernel-side cost of tracing from the controller's.
// Prints "attached" on stdout once the hooks are live.

#include <fmt/format.h>
#include <signal.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "live/controller.hpp"
#include "trace/tracer.hpp"

namespace {
std::atomic<bool> stop{false};
void on_signal(int) { stop = true; }
}  // namespace

int main(int argc, char** argv) {
  using namespace dupcache;
  scan_options so;
  for (int i = 1; i < argc; ++i) so.paths.push_back(argv[i]);
  auto devs = live::superblock_devs(so);
  if (!devs || devs->empty()) return 1;
  trace::tracer_options to;
  to.watch_devs = *devs;
  to.wakeup_fraction = 8;
  // For comparisons: DUPCACHE_BENCH_HOOKS=cache leaves the sharing and dirty hooks off.
  if (const char* h = std::getenv("DUPCACHE_BENCH_HOOKS"); h && std::string(h) == "cache") {
    to.sharing_events = false;
    to.dirty_events = false;
  }
  auto t = trace::tracer::open(to);
  if (!t) {
    fmt::print(stderr, "bench_tracer_only: {}\n", t.err().message());
    return 1;
  }
  signal(SIGINT, on_signal);
  signal(SIGTERM, on_signal);
  fmt::print("attached\n");
  std::fflush(stdout);
  std::uint64_t n = 0;
  while (!stop) {
    if (!(*t)->poll(100, [&n](const trace::decoded_event&) { ++n; })) break;
  }
  fmt::print(stderr, "bench_tracer_only: {} events\n", n);
  return 0;
}
