// SPDX-License-Identifier: GPL-2.0-only
#pragma once

// The daemon's dedupe action ([dedupe] in dupcache.toml(5), off unless enabled): a dedupe pass
// (policy/dedupe_pass.hpp) over the configured paths once per interval, in a thread of its own
// so the live loop, the other actions and the watchdog go on meanwhile. It is not started by
// the triggers: sharing extents is what lets the evictions act on separately written copies at
// all. What a finished pass did is journaled and counted from the loop's thread (tick()).

#include <atomic>
#include <chrono>
#include <future>

#include "daemon/journal.hpp"
#include "daemon/metrics.hpp"
#include "policy/config.hpp"
#include "policy/dedupe_pass.hpp"

namespace dupcache::daemon {

class dedupe_job {
 public:
  dedupe_job(journal& j, action_counts& counts) : journal_(j), counts_(counts) {}
  ~dedupe_job() { finish(); }
  dedupe_job(const dedupe_job&) = delete;
  dedupe_job& operator=(const dedupe_job&) = delete;

  // Journals a pass that has ended; starts the next one when enabled and its time has come (the
  // first at once). dry_run: the daemon's, which holds for this action too.
  void tick(const policy::config& cfg, std::chrono::steady_clock::time_point now);
  // Asks a running pass to stop, waits for it and journals what it did.
  void finish();

 private:
  void record(const result<policy::dedupe_report>& r);

  journal& journal_;
  action_counts& counts_;
  std::future<result<policy::dedupe_report>> running_;
  std::atomic<bool> stop_{false};
  std::chrono::steady_clock::time_point next_{};
  bool started_ = false;
};

}  // namespace dupcache::daemon
