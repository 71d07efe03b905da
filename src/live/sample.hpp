// SPDX-License-Identifier: GPL-2.0-only
#pragma once

// One interval of the live view: the report model plus what only a live loop knows (rates over
// the measured interval, events, the mode). A sample_source produces them one per interval;
// live::sampler computes them here, daemon::remote_source asks the daemon for its own. The
// views (top/) and the daemon's control socket only read samples, so neither needs the other.

#include <cstdint>
#include <optional>
#include <string>

#include "report/report.hpp"
#include "util/result.hpp"

namespace dupcache::live {

struct sample {
  report_model model;
  std::uint64_t iteration = 0;
  double elapsed_s = 0;                // measured since the previous sample
  std::uint64_t page_cache_bytes = 0;  // /proc/meminfo "Cached:"
  // Rates in bytes per second over elapsed_s; zero in rescan mode where events are not seen.
  double insert_bps = 0;
  double duplicate_insert_bps = 0;
  double evict_bps = 0;
  std::uint64_t lost_events = 0;  // since start
  std::uint64_t events = 0;       // since start
  // Every page-cache change made before this CLOCK_MONOTONIC time (ns) is in the numbers
  // (controller::applied_before_ns; the scan's start in rescan mode); 0 while lost records
  // wait for their repair.
  std::uint64_t applied_before_ns = 0;
  // The live index's own size and upkeep: entries held (one per file seen since the last
  // rescan, gone or not), rescans (seed, repairs, compactions) and compactions since start.
  std::uint64_t index_entries = 0;
  std::uint64_t rescans = 0;
  std::uint64_t compactions = 0;
  std::uint64_t late_records = 0;   // live_counters::late_records
  std::uint64_t audit_repairs = 0;  // live_counters::audit_repairs
  bool live = false;
  std::string mode;  // "live (tp_btf)" or "rescan (no BPF: reason)"
  // With --content: how the content figures in model.content stand (their age, or why none).
  std::string content_status;
  // The daemon's answer to a view (top --from-daemon) holds only the rows it shows: how many
  // groups there are in all. Unset: model.groups is every group.
  std::optional<std::uint64_t> groups_total;
};

class sample_source {
 public:
  virtual ~sample_source() = default;
  // Ready to sample: the index seeded and the feed attached, or the daemon reached.
  virtual result<void> start() = 0;
  // Waits out the interval and returns the next sample.
  virtual result<sample> next() = 0;
  // Asks a blocked next() to return early; async-signal-safe (an eventfd write).
  virtual void wake() = 0;
  virtual const std::string& mode() const = 0;
};

}  // namespace dupcache::live
