// SPDX-License-Identifier: GPL-2.0-only
#include "report/remote.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>

#include "util/fd.hpp"

namespace dupcache {

result<std::string> ask_daemon(const std::string& path, const std::string& request) {
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  if (path.size() >= sizeof a.sun_path) return plain_error("connect " + path, "path too long for a Unix socket");
  std::snprintf(a.sun_path, sizeof a.sun_path, "%s", path.c_str());
  unique_fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return errno_error("socket");
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) < 0) {
    return error{"connect " + path, errno, std::string(std::strerror(errno)) + " (is dupcache daemon running?)"};
  }
  const std::string line = request + "\n";
  for (std::size_t off = 0; off < line.size();) {
    const ssize_t n = ::send(fd.get(), line.data() + off, line.size() - off, MSG_NOSIGNAL);
    if (n <= 0) return errno_error("write to " + path);
    off += static_cast<std::size_t>(n);
  }
  std::string out;
  char buf[65536];
  for (;;) {
    pollfd p{fd.get(), POLLIN, 0};
    if (::poll(&p, 1, 30000) <= 0) return plain_error("read from " + path, "the daemon did not answer in 30 s");
    const ssize_t n = ::recv(fd.get(), buf, sizeof buf, 0);
    if (n < 0) return errno_error("read from " + path);
    if (n == 0) break;
    out.append(buf, static_cast<std::size_t>(n));
  }
  if (out.rfind("error: ", 0) == 0) {
    std::string why = out.substr(7);
    while (!why.empty() && why.back() == '\n') why.pop_back();
    return plain_error("report from the daemon", why);
  }
  return out;
}

}  // namespace dupcache
