// SPDX-License-Identifier: GPL-2.0-only
#include "daemon/server.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <vector>

namespace dupcache::daemon {

namespace {

using clock_type = std::chrono::steady_clock;

enum class phase { request, reply, linger };

struct connection {
  unique_fd fd;
  phase state = phase::request;
  std::string in;
  std::string out;
  std::size_t sent = 0;
  std::size_t discarded = 0;
  clock_type::time_point deadline;
};

// After the reply the peer may still be sending (a body, or the rest of a flood). Closing with
// unread bytes resets the connection, and a reset can make the peer drop a reply it has not read
// yet; so the write side is shut and what still arrives is read and dropped, briefly and up to
// max_request_bytes, before the close.
constexpr std::chrono::milliseconds linger_time{500};

// accept() failing for lack of fds or memory leaves the listener readable: poll would spin.
constexpr std::chrono::milliseconds accept_pause{100};

bool transient(int err) { return err == EAGAIN || err == EWOULDBLOCK || err == EINTR; }

void release(std::string& s) { std::string().swap(s); }

}  // namespace

bounded_server::~bounded_server() {
  if (wake_) {
    const std::uint64_t one = 1;
    (void)!::write(wake_.get(), &one, sizeof one);
  }
  if (thread_.joinable()) thread_.join();
}

result<void> bounded_server::start(unique_fd listener, serve_limits limits, request_handler handle,
                                   std::string too_large) {
  const int flags = ::fcntl(listener.get(), F_GETFL);
  // Non-blocking: a connection reset between poll and accept must not stall the thread.
  if (flags < 0 || ::fcntl(listener.get(), F_SETFL, flags | O_NONBLOCK) < 0) return errno_error("set listener non-blocking");
  wake_ = unique_fd(::eventfd(0, EFD_CLOEXEC));
  if (!wake_) return errno_error("eventfd");
  listen_ = std::move(listener);
  limits_ = limits;
  limits_.max_connections = std::max<std::size_t>(limits_.max_connections, 1);
  limits_.max_request_bytes = std::max<std::size_t>(limits_.max_request_bytes, 1);
  handle_ = std::move(handle);
  too_large_ = std::move(too_large);
  thread_ = std::thread([this] { run(); });
  return {};
}

void bounded_server::run() {
  std::vector<connection> conns;
  conns.reserve(limits_.max_connections);
  std::vector<pollfd> fds;
  char buf[4096];
  clock_type::time_point accept_again{};

  // One step of a connection whose socket poll reported ready; resets fd when it is done.
  auto step = [&](connection& c, clock_type::time_point now) {
    if (c.state == phase::request) {
      const std::size_t room = std::min(sizeof buf, limits_.max_request_bytes - c.in.size());
      const ssize_t n = ::recv(c.fd.get(), buf, room, MSG_DONTWAIT);
      if (n < 0 && transient(errno)) return;
      if (n <= 0) return c.fd.reset();
      c.in.append(buf, static_cast<std::size_t>(n));
      std::optional<std::string> reply = handle_(c.in);
      if (!reply && c.in.size() >= limits_.max_request_bytes) reply = too_large_;
      if (!reply) return;
      release(c.in);
      c.out = std::move(*reply);
      c.state = phase::reply;
      c.deadline = now + limits_.reply_time;
      // Usually the whole reply fits the socket buffer: send it now rather than after a poll.
    }
    if (c.state == phase::reply) {
      const ssize_t n = ::send(c.fd.get(), c.out.data() + c.sent, c.out.size() - c.sent, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n < 0 && transient(errno)) return;
      if (n < 0) return c.fd.reset();
      c.sent += static_cast<std::size_t>(n);
      if (c.sent < c.out.size()) return;
      release(c.out);
      ::shutdown(c.fd.get(), SHUT_WR);
      c.state = phase::linger;
      c.deadline = std::min(c.deadline, now + linger_time);
      return;
    }
    const ssize_t n = ::recv(c.fd.get(), buf, sizeof buf, MSG_DONTWAIT);
    if (n < 0 && transient(errno)) return;
    if (n <= 0) return c.fd.reset();
    c.discarded += static_cast<std::size_t>(n);
    if (c.discarded >= limits_.max_request_bytes) c.fd.reset();
  };

  auto accept_some = [&](clock_type::time_point now) {
    // At most half the slots per round: a connection accepted in this round gets its request
    // read before a burst of later ones could push it out.
    const std::size_t burst = std::max<std::size_t>(limits_.max_connections / 2, 1);
    for (std::size_t k = 0; k < burst; ++k) {
      unique_fd fd(::accept4(listen_.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK));
      if (!fd) {
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) accept_again = now + accept_pause;
        if (errno == ECONNABORTED || errno == EINTR) continue;
        return;
      }
      if (conns.size() >= limits_.max_connections) {
        auto oldest = std::find_if(conns.begin(), conns.end(), [](const connection& c) { return c.state == phase::request; });
        conns.erase(oldest != conns.end() ? oldest : conns.begin());
      }
      connection c;
      c.fd = std::move(fd);
      c.deadline = now + limits_.request_time;
      conns.push_back(std::move(c));
    }
  };

  for (;;) {
    auto now = clock_type::now();
    std::erase_if(conns, [&](const connection& c) { return !c.fd || now >= c.deadline; });
    auto wake_at = clock_type::time_point::max();
    for (const auto& c : conns) wake_at = std::min(wake_at, c.deadline);
    const bool accepting = now >= accept_again;
    if (!accepting) wake_at = std::min(wake_at, accept_again);
    int timeout = -1;
    if (wake_at != clock_type::time_point::max()) {
      const auto ms = std::chrono::ceil<std::chrono::milliseconds>(wake_at - now).count();
      timeout = static_cast<int>(std::clamp<std::int64_t>(ms, 0, 60'000));
    }
    fds.clear();
    fds.push_back({wake_.get(), POLLIN, 0});
    fds.push_back({listen_.get(), static_cast<short>(accepting ? POLLIN : 0), 0});
    for (const auto& c : conns) fds.push_back({c.fd.get(), static_cast<short>(c.state == phase::reply ? POLLOUT : POLLIN), 0});
    if (::poll(fds.data(), fds.size(), timeout) < 0) {
      if (errno != EINTR) std::this_thread::sleep_for(accept_pause);
      continue;
    }
    if (fds[0].revents) return;
    now = clock_type::now();
    for (std::size_t i = 0; i < conns.size(); ++i) {
      if (fds[i + 2].revents) step(conns[i], now);
    }
    if (fds[1].revents & POLLIN) accept_some(now);
  }
}

}  // namespace dupcache::daemon
