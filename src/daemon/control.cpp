// SPDX-License-Identifier: GPL-2.0-only
#include "daemon/control.hpp"

#include "top/view.hpp"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdio>
#include <exception>
#include <nlohmann/json.hpp>

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
      return std::string("error: cannot render the answer: ") + e.what() + "\n";
    }
  };
  return server_.start(std::move(listener), limits, std::move(handle),
                       "error: the request is larger than " + std::to_string(control_max_request / 1024) + " KiB\n");
}

void control_server::publish(const top::sample& s) {
  std::lock_guard lock(mu_);
  sample_ = s;
  have_sample_ = true;
}

std::optional<std::string> control_server::answer(std::string_view received) {
  const auto nl = received.find('\n');
  if (nl == std::string_view::npos) return std::nullopt;
  const std::string_view req = received.substr(0, nl);
  auto j = nlohmann::json::parse(req, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return "error: the request is not a JSON object\n";
  report_options ro;
  if (auto v = j.find("views"); v != j.end() && v->is_array()) {
    ro.views.clear();
    for (const auto& x : *v) {
      const std::string s = x.is_string() ? x.get<std::string>() : "";
      if (s == "file") ro.views.push_back(report_view::file);
      else if (s == "group") ro.views.push_back(report_view::group);
      else if (s == "fs") ro.views.push_back(report_view::fs);
      else if (s == "container") ro.views.push_back(report_view::container);
      else return "error: unknown view '" + s + "'\n";
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
    if (!have_sample_) return "error: the daemon has not finished its first interval yet\n";
    s = sample_;
  }
  if (!f.empty()) {
    if (!s.model.containers_known) return "error: the daemon does not attribute pages to containers\n";
    filter_containers(s.model, f);
  }
  if (j.value("sample", false)) return top::sample_json(s, ro.top.value_or(0)).dump() + "\n";
  return j.value("json", false) ? report_json(s.model, ro).dump(2) + "\n" : report_text(s.model, ro);
}

}  // namespace dupcache::daemon
