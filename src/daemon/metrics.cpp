// SPDX-License-Identifier: GPL-2.0-only
#include "daemon/metrics.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <httplib.h>

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

metrics_server::metrics_server() = default;

metrics_server::~metrics_server() {
  if (server_) server_->stop();
  if (thread_.joinable()) thread_.join();
}

result<void> metrics_server::start(const std::string& listen) {
  const auto colon = listen.rfind(':');
  std::string host = listen.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  int port = 0;
  try {
    port = std::stoi(listen.substr(colon + 1));
  } catch (...) {
    return plain_error("listen on " + listen, "not ADDRESS:PORT");
  }
  server_ = std::make_unique<httplib::Server>();
  server_->Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    std::lock_guard lock(mu_);
    res.set_content(text_, "text/plain; version=0.0.4; charset=utf-8");
  });
  if (!server_->bind_to_port(host.c_str(), port)) {
    return plain_error("listen on " + listen, "cannot bind (address in use, or not an address of this host)");
  }
  thread_ = std::thread([this] { server_->listen_after_bind(); });
  return {};
}

void metrics_server::publish(std::string text) {
  std::lock_guard lock(mu_);
  text_ = std::move(text);
}

result<void> write_textfile(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  FILE* f = std::fopen(tmp.c_str(), "we");
  if (!f) return errno_error("write " + tmp);
  const bool ok = std::fwrite(text.data(), 1, text.size(), f) == text.size() && std::fflush(f) == 0;
  std::fclose(f);
  if (!ok) return errno_error("write " + tmp);
  if (std::rename(tmp.c_str(), path.c_str()) < 0) return errno_error("rename " + tmp);
  return {};
}

}  // namespace dupcache::daemon
