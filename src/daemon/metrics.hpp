// SPDX-License-Identifier: GPL-2.0-only
#pragma once

// Prometheus text exposition (format 0.0.4) of the daemon's state, and the HTTP endpoint that
// serves it. Names carry base units; counters end in _total.

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/server.hpp"
#include "report/report.hpp"
#include "util/result.hpp"

namespace dupcache::daemon {

struct action_counts {
  std::map<std::pair<std::string, std::string>, std::uint64_t> actions;  // (action, result) -> n
  std::uint64_t freed_bytes = 0;
  std::uint64_t planned_bytes = 0;
  std::uint64_t refaults = 0;  // evicted copies that came straight back
};

struct metrics_input {
  const report_model* model = nullptr;
  const block_index* index = nullptr;
  std::uint64_t events = 0;
  std::uint64_t lost_events = 0;
  const action_counts* actions = nullptr;
  bool triggered = false;
  bool dry_run = false;
  bool live = false;
};

std::string render_metrics(const metrics_input& in);

// The endpoint's HTTP, apart from sockets: a GET-only HTTP/1.x responder that never stores a
// header. Given the bytes received so far on a connection: nullopt while the request head is
// incomplete, else the whole reply (BODY at /metrics; 400, 404, 405 or 431 otherwise), always
// with "Connection: close". A head of more than http_max_head_lines lines is refused (431);
// the byte cap (http_max_head_bytes) is the server's, which then sends http_too_large().
inline constexpr std::size_t http_max_head_bytes = 8192;
inline constexpr std::size_t http_max_head_lines = 100;
std::optional<std::string> http_reply(std::string_view received, const std::string& body);
std::string http_too_large();

// Serves the latest rendered text at /metrics on ADDRESS:PORT, within bounded_server's limits:
// 16 connections, an 8 KiB request head received within 5 s, the reply sent within 10 s.
// (cpp-httplib, used before, keeps every header line and has no cap on their number: one
// connection streaming headers grew the daemon without bound.)
class metrics_server {
 public:
  metrics_server();
  ~metrics_server();
  result<void> start(const std::string& listen);
  void publish(std::string text);

 private:
  std::mutex mu_;
  std::string text_;
  bounded_server server_;  // last: stopped (joined) before the text it reads is destroyed
};

// Writes the text for node_exporter's textfile collector: a temporary file renamed over the
// target, so the collector never reads half a file. The temporary file is created afresh
// (O_EXCL, O_NOFOLLOW, an unpredictable name) in the target's directory: an entry planted
// there by anyone who can write to it is never followed or written through.
result<void> write_textfile(const std::string& path, const std::string& text);

}  // namespace dupcache::daemon
