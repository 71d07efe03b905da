// SPDX-License-Identifier: GPL-2.0-only
// bench_tree DIR N [MAX_KIB [CACHE_ONE_IN]]: a tree of N files for the scan figures, made fast
// enough for the 1 M- and 10 M-file points (no process per file, no path walks: every call is
// relative to an open directory, directories are shared out over the CPUs).
// Files sit 1000 to a directory (d0, d1, ...; file i is d<i/1000>/f<i>). Sizes 4 KiB to MAX_KIB
// (default 64) in four steps; one file in ten is a reflink (FICLONE) of an earlier file of its
// directory; then one file in CACHE_ONE_IN (default 3) is cached and the others are not (the
// reflinked ones among the cached hold duplicate cache). Which file gets which size, source and
// residency depends on its number alone, so the tree is the same whatever the thread count.
// Prints "files N cached C reflinked R bytes B".
#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace {

constexpr long per_dir = 1000;

std::uint64_t mix(std::uint64_t x) {  // splitmix64: a file's choices from its number
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// File i is a clone of an earlier file of its directory: one in ten (never a directory's first,
// as 1000 is a multiple of 10).
bool is_clone(long i) { return i % 10 == 9; }

struct totals {
  std::atomic<long> cached{0}, reflinked{0};
  std::atomic<unsigned long long> bytes{0};
  std::atomic<bool> failed{false};
};

struct job {
  int root = -1;
  long n = 0, cache_one_in = 3;
  std::size_t sizes[4] = {};
  std::vector<char> data;  // the largest size, random bytes
  totals* out = nullptr;
};

bool fail(const std::string& what, int err, totals* t) {
  std::fprintf(stderr, "bench_tree: %s: %s\n", what.c_str(), err ? std::strerror(err) : "short write (full?)");
  t->failed = true;
  return false;
}

// Makes directory d and its files. The first byte of each file is its number: contents differ.
bool make_dir(const job& j, long d, std::vector<char>& buf) {
  const std::string dname = "d" + std::to_string(d);
  if (mkdirat(j.root, dname.c_str(), 0755) < 0 && errno != EEXIST) return fail("mkdir " + dname, errno, j.out);
  const int dfd = openat(j.root, dname.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) return fail("open " + dname, errno, j.out);
  std::vector<long> written;  // files of this directory with data of their own
  const long end = std::min(j.n, (d + 1) * per_dir);
  bool ok = true;
  for (long i = d * per_dir; i < end && ok; ++i) {
    const std::string name = "f" + std::to_string(i);
    const int fd = openat(dfd, name.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
      ok = fail("create " + dname + "/" + name, errno, j.out);
      break;
    }
    const std::uint64_t h = mix(static_cast<std::uint64_t>(i));
    if (is_clone(i)) {
      const std::string src = "f" + std::to_string(written[h % written.size()]);
      const int sfd = openat(dfd, src.c_str(), O_RDONLY | O_CLOEXEC);
      if (sfd < 0 || ioctl(fd, FICLONE, sfd) < 0) ok = fail("FICLONE " + dname + "/" + name, errno, j.out);
      if (sfd >= 0) close(sfd);
      ++j.out->reflinked;
    } else {
      const std::size_t sz = j.sizes[h % 4];
      std::memcpy(buf.data(), j.data.data(), sz);
      buf[0] = static_cast<char>(i);
      if (write(fd, buf.data(), sz) != static_cast<ssize_t>(sz)) ok = fail("write " + dname + "/" + name, errno, j.out);
      j.out->bytes += sz;
      written.push_back(i);
    }
    close(fd);
  }
  close(dfd);
  return ok;
}

// After the tree is on disk: a clone to be cached is read (it starts with nothing cached), a
// written file to be cached is left alone (its pages are cached from the write, clean after
// syncfs), and every other file's pages are dropped (clean, so the drop is certain).
bool set_residency(const job& j, long d, std::vector<char>& buf) {
  const std::string dname = "d" + std::to_string(d);
  const int dfd = openat(j.root, dname.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) return fail("open " + dname, errno, j.out);
  const long end = std::min(j.n, (d + 1) * per_dir);
  for (long i = d * per_dir; i < end; ++i) {
    const bool cache = i % j.cache_one_in == 0;
    if (cache && !is_clone(i)) {  // cached since it was written
      ++j.out->cached;
      continue;
    }
    const std::string name = "f" + std::to_string(i);
    const int fd = openat(dfd, name.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      close(dfd);
      return fail("open " + dname + "/" + name, errno, j.out);
    }
    if (cache) {
      while (read(fd, buf.data(), buf.size()) > 0) {
      }
      ++j.out->cached;
    } else {
      posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    }
    close(fd);
  }
  close(dfd);
  return true;
}

template <typename F>
void parallel_dirs(long dirs, unsigned threads, F fn) {
  std::atomic<long> next{0};
  std::vector<std::thread> ts;
  for (unsigned t = 0; t < threads; ++t) {
    ts.emplace_back([&] {
      for (long d; (d = next.fetch_add(1)) < dirs;) fn(d);
    });
  }
  for (auto& t : ts) t.join();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3 || argc > 5) {
    std::fprintf(stderr, "usage: bench_tree DIR N [MAX_KIB [CACHE_ONE_IN]]\n");
    return 2;
  }
  totals out;
  job j;
  j.out = &out;
  j.n = std::atol(argv[2]);
  const std::size_t max = argc >= 4 ? std::strtoul(argv[3], nullptr, 10) * 1024 : 65536;
  j.cache_one_in = argc >= 5 ? std::max(1L, std::atol(argv[4])) : 3;
  j.sizes[0] = 4096;
  j.sizes[1] = std::max<std::size_t>(4096, max / 4);
  j.sizes[2] = std::max<std::size_t>(4096, max / 2);
  j.sizes[3] = std::max<std::size_t>(4096, max);
  j.data.resize(j.sizes[3]);
  std::uint64_t x = 42;
  for (auto& c : j.data) c = static_cast<char>(x = mix(x));
  j.root = open(argv[1], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (j.root < 0) {
    std::perror(argv[1]);
    return 1;
  }
  const long dirs = (j.n + per_dir - 1) / per_dir;
  const auto t0 = std::chrono::steady_clock::now();
  auto phase = [&](const char* what) {  // on stderr: where the time of a big tree goes
    std::fprintf(stderr, "bench_tree: %s done at %.1f s\n", what,
                 std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  };
  // Creating files is CPU-bound in the filesystem: one thread per CPU, and one more to cover
  // the waits.
  const unsigned threads = std::max(2u, std::thread::hardware_concurrency() + 1);
  parallel_dirs(dirs, threads, [&](long d) {
    std::vector<char> buf(j.sizes[3]);
    if (!out.failed) make_dir(j, d, buf);
  });
  if (out.failed) return 1;
  phase("create");
  if (syncfs(j.root) < 0) {
    std::perror("syncfs");
    return 1;
  }
  phase("syncfs");
  parallel_dirs(dirs, threads, [&](long d) {
    std::vector<char> buf(j.sizes[3]);
    if (!out.failed) set_residency(j, d, buf);
  });
  if (out.failed) return 1;
  phase("residency");
  std::printf("files %ld cached %ld reflinked %ld bytes %llu\n", j.n, out.cached.load(), out.reflinked.load(),
              out.bytes.load());
  return 0;
}
