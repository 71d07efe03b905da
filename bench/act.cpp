// SPDX-License-Identifier: GPL-2.0-only
// bench_act FILE MAPPINGS: the canonical-read part of a merge pass, the one part of `merge`
// that runs without the companion module (which only the qemu guests have). A merge of MAPPINGS
// processes' mappings of one copy brings the canonical copy's range into the cache before each
// request; this times that for MAPPINGS mappings of the whole FILE, cold, the way merge does it
// now (policy::warm_range: read what is not cached) and the way it did before (read it all for
// every mapping), dropping FILE's pages (POSIX_FADV_DONTNEED) before each way. Prints
// "PLAIN_S WARM_S OLD_S READ_BYTES CACHED_BYTES": the old way's first read alone (one plain
// read of the bytes, cold), the MAPPINGS warms, the MAPPINGS full reads, and warm_range's two counters.
#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "policy/merge.hpp"

namespace {
double since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}
}  // namespace

int main(int argc, char** argv) {
  using namespace dupcache;
  if (argc != 3) {
    std::fprintf(stderr, "usage: bench_act FILE MAPPINGS\n");
    return 2;
  }
  const int fd = open(argv[1], O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    std::perror(argv[1]);
    return 1;
  }
  const int mappings = std::atoi(argv[2]);
  const auto size = static_cast<std::uint64_t>(lseek(fd, 0, SEEK_END));
  auto reader = make_residency_reader(residency_mode::automatic, static_cast<std::uint64_t>(sysconf(_SC_PAGESIZE)));
  if (!reader) {
    std::fprintf(stderr, "bench_act: %s\n", reader.err().message().c_str());
    return 1;
  }
  policy::merge_run run;
  posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < mappings; ++i) {
    if (auto r = policy::warm_range(fd, 0, size, **reader, run); !r) {
      std::fprintf(stderr, "bench_act: %s\n", r.err().message().c_str());
      return 1;
    }
  }
  const double warm = since(t0);
  posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
  std::vector<char> buf(1 << 20);
  t0 = std::chrono::steady_clock::now();
  double plain = 0;
  for (int i = 0; i < mappings; ++i) {
    if (i == 1) plain = since(t0);
    for (std::uint64_t at = 0; at < size;) {
      const ssize_t n = pread(fd, buf.data(), buf.size(), static_cast<off_t>(at));
      if (n <= 0) break;
      at += static_cast<std::uint64_t>(n);
    }
  }
  const double old = since(t0);
  if (mappings == 1) plain = old;
  std::printf("%.4f %.4f %.4f %llu %llu\n", plain, warm, old, static_cast<unsigned long long>(run.canonical_read_bytes),
              static_cast<unsigned long long>(run.canonical_cached_bytes));
  close(fd);
  return 0;
}
