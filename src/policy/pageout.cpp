// SPDX-License-Identifier: GPL-2.0-only
#include "policy/pageout.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <string>

#include "util/fd.hpp"

namespace dupcache::policy {

namespace {

bool all_digits(const char* s) {
  if (!*s) return false;
  for (; *s; ++s) {
    if (*s < '0' || *s > '9') return false;
  }
  return true;
}

// The file offset of the mapping starting at `start`, from /proc/PID/maps.
bool mapping_offset(int pid, std::uint64_t start, std::uint64_t* offset) {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%d/maps", pid);
  FILE* f = std::fopen(path, "re");
  if (!f) return false;
  char line[4096];
  bool found = false;
  while (std::fgets(line, sizeof line, f)) {
    std::uint64_t s = 0, e = 0, off = 0;
    if (std::sscanf(line, "%" SCNx64 "-%" SCNx64 " %*s %" SCNx64, &s, &e, &off) == 3 && s == start) {
      *offset = off;
      found = true;
      break;
    }
  }
  std::fclose(f);
  return found;
}

}  // namespace

std::vector<int> process_ids() {
  std::vector<int> out;
  if (DIR* proc = opendir("/proc")) {
    while (struct dirent* de = readdir(proc)) {
      if (all_digits(de->d_name)) out.push_back(std::atoi(de->d_name));
    }
    closedir(proc);
  }
  return out;
}

std::vector<mapping_range> find_mappings(int fd) {
  std::vector<mapping_range> out;
  struct stat target {};
  if (fstat(fd, &target) < 0) return out;
  DIR* proc = opendir("/proc");
  if (!proc) return out;
  while (struct dirent* de = readdir(proc)) {
    if (!all_digits(de->d_name)) continue;
    const int pid = std::atoi(de->d_name);
    const std::string dir = std::string("/proc/") + de->d_name + "/map_files";
    DIR* mf = opendir(dir.c_str());
    if (!mf) continue;  // gone, or a kernel thread
    while (struct dirent* m = readdir(mf)) {
      if (m->d_name[0] == '.') continue;
      struct stat st {};
      if (fstatat(dirfd(mf), m->d_name, &st, 0) < 0) continue;
      if (st.st_dev != target.st_dev || st.st_ino != target.st_ino) continue;
      std::uint64_t s = 0, e = 0, off = 0;
      if (std::sscanf(m->d_name, "%" SCNx64 "-%" SCNx64, &s, &e) != 2) continue;
      if (!mapping_offset(pid, s, &off)) continue;
      out.push_back({pid, s, e, off});
    }
    closedir(mf);
  }
  closedir(proc);
  return out;
}

pageout_result page_out(const std::vector<mapping_range>& maps, std::uint64_t offset, std::uint64_t length) {
  pageout_result r;
  std::set<int> pids;
  for (const auto& m : maps) {
    const std::uint64_t lo = std::max(offset, m.offset), hi = std::min(offset + length, m.offset + (m.end - m.start));
    if (lo >= hi) continue;
    unique_fd pidfd(static_cast<int>(syscall(SYS_pidfd_open, m.pid, 0)));
    if (!pidfd) {
      if (errno != ESRCH) r.errors.push_back(errno_error("pidfd_open " + std::to_string(m.pid)).message());
      continue;
    }
    iovec iov{reinterpret_cast<void*>(m.start + (lo - m.offset)), static_cast<std::size_t>(hi - lo)};
    if (syscall(SYS_process_madvise, pidfd.get(), &iov, 1, MADV_PAGEOUT, 0) < 0) {
      if (errno != ESRCH) r.errors.push_back(errno_error("process_madvise MADV_PAGEOUT pid " + std::to_string(m.pid)).message());
      continue;
    }
    ++r.ranges;
    pids.insert(m.pid);
  }
  r.processes = pids.size();
  return r;
}

}  // namespace dupcache::policy
