// SPDX-License-Identifier: GPL-2.0-only
#pragma once

// `top --content`: the content duplicates of the files the live model holds as cached, computed
// by report --content's own entry point (make_local_report() with content set, over those
// files' paths) on a thread of its own, at its own interval.
//
// Why a thread: hashing every cached page and confirming equal ones byte for byte takes seconds
// on a large host, and the sampler must keep its cadence (events are consumed while it waits;
// a late drain costs lost events). So the sampler only hands over the list of cached paths
// (offer(), cheap, under a mutex) and takes the latest finished figures (attach()); the pass
// itself never touches the controller, which stays the sampler thread's alone.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "report/report.hpp"
#include "scan/scanner.hpp"

namespace dupcache::live {

class content_job {
 public:
  explicit content_job(std::chrono::milliseconds interval);
  ~content_job();  // stops and joins the thread (a pass under way finishes first)
  content_job(const content_job&) = delete;
  content_job& operator=(const content_job&) = delete;

  // The cached files of the live state now; the next pass (at most one per interval, the first
  // at once) hashes these.
  void offer(const scan_result& state);
  // Puts the latest finished figures into m (a model built from `state`, whose copy ids the
  // figures are mapped onto by path); returns how the figures stand, for the header line.
  std::string attach(report_model& m, const scan_result& state);

 private:
  struct finished {
    content_model content;
    std::vector<std::string> paths;  // by the pass's own copy id
    std::chrono::steady_clock::time_point at;
    std::chrono::duration<double> took{};
    std::string error;
  };
  void run();

  std::chrono::milliseconds interval_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::string> wanted_;  // paths offered and not yet taken by a pass
  bool offered_ = false;
  bool stop_ = false;
  std::optional<finished> latest_;
  std::thread thread_;
};

}  // namespace dupcache::live
