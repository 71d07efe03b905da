// SPDX-License-Identifier: GPL-2.0-only
// bench_tree DIR N [MAX_KIB]: a tree of N files for the scan figures. Sizes 4 KiB to MAX_KIB
// (default 64) in four steps; one file in
// ten is a reflink (FICLONE) of an earlier one; then one file in three is read, so a realistic
// fraction is cached (the reflinked ones among them hold duplicate cache). Prints
// "files N cached C reflinked R bytes B".
#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

int main(int argc, char** argv) {
  if (argc != 3 && argc != 4) {
    std::fprintf(stderr, "usage: bench_tree DIR N [MAX_KIB]\n");
    return 2;
  }
  const std::size_t max = argc == 4 ? std::strtoul(argv[3], nullptr, 10) * 1024 : 65536;
  const std::string dir = argv[1];
  const long n = std::atol(argv[2]);
  std::mt19937_64 rng(42);
  const std::size_t sizes[] = {4096, std::max<std::size_t>(4096, max / 4), std::max<std::size_t>(4096, max / 2), std::max<std::size_t>(4096, max)};
  std::vector<char> buf(sizes[3]);
  for (auto& c : buf) c = static_cast<char>(rng());
  std::vector<std::string> paths;
  long reflinked = 0, cached = 0;
  unsigned long long bytes = 0;
  for (long i = 0; i < n; ++i) {
    const std::string sub = dir + "/d" + std::to_string(i / 1000);
    if (i % 1000 == 0) mkdir(sub.c_str(), 0755);
    const std::string p = sub + "/f" + std::to_string(i);
    const int fd = open(p.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) {
      std::perror(p.c_str());
      return 1;
    }
    if (i % 10 == 9 && !paths.empty()) {
      const int src = open(paths[rng() % paths.size()].c_str(), O_RDONLY);
      if (src < 0 || ioctl(fd, FICLONE, src) < 0) {
        std::perror("FICLONE");
        return 1;
      }
      close(src);
      ++reflinked;
    } else {
      const std::size_t sz = sizes[rng() % 4];
      buf[0] = static_cast<char>(i);  // distinct contents
      if (write(fd, buf.data(), sz) != static_cast<ssize_t>(sz)) {
        std::fprintf(stderr, "write %s: %s\n", p.c_str(), errno ? std::strerror(errno) : "short write (full?)");
        return 1;
      }
      bytes += sz;
    }
    close(fd);
    paths.push_back(p);
  }
  sync();
  // Drop what writing cached, then read one file in three.
  for (long i = 0; i < n; ++i) {
    const int fd = open(paths[static_cast<std::size_t>(i)].c_str(), O_RDONLY);
    posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    if (i % 3 == 0) {
      while (read(fd, buf.data(), buf.size()) > 0) {
      }
      ++cached;
    }
    close(fd);
  }
  std::printf("files %ld cached %ld reflinked %ld bytes %llu\n", n, cached, reflinked, bytes);
  return 0;
}
