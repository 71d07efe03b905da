// SPDX-License-Identifier: GPL-2.0-only
#pragma once

// The daemon's control socket, server end: a Unix stream socket (mode 0600) on which `dupcache
// report --from-daemon` asks for the daemon's live report instead of scanning, and `dupcache top
// --from-daemon` for its live samples. The requests and answers are daemon/protocol.hpp's.
// Bounded (see bounded_server): a request is at most control_max_request bytes and must arrive
// within 2 s of the connect; 8 connections at once, the newest pushing out the oldest still
// silent, so a client that connects and sends nothing holds up nobody.

#include <cstddef>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "daemon/server.hpp"
#include "report/report.hpp"
#include "live/sample.hpp"
#include "util/fd.hpp"
#include "util/result.hpp"

namespace dupcache::daemon {

inline constexpr std::size_t control_max_request = 64 * 1024;

class control_server {
 public:
  control_server() = default;
  ~control_server();
  result<void> start(const std::string& path);
  // The sample answers are rendered from; replaced after every interval. Taken, not copied:
  // a sample holds the whole report model, and a copy per interval was the daemon's largest
  // transient after the plans.
  void publish(live::sample&& s);

 private:
  // nullopt until the request line is complete; then the answer.
  std::optional<std::string> answer(std::string_view received);
  std::string path_;
  std::mutex mu_;
  std::shared_ptr<const live::sample> sample_;  // null until the first interval
  bounded_server server_;  // after what answer() reads: destroyed (joined) first
};


}  // namespace dupcache::daemon
