// SPDX-License-Identifier: GPL-2.0-only
#include "daemon/remote_source.hpp"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "daemon/protocol.hpp"

namespace dupcache::daemon {

remote_source::remote_source(std::string socket_path, std::chrono::milliseconds interval, container_filter filter,
                             std::size_t rows)
    : socket_path_(std::move(socket_path)),
      interval_(interval),
      filter_(std::move(filter)),
      rows_(rows),
      wake_fd_(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {}

void remote_source::wake() {
  const std::uint64_t one = 1;
  if (wake_fd_) (void)!write(wake_fd_.get(), &one, sizeof one);
}

void remote_source::set_view(const live::view_state& st) {
  std::lock_guard lock(view_mu_);
  view_ = st;
}

sample_request remote_source::request() {
  std::lock_guard lock(view_mu_);
  return {rows_, filter_, view_};
}

result<void> remote_source::start() {
  auto s = ask_sample(socket_path_, request());
  if (!s) return s.err();
  mode_ = s->mode;
  last_ = std::chrono::steady_clock::now();
  return {};
}

result<live::sample> remote_source::next() {
  const auto deadline = last_ + interval_;
  const auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
  pollfd fd{wake_fd_.get(), POLLIN, 0};
  if (wait.count() > 0 && ::poll(&fd, 1, static_cast<int>(wait.count())) > 0) {
    std::uint64_t v;
    (void)!read(wake_fd_.get(), &v, sizeof v);
  }
  auto s = ask_sample(socket_path_, request());
  if (!s) return s.err();
  const auto now = std::chrono::steady_clock::now();
  s->iteration = ++iteration_;
  s->elapsed_s = std::chrono::duration<double>(now - last_).count();
  last_ = now;
  mode_ = s->mode;
  return s;
}

}  // namespace dupcache::daemon
