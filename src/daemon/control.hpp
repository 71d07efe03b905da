// SPDX-License-Identifier: GPL-2.0-only
#pragma once

// The daemon's control socket: a Unix stream socket (mode 0600) on which `dupcache report
// --from-daemon` asks for the daemon's live report instead of scanning. One request per
// connection: a JSON object on one line, {"views": ["file", ...], "json": bool, "top": N,
// "bytes": bool, "containers": [...], "cgroups": [...]}; the answer is the report, as the
// report command would print it, then the connection closes.

#include <atomic>
#include <mutex>
#include <string>
#include <thread>

#include "report/report.hpp"
#include "util/fd.hpp"
#include "util/result.hpp"

namespace dupcache::daemon {

class control_server {
 public:
  control_server() = default;
  ~control_server();
  result<void> start(const std::string& path);
  // The model answers are rendered from; replaced after every interval.
  void publish(const report_model& m);

 private:
  void serve();
  void answer(int fd);
  std::string path_;
  unique_fd listen_;
  unique_fd wake_;
  std::thread thread_;
  std::atomic<bool> done_{false};
  std::mutex mu_;
  report_model model_;
  bool have_model_ = false;
};

// The client side: sends the request and returns the answer.
result<std::string> ask_daemon(const std::string& path, const std::string& request);

}  // namespace dupcache::daemon
