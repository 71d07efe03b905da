// SPDX-License-Identifier: GPL-2.0-only
#include "daemon/control.hpp"

#include "top/view.hpp"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdio>
#include <nlohmann/json.hpp>

namespace dupcache::daemon {

namespace {

constexpr std::size_t max_request = 64 * 1024;

bool fill_addr(const std::string& path, sockaddr_un* a) {
  a->sun_family = AF_UNIX;
  if (path.size() >= sizeof a->sun_path) return false;
  std::snprintf(a->sun_path, sizeof a->sun_path, "%s", path.c_str());
  return true;
}

void send_all(int fd, const std::string& s) {
  std::size_t off = 0;
  while (off < s.size()) {
    const ssize_t n = ::send(fd, s.data() + off, s.size() - off, MSG_NOSIGNAL);
    if (n <= 0) return;
    off += static_cast<std::size_t>(n);
  }
}

}  // namespace

control_server::~control_server() {
  done_ = true;
  if (wake_) {
    const std::uint64_t one = 1;
    (void)!::write(wake_.get(), &one, sizeof one);
  }
  if (thread_.joinable()) thread_.join();
  if (!path_.empty()) ::unlink(path_.c_str());
}

result<void> control_server::start(const std::string& path) {
  sockaddr_un a{};
  if (!fill_addr(path, &a)) return plain_error("listen on " + path, "path too long for a Unix socket");
  listen_ = unique_fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!listen_) return errno_error("socket");
  // A socket left by a killed daemon: replace it (a live daemon would still answer).
  if (::connect(listen_.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) {
    return plain_error("listen on " + path, "another dupcache daemon answers there");
  }
  ::unlink(path.c_str());
  const mode_t old = ::umask(0077);
  const int rc = ::bind(listen_.get(), reinterpret_cast<sockaddr*>(&a), sizeof a);
  ::umask(old);
  if (rc < 0) return errno_error("bind " + path);
  if (::listen(listen_.get(), 16) < 0) return errno_error("listen on " + path);
  path_ = path;
  wake_ = unique_fd(::eventfd(0, EFD_CLOEXEC));
  thread_ = std::thread([this] { serve(); });
  return {};
}

void control_server::publish(const top::sample& s) {
  std::lock_guard lock(mu_);
  sample_ = s;
  have_sample_ = true;
}

void control_server::serve() {
  while (!done_) {
    pollfd p[2] = {{listen_.get(), POLLIN, 0}, {wake_.get(), POLLIN, 0}};
    if (::poll(p, 2, -1) <= 0) continue;
    if (p[1].revents) break;
    unique_fd c(::accept4(listen_.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (c) answer(c.get());
  }
}

void control_server::answer(int fd) {
  // The request: one line, read with a deadline so a stuck client cannot hold the socket.
  std::string req;
  char buf[4096];
  while (req.find('\n') == std::string::npos && req.size() < max_request) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 2000) <= 0) return;
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    req.append(buf, static_cast<std::size_t>(n));
  }
  auto j = nlohmann::json::parse(req, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return send_all(fd, "error: the request is not a JSON object\n");
  report_options ro;
  if (auto v = j.find("views"); v != j.end() && v->is_array()) {
    ro.views.clear();
    for (const auto& x : *v) {
      const std::string s = x.is_string() ? x.get<std::string>() : "";
      if (s == "file") ro.views.push_back(report_view::file);
      else if (s == "group") ro.views.push_back(report_view::group);
      else if (s == "fs") ro.views.push_back(report_view::fs);
      else if (s == "container") ro.views.push_back(report_view::container);
      else return send_all(fd, "error: unknown view '" + s + "'\n");
    }
  }
  if (auto v = j.find("top"); v != j.end() && v->is_number_unsigned() && v->get<std::size_t>() > 0) ro.top = v->get<std::size_t>();
  ro.exact_bytes = j.value("bytes", false);
  container_filter f;
  if (auto v = j.find("containers"); v != j.end() && v->is_array()) {
    for (const auto& x : *v) if (x.is_string()) f.containers.push_back(x.get<std::string>());
  }
  if (auto v = j.find("cgroups"); v != j.end() && v->is_array()) {
    for (const auto& x : *v) if (x.is_string()) f.cgroups.push_back(x.get<std::string>());
  }
  top::sample s;
  {
    std::lock_guard lock(mu_);
    if (!have_sample_) return send_all(fd, "error: the daemon has not finished its first interval yet\n");
    s = sample_;
  }
  if (!f.empty()) {
    if (!s.model.containers_known) return send_all(fd, "error: the daemon does not attribute pages to containers\n");
    filter_containers(s.model, f);
  }
  if (j.value("sample", false)) return send_all(fd, top::sample_json(s, ro.top.value_or(0)).dump() + "\n");
  send_all(fd, j.value("json", false) ? report_json(s.model, ro).dump(2) + "\n" : report_text(s.model, ro));
}

}  // namespace dupcache::daemon
