// SPDX-License-Identifier: GPL-2.0-only
// Page-cache fill throughput: evicts the named files (POSIX_FADV_DONTNEED on the files only),
// then reads them sequentially in 1 MiB reads. Prints bytes per second.

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <chrono>
#include <ctime>
#include <vector>

namespace {
// CPU time of this process, user + system: on a virtual machine it leaves out the time the
// host took the CPU away (steal), which wall-clock time does not.
double cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}
}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    fmt::print(stderr, "usage: bench_fill FILE...\n");
    return 2;
  }
  std::vector<char> buf(1 << 20);
  for (int i = 1; i < argc; ++i) {
    int fd = open(argv[i], O_RDONLY);
    if (fd < 0) return 1;
    fdatasync(fd);
    posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    close(fd);
  }
  std::uint64_t total = 0;
  const double c0 = cpu_seconds();
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 1; i < argc; ++i) {
    int fd = open(argv[i], O_RDONLY);
    if (fd < 0) return 1;
    ssize_t n;
    while ((n = read(fd, buf.data(), buf.size())) > 0) total += static_cast<std::uint64_t>(n);
    close(fd);
  }
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double c = cpu_seconds() - c0;
  fmt::print("{:.0f} {:.0f}\n", static_cast<double>(total) / s, static_cast<double>(total) / c);
  return 0;
}
