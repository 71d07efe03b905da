// SPDX-License-Identifier: GPL-2.0-only
#include "daemon/control.hpp"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdio>
#include <exception>
#include <variant>

#include "daemon/protocol.hpp"

namespace dupcache::daemon {

namespace {

bool fill_addr(const std::string& path, sockaddr_un* a) {
  a->sun_family = AF_UNIX;
  if (path.size() >= sizeof a->sun_path) return false;
  std::snprintf(a->sun_path, sizeof a->sun_path, "%s", path.c_str());
  return true;
}

}  // namespace

control_server::~control_server() {
  if (!path_.empty()) ::unlink(path_.c_str());
}

result<void> control_server::start(const std::string& path) {
  sockaddr_un a{};
  if (!fill_addr(path, &a)) return plain_error("listen on " + path, "path too long for a Unix socket");
  unique_fd listener(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!listener) return errno_error("socket");
  // A socket left by a killed daemon: replace it (a live daemon would still answer).
  if (::connect(listener.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) {
    return plain_error("listen on " + path, "another dupcache daemon answers there");
  }
  ::unlink(path.c_str());
  const mode_t old = ::umask(0077);
  const int rc = ::bind(listener.get(), reinterpret_cast<sockaddr*>(&a), sizeof a);
  ::umask(old);
  if (rc < 0) return errno_error("bind " + path);
  if (::listen(listener.get(), 16) < 0) return errno_error("listen on " + path);
  path_ = path;
  serve_limits limits;
  limits.max_connections = 8;
  limits.max_request_bytes = control_max_request;
  // The request is one short line, sent at once by report/top --from-daemon; the answer may be
  // a large report, read by a client that waits up to 30 s for it.
  limits.request_time = std::chrono::seconds(2);
  limits.reply_time = std::chrono::seconds(30);
  auto handle = [this](std::string_view received) -> std::optional<std::string> {
    // Rendering runs on the serving thread: an exception escaping it would end the daemon.
    try {
      return answer(received);
    } catch (const std::exception& e) {
      return encode_error(std::string("cannot render the answer: ") + e.what());
    }
  };
  return server_.start(std::move(listener), limits, std::move(handle),
                       encode_error("the request is larger than " + std::to_string(control_max_request / 1024) + " KiB"));
}

void control_server::publish(live::sample&& s) {
  auto next = std::make_shared<const live::sample>(std::move(s));
  std::lock_guard lock(mu_);
  sample_.swap(next);  // the old one is freed outside the lock, by `next`, unless a reader holds it
}

std::optional<std::string> control_server::answer(std::string_view received) {
  const auto nl = received.find('\n');
  if (nl == std::string_view::npos) return std::nullopt;
  auto req = decode_request(received.substr(0, nl));
  if (!req) return encode_error(req.err().reason());
  const container_filter& f = std::visit([](const auto& r) -> const container_filter& { return r.filter; }, *req);
  std::shared_ptr<const live::sample> held;
  {
    std::lock_guard lock(mu_);
    held = sample_;
  }
  if (!held) return encode_error("the daemon has not finished its first interval yet");
  const live::sample* s = held.get();
  live::sample filtered;  // a copy only when containers are filtered out of it
  if (!f.empty()) {
    if (!s->model.containers_known) return encode_error("the daemon does not attribute pages to containers");
    filtered = *s;
    filter_containers(filtered.model, f);
    s = &filtered;
  }
  if (const auto* sr = std::get_if<sample_request>(&*req)) return encode_sample_reply(*s, *sr);
  return encode_report_reply(s->model, std::get<report_request>(*req));
}

}  // namespace dupcache::daemon
