// SPDX-License-Identifier: GPL-2.0-only
#pragma once

// The live loop: one sample per interval from the live controller kept current by an event
// feed, or, where no feed can be opened, from a fresh scan per interval (said in the sample's
// mode). The feed is opened through an injected opener, so live/ never links libbpf and the
// loop runs in tests on a feed of their own. Sampling never draws.

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "live/content_job.hpp"
#include "live/controller.hpp"
#include "live/sample.hpp"
#include "trace/feed.hpp"
#include "util/fd.hpp"

namespace dupcache::cgroup {
class host_accounting;
}

namespace dupcache::live {

struct sampler_options {
  scan_options scan;
  std::chrono::milliseconds interval{2000};
  std::uint64_t ring_buffer_bytes = std::uint64_t{16} << 20;
  // Unset: no feed, rescans ("disabled by --no-bpf" in the mode).
  trace::feed_opener open_feed;
  // Per-container rows in every sample (the containers view); scan.attribute is set from it.
  bool containers = true;
  bool keep_placements = false;  // scan.keep_placements, for planners
  container_filter filter;       // --container / --cgroup
  std::string metadata_root = "/";
  // top --content: content duplicates at most this often, on a thread of their own (content_job).
  std::optional<std::chrono::milliseconds> content_interval;
};

class sampler final : public sample_source {
 public:
  explicit sampler(sampler_options opts);
  ~sampler() override;
  // Seeds the index and attaches the feed (or decides on rescans, with the reason).
  result<void> start() override;
  // Waits out the interval (consuming events meanwhile) and returns the next sample.
  result<sample> next() override;
  void wake() override;
  const std::string& mode() const override { return mode_; }
  // The live index behind the samples (the daemon plans from it); null before start().
  const controller* live_controller() const { return controller_.get(); }
  // controller::recheck(), for the files the daemon has just acted on; no-op without a feed
  // (every sample is a fresh scan then).
  void recheck(const std::vector<copy_id>& copies) {
    if (feed_ && controller_) controller_->recheck(copies);
  }

 private:
  result<void> consume_until(std::chrono::steady_clock::time_point deadline);

  sampler_options opts_;
  std::unique_ptr<controller> controller_;
  std::unique_ptr<trace::feed> feed_;
  std::string mode_;
  std::uint64_t iteration_ = 0;
  std::chrono::steady_clock::time_point last_;
  live_counters last_counters_{};
  rank_memory ranks_;  // the last sample's file order: the next one sorts from it
  unique_fd wake_fd_;
  std::unique_ptr<cgroup::host_accounting> accounting_;
  std::unique_ptr<content_job> content_;
};

}  // namespace dupcache::live
