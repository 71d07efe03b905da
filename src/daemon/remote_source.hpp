// SPDX-License-Identifier: GPL-2.0-only
#pragma once

// Samples from the running daemon's control socket (`top --from-daemon`): the same
// live::sample_source the views take from a live loop of ours, so top needs nothing of the
// daemon but this client. The interval is ours; the daemon answers with its latest sample.

#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>

#include "daemon/protocol.hpp"
#include "live/sample.hpp"
#include "report/report.hpp"
#include "live/view_table.hpp"
#include "util/fd.hpp"

namespace dupcache::daemon {

class remote_source final : public live::sample_source {
 public:
  // rows: how many rows of each table to ask for (0: all of them). Without a view, the
  // daemon's first rows in report order (top --json --top N); with one (set_view), the first
  // rows that view shows, sorted and filtered by the daemon as the view does.
  remote_source(std::string socket_path, std::chrono::milliseconds interval, container_filter filter,
                std::size_t rows = 0);
  // The view the next samples are for (the screen calls it on every change; any thread).
  void set_view(const live::view_state& st);
  // Asks once, so an absent daemon is said before the first interval.
  result<void> start() override;
  result<live::sample> next() override;
  void wake() override;
  const std::string& mode() const override { return mode_; }

 private:
  std::string socket_path_;
  std::chrono::milliseconds interval_;
  container_filter filter_;
  std::size_t rows_ = 0;
  sample_request request();
  std::mutex view_mu_;
  std::optional<live::view_state> view_;
  std::string mode_;
  std::uint64_t iteration_ = 0;
  std::chrono::steady_clock::time_point last_;
  unique_fd wake_fd_;
};

}  // namespace dupcache::daemon
