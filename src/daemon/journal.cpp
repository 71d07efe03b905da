// SPDX-License-Identifier: GPL-2.0-only
#include "daemon/journal.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>

#include "util/json_text.hpp"

namespace dupcache::daemon {

namespace {

// O_NOFOLLOW: a symbolic link at the journal's path (planted, or left by a mistake) is refused,
// never written through to whatever it names. O_NONBLOCK: a FIFO there fails (ENXIO) instead of
// blocking the daemon until someone reads it; on a regular file it changes nothing.
result<unique_fd> open_journal(const std::string& path) {
  unique_fd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, 0640));
  if (!fd && errno == ELOOP) return plain_error("open journal " + path, "it is a symbolic link (refused: the journal is never written through one)");
  if (!fd) return errno_error("open journal " + path);
  struct stat st {};
  if (::fstat(fd.get(), &st) < 0) return errno_error("open journal " + path);
  if (!S_ISREG(st.st_mode)) return plain_error("open journal " + path, "not a regular file");
  return fd;
}

}  // namespace

result<void> journal::open(const std::string& path, std::uint64_t max_bytes, unsigned keep) {
  path_ = path;
  max_bytes_ = max_bytes;
  keep_ = keep;
  auto fd = open_journal(path);
  if (!fd) return fd.err();
  fd_ = std::move(*fd);
  struct stat st {};
  ::fstat(fd_.get(), &st);
  size_ = static_cast<std::uint64_t>(st.st_size);
  return {};
}

result<void> journal::rotate() {
  for (unsigned i = keep_; i > 0; --i) {
    const std::string from = i == 1 ? path_ : path_ + "." + std::to_string(i - 1);
    const std::string to = path_ + "." + std::to_string(i);
    if (::rename(from.c_str(), to.c_str()) < 0 && errno != ENOENT) return errno_error("rotate journal " + from);
  }
  auto fd = open_journal(path_);
  if (!fd) {
    fd_.reset();  // the old file was renamed away: writing on would grow it unbounded
    return fd.err();
  }
  fd_ = std::move(*fd);
  size_ = 0;
  return {};
}

result<void> journal::write(const nlohmann::ordered_json& entry) {
  if (!fd_) return {};
  result<void> rotated;
  if (max_bytes_ > 0 && size_ >= max_bytes_) rotated = rotate();
  if (!fd_) return rotated;
  // Never throws on bytes that are not UTF-8 (callers escape what they know is a path; this
  // catches what they missed): one bad name must not abort the daemon.
  const std::string line = dump_json(entry) + "\n";
  const ssize_t n = ::write(fd_.get(), line.data(), line.size());
  if (n < 0) return errno_error("write journal " + path_);
  size_ += static_cast<std::uint64_t>(n);
  return rotated;
}

}  // namespace dupcache::daemon
