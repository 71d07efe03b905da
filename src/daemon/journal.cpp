// SPDX-License-Identifier: GPL-2.0-only
#include "daemon/journal.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>

namespace dupcache::daemon {

result<void> journal::open(const std::string& path, std::uint64_t max_bytes, unsigned keep) {
  path_ = path;
  max_bytes_ = max_bytes;
  keep_ = keep;
  fd_ = unique_fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640));
  if (!fd_) return errno_error("open journal " + path);
  struct stat st {};
  fstat(fd_.get(), &st);
  size_ = static_cast<std::uint64_t>(st.st_size);
  return {};
}

result<void> journal::rotate() {
  for (unsigned i = keep_; i > 0; --i) {
    const std::string from = i == 1 ? path_ : path_ + "." + std::to_string(i - 1);
    const std::string to = path_ + "." + std::to_string(i);
    if (::rename(from.c_str(), to.c_str()) < 0 && errno != ENOENT) return errno_error("rotate journal " + from);
  }
  fd_ = unique_fd(::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640));
  if (!fd_) return errno_error("open journal " + path_);
  size_ = 0;
  return {};
}

result<void> journal::write(const nlohmann::ordered_json& entry) {
  if (!fd_) return {};
  result<void> rotated;
  if (max_bytes_ > 0 && size_ >= max_bytes_) rotated = rotate();
  if (!fd_) return rotated;
  const std::string line = entry.dump() + "\n";
  const ssize_t n = ::write(fd_.get(), line.data(), line.size());
  if (n < 0) return errno_error("write journal " + path_);
  size_ += static_cast<std::uint64_t>(n);
  return rotated;
}

}  // namespace dupcache::daemon
