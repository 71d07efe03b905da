// SPDX-License-Identifier: GPL-2.0-only
#pragma once

// Prometheus text exposition (format 0.0.4) of the daemon's state, and the loopback HTTP
// endpoint that serves it. Names carry base units; counters end in _total.

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "report/report.hpp"
#include "util/result.hpp"

namespace httplib {
class Server;
}

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

// Serves the latest rendered text at /metrics on ADDRESS:PORT.
class metrics_server {
 public:
  metrics_server();
  ~metrics_server();
  result<void> start(const std::string& listen);
  void publish(std::string text);

 private:
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  std::mutex mu_;
  std::string text_;
};

// Writes the text for node_exporter's textfile collector: a temporary file renamed over the
// target, so the collector never reads half a file.
result<void> write_textfile(const std::string& path, const std::string& text);

}  // namespace dupcache::daemon
