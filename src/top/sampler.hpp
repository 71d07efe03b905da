// SPDX-License-Identifier: GPL-2.0-only
#pragma once

// Produces one sample per interval for `dupcache top`: the live controller fed by the BPF
// tracer, or, where BPF cannot run, a fresh scan per interval (said in the sample's mode).
// Sampling never draws; the views only format samples.

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "live/controller.hpp"
#include "report/report.hpp"

namespace dupcache::trace {
class tracer;
}

namespace dupcache::top {

struct sample {
  report_model model;
  std::uint64_t iteration = 0;
  double elapsed_s = 0;           // measured since the previous sample
  std::uint64_t page_cache_bytes = 0;  // /proc/meminfo "Cached:"
  // Rates in bytes per second over elapsed_s; zero in rescan mode where events are not seen.
  double insert_bps = 0;
  double duplicate_insert_bps = 0;
  double evict_bps = 0;
  std::uint64_t lost_events = 0;  // since start
  std::uint64_t events = 0;       // since start
  bool live = false;
  std::string mode;  // "live (tp_btf)" or "rescan (no BPF: reason)"
};

struct sampler_options {
  scan_options scan;
  std::chrono::milliseconds interval{2000};
  std::uint64_t ring_buffer_bytes = std::uint64_t{16} << 20;
  bool use_bpf = true;
  // Per-container rows in every sample (the containers view); scan.attribute is set from it.
  bool containers = true;
  bool keep_placements = false;  // scan.keep_placements, for planners
  // Set: samples come from the daemon's control socket at this path, not from a scan of ours.
  std::string from_daemon;
  container_filter filter;  // --container / --cgroup
  std::string metadata_root = "/";
};

class sampler {
 public:
  explicit sampler(sampler_options opts);
  ~sampler();
  // Seeds the index and attaches the tracer (or decides on rescans, with the reason).
  result<void> start();
  // Waits out the interval (consuming events meanwhile) and returns the next sample.
  result<sample> next();
  // Asks a blocked next() to return early (from another thread or a signal handler).
  void wake();
  const std::string& mode() const { return mode_; }
  // The live index behind the samples (the daemon plans from it); null before start().
  const live::controller* controller() const { return controller_.get(); }

 private:
  sampler_options opts_;
  std::unique_ptr<live::controller> controller_;
  std::unique_ptr<trace::tracer> tracer_;
  std::string mode_;
  std::uint64_t iteration_ = 0;
  std::chrono::steady_clock::time_point last_;
  live::live_counters last_counters_{};
  int wake_fd_ = -1;
  std::unique_ptr<cgroup::host_accounting> accounting_;
  result<sample> remote_sample();
};


}  // namespace dupcache::top
