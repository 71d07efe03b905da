// SPDX-License-Identifier: GPL-2.0-only
#include "daemon/metrics.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <netdb.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <charconv>
#include <memory>

namespace dupcache::daemon {

namespace {

// Label values: backslash, double quote and newline escaped.
std::string label(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

void family(std::string& out, const char* name, const char* type, const char* help) {
  out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
}

}  // namespace

std::string render_metrics(const metrics_input& in) {
  std::string o;
  const auto& m = *in.model;
  family(o, "dupcache_up", "gauge", "1 while the daemon runs; live is 1 when BPF tracing feeds the index.");
  o += fmt::format("dupcache_up{{live=\"{}\"}} 1\n", in.live ? 1 : 0);
  family(o, "dupcache_cached_bytes", "gauge", "Page cache held by the watched files.");
  o += fmt::format("dupcache_cached_bytes {}\n", m.cached_bytes);
  family(o, "dupcache_wasted_bytes", "gauge", "Cached bytes that are second or later copies of a physical block.");
  o += fmt::format("dupcache_wasted_bytes {}\n", m.wasted_bytes);
  family(o, "dupcache_filesystem_cached_bytes", "gauge", "Cached bytes per filesystem.");
  for (const auto& fs : m.filesystems) {
    o += fmt::format("dupcache_filesystem_cached_bytes{{fs=\"{}\",type=\"{}\"}} {}\n", label(fs.id), label(fs.type),
                     fs.cached_bytes);
  }
  family(o, "dupcache_filesystem_wasted_bytes", "gauge", "Wasted bytes per filesystem.");
  for (const auto& fs : m.filesystems) {
    o += fmt::format("dupcache_filesystem_wasted_bytes{{fs=\"{}\",type=\"{}\"}} {}\n", label(fs.id), label(fs.type),
                     fs.wasted_bytes);
  }
  if (m.containers_known) {
    family(o, "dupcache_container_cached_bytes", "gauge", "Cached bytes charged to each container.");
    for (const auto& c : m.containers) {
      o += fmt::format("dupcache_container_cached_bytes{{runtime=\"{}\",id=\"{}\",name=\"{}\",cgroup=\"{}\"}} {}\n",
                       label(c.runtime), label(c.id), label(c.name), label(c.cgroup), c.cached_bytes);
    }
    family(o, "dupcache_container_wasted_bytes", "gauge", "Each container's share of the wasted bytes.");
    for (const auto& c : m.containers) {
      o += fmt::format("dupcache_container_wasted_bytes{{runtime=\"{}\",id=\"{}\",name=\"{}\",cgroup=\"{}\"}} {}\n",
                       label(c.runtime), label(c.id), label(c.name), label(c.cgroup), c.wasted_bytes);
    }
  }
  family(o, "dupcache_events_total", "counter", "Page-cache events applied to the index.");
  o += fmt::format("dupcache_events_total {}\n", in.events);
  family(o, "dupcache_lost_events_total", "counter", "Events the ring buffer dropped (each forces a rescan).");
  o += fmt::format("dupcache_lost_events_total {}\n", in.lost_events);
  family(o, "dupcache_triggered", "gauge", "1 while a trigger holds and the daemon acts.");
  o += fmt::format("dupcache_triggered {}\n", in.triggered ? 1 : 0);
  family(o, "dupcache_dry_run", "gauge", "1 when actions are only planned and logged.");
  o += fmt::format("dupcache_dry_run {}\n", in.dry_run ? 1 : 0);
  family(o, "dupcache_actions_total", "counter", "Actions taken, by kind and result.");
  for (const auto& [k, n] : in.actions->actions) {
    o += fmt::format("dupcache_actions_total{{action=\"{}\",result=\"{}\"}} {}\n", label(k.first), label(k.second), n);
  }
  family(o, "dupcache_freed_bytes_total", "counter", "Cache freed by actions, measured after each.");
  o += fmt::format("dupcache_freed_bytes_total {}\n", in.actions->freed_bytes);
  family(o, "dupcache_refaults_total", "counter", "Evicted copies that were read back in soon after (backed off).");
  o += fmt::format("dupcache_refaults_total {}\n", in.actions->refaults);

  // Copies per duplicated physical page, counted in pages.
  static constexpr std::array<std::uint64_t, 6> bounds{2, 3, 4, 8, 16, 64};
  std::array<std::uint64_t, bounds.size()> buckets{};
  std::uint64_t count = 0, sum = 0;
  const std::uint64_t ps = in.index->page_size();
  in.index->for_each_shared([&](domain_id, std::uint64_t s, std::uint64_t e, const std::vector<copy_id>& copies) {
    const std::uint64_t pages = (e - s) / ps, k = copies.size();
    for (std::size_t i = 0; i < bounds.size(); ++i) {
      if (k <= bounds[i]) buckets[i] += pages;
    }
    count += pages;
    sum += pages * k;
  });
  family(o, "dupcache_block_copies", "histogram", "Cached copies per duplicated physical page, over pages.");
  for (std::size_t i = 0; i < bounds.size(); ++i) {
    o += fmt::format("dupcache_block_copies_bucket{{le=\"{}\"}} {}\n", bounds[i], buckets[i]);
  }
  o += fmt::format("dupcache_block_copies_bucket{{le=\"+Inf\"}} {}\n", count);
  o += fmt::format("dupcache_block_copies_sum {}\ndupcache_block_copies_count {}\n", sum, count);
  return o;
}

namespace {

std::string http_message(std::string_view status, std::string_view extra_headers, std::string_view content_type,
                         std::string_view body, bool with_body) {
  std::string r = fmt::format("HTTP/1.1 {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n{}Connection: close\r\n\r\n",
                              status, content_type, body.size(), extra_headers);
  if (with_body) r += body;
  return r;
}

std::string http_error(std::string_view status, std::string_view extra_headers = {}) {
  return http_message(status, extra_headers, "text/plain; charset=utf-8", std::string(status) + "\n", true);
}

}  // namespace

std::string http_too_large() { return http_error("431 Request Header Fields Too Large"); }

std::optional<std::string> http_reply(std::string_view received, const std::string& body) {
  // Only the request line is kept; header lines are counted and skipped, never stored.
  std::string_view request_line;
  std::size_t lines = 0;
  for (std::size_t pos = 0;;) {
    const auto nl = received.find('\n', pos);
    if (nl == std::string_view::npos) return std::nullopt;
    std::string_view line = received.substr(pos, nl - pos);
    pos = nl + 1;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (++lines > http_max_head_lines) return http_too_large();
    if (!line.empty()) {
      if (request_line.empty()) request_line = line;
      continue;
    }
    // RFC 9112 2.2: empty lines before the request line are ignored.
    if (!request_line.empty()) break;
  }
  const auto sp1 = request_line.find(' ');
  const auto sp2 = sp1 == std::string_view::npos ? sp1 : request_line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || request_line.find(' ', sp2 + 1) != std::string_view::npos) {
    return http_error("400 Bad Request");
  }
  const std::string_view method = request_line.substr(0, sp1), version = request_line.substr(sp2 + 1);
  std::string_view target = request_line.substr(sp1 + 1, sp2 - sp1 - 1);
  if (version != "HTTP/1.1" && version != "HTTP/1.0") return http_error("400 Bad Request");
  if (method != "GET" && method != "HEAD") return http_error("405 Method Not Allowed", "Allow: GET, HEAD\r\n");
  target = target.substr(0, target.find('?'));
  if (target != "/metrics") return http_error("404 Not Found");
  return http_message("200 OK", {}, "text/plain; version=0.0.4; charset=utf-8", body, method == "GET");
}

metrics_server::metrics_server() = default;

metrics_server::~metrics_server() = default;

result<void> metrics_server::start(const std::string& listen) {
  const auto colon = listen.rfind(':');
  if (colon == std::string::npos) return plain_error("listen on " + listen, "not ADDRESS:PORT");
  std::string host = listen.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  const std::string port = listen.substr(colon + 1);
  unsigned value = 0;
  const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (ec != std::errc{} || end != port.data() + port.size() || value > 65535) {
    return plain_error("listen on " + listen, "not ADDRESS:PORT");
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  if (const int rc = ::getaddrinfo(host.empty() ? nullptr : host.c_str(), port.c_str(), &hints, &found); rc != 0) {
    return plain_error("listen on " + listen, std::string("cannot resolve the address: ") + ::gai_strerror(rc));
  }
  const std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> list(found, ::freeaddrinfo);
  error last = plain_error("listen on " + listen, "no address to bind");
  for (const addrinfo* ai = list.get(); ai; ai = ai->ai_next) {
    unique_fd fd(::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol));
    if (!fd) {
      last = errno_error("listen on " + listen + ": socket");
      continue;
    }
    // A restarted daemon rebinds at once, with the old connections still in TIME_WAIT.
    const int one = 1;
    ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (::bind(fd.get(), ai->ai_addr, ai->ai_addrlen) < 0) {
      last = errno_error("listen on " + listen + ": bind");
      continue;
    }
    if (::listen(fd.get(), 64) < 0) {
      last = errno_error("listen on " + listen);
      continue;
    }
    serve_limits limits;
    limits.max_connections = 16;
    limits.max_request_bytes = http_max_head_bytes;
    limits.request_time = std::chrono::seconds(5);
    limits.reply_time = std::chrono::seconds(10);
    return server_.start(std::move(fd), limits, [this](std::string_view received) -> std::optional<std::string> {
      std::lock_guard lock(mu_);
      return http_reply(received, text_);
    }, http_too_large());
  }
  return last;
}

void metrics_server::publish(std::string text) {
  std::lock_guard lock(mu_);
  text_ = std::move(text);
}

result<void> write_textfile(const std::string& path, const std::string& text) {
  const auto slash = path.rfind('/');
  const std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
  const std::string name = slash == std::string::npos ? path : path.substr(slash + 1);
  unique_fd dfd(::open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!dfd) return errno_error("write " + path + ": open directory " + dir);
  // A name nobody can plant in advance; O_EXCL|O_NOFOLLOW also refuses one planted anyway
  // (the collector reads *.prom only, so the temporary name is never scraped).
  std::string tmp;
  unique_fd fd;
  for (int attempt = 0; attempt < 8 && !fd; ++attempt) {
    std::uint64_t r = 0;
    if (::getrandom(&r, sizeof r, 0) != static_cast<ssize_t>(sizeof r)) return errno_error("write " + path + ": getrandom");
    tmp = fmt::format(".{}.{:016x}.tmp", name, r);
    // 0666 before the umask, as the fopen() this replaces: the collector must read it.
    fd = unique_fd(::openat(dfd.get(), tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666));
    if (!fd && errno != EEXIST) return errno_error("write " + dir + "/" + tmp);
  }
  if (!fd) return errno_error("write " + path + ": create a temporary file in " + dir);
  for (std::size_t off = 0; off < text.size();) {
    const ssize_t n = ::write(fd.get(), text.data() + off, text.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int err = n < 0 ? errno : EIO;
      ::unlinkat(dfd.get(), tmp.c_str(), 0);
      return errno_error("write " + dir + "/" + tmp, err);
    }
    off += static_cast<std::size_t>(n);
  }
  fd.reset();
  if (::renameat(dfd.get(), tmp.c_str(), dfd.get(), name.c_str()) < 0) {
    const int err = errno;
    ::unlinkat(dfd.get(), tmp.c_str(), 0);
    return errno_error("rename " + dir + "/" + tmp + " to " + path, err);
  }
  return {};
}

}  // namespace dupcache::daemon
