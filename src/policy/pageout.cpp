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
#include "util/proc.hpp"

namespace dupcache::policy {

namespace {

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

std::vector<mapping_range> find_mappings(int fd) {
  std::vector<mapping_range> out;
  struct stat target {};
  if (fstat(fd, &target) < 0) return out;
  for (int pid : proc::process_ids()) {
    proc::for_each_held_file(pid, proc::held_kind::mapped, [&](const proc::held_file& h) {
      if (h.st.st_dev != target.st_dev || h.st.st_ino != target.st_ino) return;
      std::uint64_t off = 0;
      if (mapping_offset(pid, h.start, &off)) out.push_back({pid, h.start, h.end, off});
    });
  }
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
