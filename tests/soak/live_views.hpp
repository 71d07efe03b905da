// SPDX-License-Identifier: GPL-2.0-only
#pragma once

// What the soak compares: the numbers of one report document (a fresh `dupcache report --json`,
// a `dupcache top --json` sample, or the daemon's sample), reduced to totals and per-file rows
// keyed by inode (filesystem, subvolume, inode number), so that a rename the live model has not
// seen shows up as a path difference, never as bytes.

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

namespace dupcache::soak {

struct file_row {
  std::string path;
  std::uint64_t cached = 0, shared = 0, wasted = 0, dirty = 0;
  bool operator==(const file_row&) const = default;
};

struct view {
  std::uint64_t cached = 0, wasted = 0, files_cached = 0;
  std::map<std::string, file_row> files;  // "fs/subvol/ino" -> numbers
  std::uint64_t iteration = 0, events = 0, lost_events = 0;
  // Every change made before this CLOCK_MONOTONIC time is in the numbers (live samples).
  std::uint64_t applied_before_ns = 0;
  // The live index's entries, rescans and compactions (the sample's "index").
  std::uint64_t index_entries = 0, rescans = 0, compactions = 0, late_records = 0, audit_repairs = 0;
  std::string error;  // set when the document could not be read
};

view view_of(const nlohmann::json& j);
// Same numbers and the same paths: the page cache did not change between two fresh scans.
bool same_state(const view& a, const view& b);

struct drift {
  std::uint64_t bytes = 0;       // sum of the absolute differences of every number compared
  std::uint64_t stale_paths = 0;  // rows whose inode matches and whose path does not
  std::vector<std::string> details;  // one line per difference (the first 20)
};
drift compare(const view& live, const view& fresh);

// A child process; killed and reaped when destroyed unless stopped first.
class child {
 public:
  // stdout goes to a pipe (read with out_fd()) when capture, else with stderr to log_path.
  child(const std::vector<std::string>& argv, bool capture, const std::string& log_path);
  ~child();
  child(const child&) = delete;
  child& operator=(const child&) = delete;
  pid_t pid() const { return pid_; }
  int out_fd() const { return out_; }
  // SIGTERM, then SIGKILL after timeout_s; the exit status (-1 if killed).
  int stop(double timeout_s);

 private:
  pid_t pid_ = -1;
  int out_ = -1;
};

// `dupcache top --json` read on a thread as it writes (a blocked writer would stall its
// consumer and overflow its ring buffer): the latest sample and how many came so far.
class top_reader {
 public:
  explicit top_reader(int fd);
  ~top_reader();
  std::uint64_t count() const { return count_.load(); }
  view latest() const;
  // Waits until count() >= n; false after timeout_s.
  bool wait_count(std::uint64_t n, double timeout_s) const;

 private:
  void run(int fd);
  mutable std::mutex mu_;
  view latest_;
  std::atomic<std::uint64_t> count_{0};
  std::thread thread_;
};

// The daemon's latest published sample over its control socket ({"sample": true}).
view ask_daemon(const std::string& socket_path);

struct proc_figures {
  std::uint64_t rss_kib = 0;
  std::uint64_t fds = 0;
  double cpu_s = 0;  // user + system since it started
};
proc_figures figures_of(pid_t pid);

}  // namespace dupcache::soak
