// SPDX-License-Identifier: GPL-2.0-only
// bench_floor DIR: the one-thread floor of a residency-and-extents scan, the baseline the
// report's speed is held against: walk DIR (readdir, no stat where d_type says), open each
// regular file, read its residency with one cachestat(2), and read the extent map (FIEMAP, no
// sync) of each file that has cached pages. Nothing else: no identity, no index, no output
// beyond one line, "files N cached C extents E seconds S" (S: the walk's wall time).
// --safe opens each file as the scanner does as root (below), for the cost of that safety;
// --opath as it does where it cannot (not root, kernels before 5.12).
#include <dirent.h>
#include <fcntl.h>
#include <linux/fiemap.h>
#include <linux/fs.h>
#include <linux/mount.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <vector>

namespace {

#ifndef __NR_cachestat
constexpr long nr_cachestat = 451;
#else
constexpr long nr_cachestat = __NR_cachestat;
#endif

struct cachestat_range_arg {
  std::uint64_t off, len;
};
struct cachestat_out {
  std::uint64_t nr_cache, nr_dirty, nr_writeback, nr_evicted, nr_recently_evicted;
};

struct counts {
  std::uint64_t files = 0, cached = 0, extents = 0, errors = 0;
};

constexpr unsigned batch = 256;  // extents per FIEMAP call, as the scanner asks

// Where any user can swap a name for a FIFO or a device node, the scanner opens a file as
// --safe: through a copy of the mount tree with nodev set on every mount (open_tree,
// mount_setattr), where no device can be opened, by name, then fstat to tell a FIFO (opened
// non-blocking) or a directory from a regular file. --opath: O_PATH, fstat, and only a regular
// file reopened through /proc/self/fd (held open). The difference from the plain floor is what
// that safety costs per file.
enum class open_mode { plain, safe, opath };
open_mode mode = open_mode::plain;
int proc_fds = -1;

int open_file(int dir, const char* name) {
  if (mode != open_mode::opath) {
    const int fd = openat(dir, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    struct stat st {};
    if (fd >= 0 && mode == open_mode::safe && (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))) {
      close(fd);
      return -1;
    }
    return fd;
  }
  const int pfd = openat(dir, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
  if (pfd < 0) return -1;
  struct stat st {};
  int fd = -1;
  if (fstat(pfd, &st) == 0 && S_ISREG(st.st_mode)) {
    char num[16];
    std::snprintf(num, sizeof num, "%d", pfd);
    fd = openat(proc_fds, num, O_RDONLY | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
  }
  close(pfd);
  return fd;
}

void file(int dir, const char* name, counts& c, std::vector<char>& fm) {
  const int fd = open_file(dir, name);
  if (fd < 0) {
    ++c.errors;
    return;
  }
  ++c.files;
  cachestat_range_arg range{0, 0};
  cachestat_out cs{};
  if (syscall(nr_cachestat, fd, &range, &cs, 0) < 0) {
    ++c.errors;
  } else if (cs.nr_cache > 0) {
    ++c.cached;
    auto* m = reinterpret_cast<fiemap*>(fm.data());
    for (std::uint64_t start = 0;;) {
      std::memset(m, 0, sizeof(fiemap));
      m->fm_start = start;
      m->fm_length = FIEMAP_MAX_OFFSET - start;
      m->fm_extent_count = batch;
      if (ioctl(fd, FS_IOC_FIEMAP, m) < 0) {
        ++c.errors;
        break;
      }
      c.extents += m->fm_mapped_extents;
      if (m->fm_mapped_extents == 0) break;
      const fiemap_extent& last = m->fm_extents[m->fm_mapped_extents - 1];
      if (last.fe_flags & FIEMAP_EXTENT_LAST || m->fm_mapped_extents < batch) break;
      start = last.fe_logical + last.fe_length;
    }
  }
  close(fd);
}

void walk(int dfd, counts& c, std::vector<char>& fm) {
  DIR* d = fdopendir(dfd);
  if (!d) {
    close(dfd);
    ++c.errors;
    return;
  }
  while (dirent* de = readdir(d)) {
    const char* n = de->d_name;
    if (n[0] == '.' && (n[1] == 0 || (n[1] == '.' && n[2] == 0))) continue;
    if (de->d_type == DT_DIR) {
      const int sub = openat(dirfd(d), n, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (sub < 0) ++c.errors;
      else walk(sub, c, fm);
    } else if (de->d_type == DT_REG) {
      file(dirfd(d), n, c, fm);
    }
  }
  closedir(d);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 3 && std::strcmp(argv[1], "--safe") == 0) mode = open_mode::safe;
  if (argc == 3 && std::strcmp(argv[1], "--opath") == 0) mode = open_mode::opath;
  if (mode != open_mode::plain) {
    proc_fds = open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    ++argv;
    --argc;
  }
  if (argc != 2) {
    std::fprintf(stderr, "usage: bench_floor [--safe|--opath] DIR\n");
    return 2;
  }
  int root = open(argv[1], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (root < 0) {
    std::perror(argv[1]);
    return 1;
  }
  if (mode == open_mode::safe) {
    const long view = syscall(SYS_open_tree, root, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE | AT_EMPTY_PATH);
    mount_attr attr{};
    attr.attr_set = MOUNT_ATTR_NODEV;
    if (view < 0 || syscall(SYS_mount_setattr, static_cast<int>(view), "", AT_EMPTY_PATH | AT_RECURSIVE, &attr,
                            sizeof attr) < 0) {
      std::perror("bench_floor: a nodev copy of the mount tree (open_tree, mount_setattr)");
      return 1;
    }
    close(root);
    // The copy stays whole while its fd is open (closing it takes the copy's mounts apart).
    root = openat(static_cast<int>(view), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  }
  std::vector<char> fm(sizeof(fiemap) + batch * sizeof(fiemap_extent));
  counts c;
  const auto t0 = std::chrono::steady_clock::now();
  walk(root, c, fm);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("files %llu cached %llu extents %llu seconds %.4f\n", static_cast<unsigned long long>(c.files),
              static_cast<unsigned long long>(c.cached), static_cast<unsigned long long>(c.extents), s);
  if (c.errors) std::fprintf(stderr, "bench_floor: %llu files or directories could not be read\n",
                             static_cast<unsigned long long>(c.errors));
  return c.errors ? 1 : 0;
}
