// SPDX-License-Identifier: GPL-2.0-only
#pragma once

// Opening a path below a directory fd without following any symbolic link on the way: the
// walk and the evictor run as root over trees users write, and a user who swaps one of their
// directories for a symlink between two steps must not redirect them. O_NOFOLLOW alone guards
// only the last component.
//
// openat2(RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_BENEATH), Linux 5.6; before
// that (ENOSYS, also what seccomp profiles older than it answer) one component at a time with
// openat(O_NOFOLLOW), each step relative to the fd of the one before, which is as safe.

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <string>
#include <string_view>

#include "util/fd.hpp"

namespace dupcache {

namespace detail {
inline std::atomic<bool> openat2_unavailable{false};
}

// rel ("a/b/c", no "..", leading slashes ignored; empty: dirfd itself) below dirfd. Fails with
// ELOOP when a component is a symbolic link, EXDEV or ENOENT for "..". flags as for openat;
// O_NOFOLLOW and O_CLOEXEC are added.
inline unique_fd open_no_symlinks(int dirfd, std::string_view rel, int flags) {
  while (!rel.empty() && rel.front() == '/') rel.remove_prefix(1);
  const std::string r = rel.empty() ? std::string(".") : std::string(rel);
  // ".." is refused outright, as the fallback must: RESOLVE_BENEATH alone would allow one that
  // stays below dirfd.
  for (std::size_t pos = 0; pos <= r.size();) {
    const std::size_t end = std::min(r.find('/', pos), r.size());
    if (r.compare(pos, end - pos, "..") == 0) {
      errno = EXDEV;
      return {};
    }
    pos = end + 1;
  }
  flags |= O_NOFOLLOW | O_CLOEXEC;
  if (!detail::openat2_unavailable.load(std::memory_order_relaxed)) {
    open_how how{};
    how.flags = static_cast<std::uint64_t>(flags);
    how.resolve = RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_BENEATH;
    for (int attempt = 0;; ++attempt) {
      const long fd = syscall(SYS_openat2, dirfd, r.c_str(), &how, sizeof how);
      // EAGAIN: a rename raced the resolution; the kernel asks for a retry.
      if (fd < 0 && errno == EAGAIN && attempt < 3) continue;
      if (fd >= 0 || errno != ENOSYS) return unique_fd(static_cast<int>(fd));
      break;
    }
    detail::openat2_unavailable.store(true, std::memory_order_relaxed);
  }
  unique_fd cur;
  std::string_view rest = r;
  for (;;) {
    const std::size_t slash = rest.find('/');
    const std::string name(rest.substr(0, slash));
    rest = slash == std::string_view::npos ? std::string_view() : rest.substr(slash + 1);
    while (!rest.empty() && rest.front() == '/') rest.remove_prefix(1);
    const bool last = rest.empty();
    const int f = last ? flags : O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
    unique_fd next(::openat(cur ? cur.get() : dirfd, name.c_str(), f));
    if (!next) return {};
    if (last) return next;
    cur = std::move(next);
  }
}

// A file the walk reached from `root` (a PATH the caller named, which may pass through
// symlinks) by `path`: the root as named, the rest one component at a time with no symlink
// followed, and only O_PATH, which opens nothing (a FIFO does not block, a device is not
// touched). Shared by everything that reopens a scanned file.
inline unique_fd open_walked_path(const std::string& root_in, const std::string& path) {
  if (!root_in.empty() && path == root_in) return unique_fd(::open(path.c_str(), O_PATH | O_CLOEXEC));
  std::string root = "/";
  std::string_view rel = path;
  if (!root_in.empty() && path.size() > root_in.size() && path.compare(0, root_in.size(), root_in) == 0 &&
      (path[root_in.size()] == '/' || root_in.back() == '/')) {
    root = root_in;
    rel.remove_prefix(root_in.size());
  }
  unique_fd rfd(::open(root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!rfd) return {};
  return open_no_symlinks(rfd.get(), rel, O_PATH);
}

}  // namespace dupcache
