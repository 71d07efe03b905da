// SPDX-License-Identifier: GPL-2.0-only
// Micro-benchmarks (Google Benchmark) of the index and the event decoder, and the index's
// scaling: update cost and memory at 1, 10 and 100 GiB of tracked cache (simulated: extents of
// 1 MiB, half of them shared by two copies), so superlinear growth would show.
#include <benchmark/benchmark.h>

#include <cstring>
#include <random>

#include "dupcache_abi.h"
#include "index/block_index.hpp"
#include "trace/event.hpp"

namespace {

using dupcache::block_index;
using dupcache::copy_id;

constexpr std::uint64_t ps = 4096;
constexpr std::uint64_t extent = 1 << 20;

// An index tracking `gib` GiB of cache: files of 64 extents, each extent cached by its file
// and, for every other file, by a reflinked copy too.
void fill(block_index& idx, std::uint64_t gib) {
  const std::uint64_t extents = (gib << 30) / extent;
  const auto d = idx.intern_domain("fs");
  copy_id file = 0, twin = 0;
  for (std::uint64_t e = 0; e < extents; ++e) {
    if (e % 64 == 0) {
      file = idx.intern_copy({"fs", 0, 2 * e + 1});
      twin = idx.intern_copy({"fs", 0, 2 * e + 2});
    }
    idx.add(file, d, e * extent, extent);
    if ((e / 64) % 2 == 0) idx.add(twin, d, e * extent, extent);
  }
}

// One page leaving and coming back at a random place: what a live eviction and refault cost.
void BM_IndexUpdate(benchmark::State& st) {
  block_index idx(ps);
  const auto gib = static_cast<std::uint64_t>(st.range(0));
  fill(idx, gib);
  std::mt19937_64 rng(1);
  const std::uint64_t pages = (gib << 30) / ps;
  const auto d = idx.intern_domain("fs");
  for (auto _ : st) {
    const std::uint64_t page = rng() % pages;
    const copy_id c = static_cast<copy_id>(2 * ((page * ps) / extent / 64));  // the file of that extent
    idx.remove(c, d, page * ps, ps);
    idx.add(c, d, page * ps, ps);
  }
  st.counters["segments"] = static_cast<double>(idx.segment_count());
  st.counters["index_bytes"] = static_cast<double>(idx.memory_bytes());
  st.counters["bytes_per_page"] = static_cast<double>(idx.memory_bytes()) / static_cast<double>(pages);
}
BENCHMARK(BM_IndexUpdate)->Arg(1)->Arg(10)->Arg(100)->Unit(benchmark::kNanosecond);

void BM_IndexWastedQuery(benchmark::State& st) {
  block_index idx(ps);
  fill(idx, 10);
  for (auto _ : st) benchmark::DoNotOptimize(idx.split_waste());
}
BENCHMARK(BM_IndexWastedQuery)->Unit(benchmark::kMillisecond);

// What a live model and the daemon's planner read at every pass: the groups and the shared
// ranges of an index holding every placed extent, as a live one does. A million one-page
// files, one in ten with a reflinked copy: a million segments, a hundred thousand shared.
void BM_IndexSharedWalk(benchmark::State& st) {
  block_index idx(ps);
  const auto d = idx.intern_domain("fs");
  const std::uint64_t files = static_cast<std::uint64_t>(st.range(0));
  for (std::uint64_t f = 0; f < files; ++f) {
    idx.add(idx.intern_copy({"fs", 0, 2 * f + 1}), d, f * 2 * ps, ps);
    if (f % 10 == 0) idx.add(idx.intern_copy({"fs", 0, 2 * f + 2}), d, f * 2 * ps, ps);
  }
  for (auto _ : st) {
    auto groups = idx.groups();
    std::uint64_t shared = 0;
    idx.for_each_shared([&](auto, std::uint64_t s, std::uint64_t e, const auto&) { shared += e - s; });
    benchmark::DoNotOptimize(groups.data());
    benchmark::DoNotOptimize(shared);
  }
  st.counters["segments"] = static_cast<double>(idx.segment_count());
}
BENCHMARK(BM_IndexSharedWalk)->Arg(1000000)->Unit(benchmark::kMillisecond);

void BM_Decode(benchmark::State& st) {
  struct dupcache_event raw {};
  raw.kind = DUPCACHE_EV_CACHE_ADD;
  raw.nr_pages = 1;
  raw.ino = 42;
  std::uint64_t i = 0;
  for (auto _ : st) {
    raw.index = ++i;
    auto ev = dupcache::trace::decode_event(&raw, sizeof raw);
    benchmark::DoNotOptimize(ev);
  }
}
BENCHMARK(BM_Decode);

}  // namespace

BENCHMARK_MAIN();
