// SPDX-License-Identifier: GPL-2.0-only
#pragma once

// The daemon's control socket: a Unix stream socket (mode 0600) on which `dupcache report
// --from-daemon` asks for the daemon's live report instead of scanning, and `dupcache top
// --from-daemon` for its live samples. One request per connection: a JSON object on one line,
//   {"views": ["file", ...], "json": bool, "top": N, "bytes": bool, "containers": [...],
//    "cgroups": [...]}                      -> the report, as the report command prints it
//   {"sample": true, "top": N, "containers": [...], "cgroups": [...]}
//                                           -> the sample, as `top --json` prints it
// then the connection closes. An answer starting "error: " says why there is none.

#include <atomic>
#include <mutex>
#include <string>
#include <thread>

#include "report/report.hpp"
#include "top/sampler.hpp"
#include "util/fd.hpp"
#include "util/result.hpp"

namespace dupcache::daemon {

class control_server {
 public:
  control_server() = default;
  ~control_server();
  result<void> start(const std::string& path);
  // The sample answers are rendered from; replaced after every interval.
  void publish(const top::sample& s);

 private:
  void serve();
  void answer(int fd);
  std::string path_;
  unique_fd listen_;
  unique_fd wake_;
  std::thread thread_;
  std::atomic<bool> done_{false};
  std::mutex mu_;
  top::sample sample_;
  bool have_sample_ = false;
};


}  // namespace dupcache::daemon
