// SPDX-License-Identifier: GPL-2.0-only
// Hashing throughput of XXH3 (what `dupcache dedupe` and `report --content` hash with) against a
// plain memcpy of the same bytes, measured in the same run: both stream a buffer far larger than
// the CPU caches, so memcpy stands for the memory bandwidth the hash competes with. The hash
// runs per 4 KiB block, as the callers do. Rounds alternate the two; medians are printed:
//   bench_hash [MiB] [rounds]  ->  "<hash bytes/s> <memcpy bytes/s> <rounds>"
#include <xxhash.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace {

using clock_type = std::chrono::steady_clock;

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

// Seconds for fn() to run once.
template <typename Fn>
double timed(Fn&& fn) {
  const auto t0 = clock_type::now();
  fn();
  return std::chrono::duration<double>(clock_type::now() - t0).count();
}

}  // namespace

int main(int argc, char** argv) {
  const std::size_t mib = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 256;
  const int rounds = argc > 2 ? std::atoi(argv[2]) : 9;
  if (mib == 0 || rounds <= 0) {
    std::fprintf(stderr, "usage: bench_hash [MiB > 0] [rounds > 0]\n");
    return 2;
  }
  const std::size_t bytes = mib << 20;
  constexpr std::size_t block = 4096;
  std::vector<unsigned char> src(bytes), dst(bytes);
  // Not zeros: every byte written, so no page is the shared zero page and the data is not trivial.
  std::uint64_t x = 0x9e3779b97f4a7c15ull;
  for (std::size_t i = 0; i < bytes; i += 8) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    std::memcpy(&src[i], &x, std::min<std::size_t>(8, bytes - i));
  }
  std::memset(dst.data(), 1, bytes);
  std::uint64_t sink = 0;
  std::vector<double> hash_bps, copy_bps;
  for (int r = 0; r < rounds; ++r) {
    auto hash = [&] {
      for (std::size_t off = 0; off < bytes; off += block) sink += XXH3_64bits(&src[off], block);
    };
    auto copy = [&] {
      std::memcpy(dst.data(), src.data(), bytes);
      sink += dst[static_cast<std::size_t>(r) * 4099 % bytes];
    };
    // Alternate the order, so drift in the machine's speed falls on both alike.
    double th = 0, tc = 0;
    if (r % 2 == 0) {
      th = timed(hash);
      tc = timed(copy);
    } else {
      tc = timed(copy);
      th = timed(hash);
    }
    hash_bps.push_back(static_cast<double>(bytes) / th);
    copy_bps.push_back(static_cast<double>(bytes) / tc);
  }
  std::printf("%.0f %.0f %d\n", median(hash_bps), median(copy_bps), rounds);
  std::fprintf(stderr, "(checksum %llx)\n", static_cast<unsigned long long>(sink));
  return 0;
}
