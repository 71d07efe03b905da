// SPDX-License-Identifier: GPL-2.0-only
// Event ingest: raw ring-buffer records through the same decoder and live controller the tracer
// feeds, on one core. Prints events per second against the 2 M/s target and against a
// decode-only baseline measured in the same run, and the index's memory per tracked page.
//
// Usage: bench_ingest DIR   (DIR holds the files whose inodes the synthetic events name;
//                            bench/run makes them on a btrfs image)

#include <fmt/format.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <vector>

#include "dupcache_abi.h"
#include "live/controller.hpp"
#include "trace/event.hpp"

using namespace dupcache;

namespace {

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    fmt::print(stderr, "usage: bench_ingest DIR\n");
    return 2;
  }
  const std::string dir = std::filesystem::absolute(argv[1]).string();
  live::controller_options co;
  co.scan.paths = {dir};
  live::controller ctl(co);
  if (auto r = ctl.seed(); !r) {
    fmt::print(stderr, "bench_ingest: seed: {}\n", r.err().message());
    return 1;
  }
  auto devs = live::superblock_devs(co.scan);
  if (!devs || devs->empty()) {
    fmt::print(stderr, "bench_ingest: no superblock device for {}\n", dir);
    return 1;
  }
  const dev_t sb = devs->front();

  // The files' identities, as events carry them.
  struct target {
    std::uint64_t ino;
    std::uint64_t subvol;
    std::uint64_t pages;
  };
  std::vector<target> targets;
  const auto& state = ctl.state();
  (void)state;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    struct stat st {};
    if (stat(e.path().c_str(), &st) < 0 || !S_ISREG(st.st_mode)) continue;
    targets.push_back({st.st_ino, 5, static_cast<std::uint64_t>(st.st_size) / 4096});
  }
  if (targets.empty()) {
    fmt::print(stderr, "bench_ingest: no files in {}\n", dir);
    return 1;
  }

  // A recorded-like stream: every file read sequentially in single-page folios (the worst case
  // for event count), then evicted, twice over.
  std::vector<dupcache_event> stream;
  for (int round = 0; round < 2; ++round) {
    for (auto kind : {DUPCACHE_EV_CACHE_ADD, DUPCACHE_EV_CACHE_DELETE}) {
      for (const auto& t : targets) {
        for (std::uint64_t i = 0; i < t.pages; ++i) {
          dupcache_event ev{};
          ev.kind = static_cast<__u8>(kind);
          ev.flags = DUPCACHE_EVF_IDENTITY;
          ev.dev = trace::kernel_dev_from(sb);
          ev.ino = t.ino;
          ev.subvol_id = t.subvol;
          ev.index = i;
          ev.nr_pages = 1;
          ev.pid = 1;
          std::memcpy(ev.comm, "bench", 6);
          stream.push_back(ev);
        }
      }
    }
  }
  const double n = static_cast<double>(stream.size());

  // Baseline: decoding alone.
  std::uint64_t sink = 0;
  auto t0 = std::chrono::steady_clock::now();
  for (const auto& ev : stream) {
    auto d = trace::decode_event(&ev, sizeof ev);
    sink += d ? d->index : 0;
  }
  const double decode_s = seconds_since(t0);

  // Warm-up pass so first-touch extent resolution (one FIEMAP per file) is not timed.
  for (const auto& t : targets) {
    dupcache_event ev{};
    ev.kind = DUPCACHE_EV_CACHE_ADD;
    ev.flags = DUPCACHE_EVF_IDENTITY;
    ev.dev = trace::kernel_dev_from(sb);
    ev.ino = t.ino;
    ev.subvol_id = t.subvol;
    ev.nr_pages = 1;
    ctl.apply(*trace::decode_event(&ev, sizeof ev));
    ev.kind = DUPCACHE_EV_CACHE_DELETE;
    ctl.apply(*trace::decode_event(&ev, sizeof ev));
  }

  std::size_t peak_memory = 0;
  std::uint64_t peak_pages = 0;
  t0 = std::chrono::steady_clock::now();
  std::uint64_t applied = 0;
  for (const auto& ev : stream) {
    auto d = trace::decode_event(&ev, sizeof ev);
    ctl.apply(*d);
    // Sample memory at the end of each all-cached phase (cheap enough: twice per run).
    if (++applied % (stream.size() / 4) == 0 && ev.kind == DUPCACHE_EV_CACHE_ADD) {
      peak_memory = std::max(peak_memory, ctl.state().index.memory_bytes());
      peak_pages = std::max<std::uint64_t>(peak_pages, ctl.state().index.indexed_bytes() / 4096);
    }
  }
  const double ingest_s = seconds_since(t0);
  const double rate = n / ingest_s;
  const double decode_rate = n / decode_s;
  const double bytes_per_page = peak_pages ? static_cast<double>(peak_memory) / static_cast<double>(peak_pages) : 0;

  fmt::print("figure                          value            baseline          ratio\n");
  fmt::print("ingest events/s (1 core)        {:<16.0f} target 2000000    {:.2f}\n", rate, rate / 2e6);
  fmt::print("ingest vs decode-only           {:<16.0f} {:<16.0f}  {:.2f}\n", rate, decode_rate, rate / decode_rate);
  fmt::print("index bytes per tracked page    {:<16.3f} target 2.000      {:.3f}\n", bytes_per_page,
             bytes_per_page / 2.0);
  fmt::print(stderr, "({} events, {} pages tracked at peak, checksum {})\n", stream.size(), peak_pages, sink % 7);
  return peak_pages > 0 ? 0 : 1;
}
