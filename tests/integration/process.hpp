// SPDX-License-Identifier: GPL-2.0-only
#pragma once

// The processes the integration and live tests start, and the cached pages they hold still:
// one home for them, so that every test file runs a command, follows one in the background and
// pins its scenario the same way. No shell is involved anywhere: argv goes to execvp as given.
// Nothing here needs root; pinning needs RLIMIT_MEMLOCK room (root has it).

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace dupcache::testing {

struct command_result {
  int status = -1;  // exit status, or -1 when killed
  std::string out;
  std::string err;
};
// Runs argv without a shell; kills it after timeout_s.
command_result run(const std::vector<std::string>& argv, int timeout_s = 120);
// run(), throwing with the command and its stderr unless it exits 0.
void must(const std::vector<std::string>& argv);

// argv joined by spaces, for messages (not quoted: it is never given to a shell).
std::string join_argv(const std::vector<std::string>& argv);

// Polls pred every 100 ms until it holds or timeout_s passes; returns whether it held.
bool eventually(const std::function<bool()>& pred, double timeout_s);

// A command in the background whose output is read as it arrives. Killed (SIGKILL) and reaped
// when destroyed unless finish() reaped it.
class background {
 public:
  explicit background(std::vector<std::string> argv);
  ~background();
  background(const background&) = delete;
  background& operator=(const background&) = delete;

  // Reads what is there, waiting at most ms for something. False once both pipes closed.
  bool pump(int ms);
  // Reads everything already written, without waiting.
  void drain();
  // Pumps until pred() holds or the timeout passes; returns pred().
  bool wait_for(const std::function<bool()>& pred, double timeout_s);
  // Complete stdout lines so far.
  std::vector<std::string> out_lines() const;
  // Waits for the exit (reading output meanwhile); kills it after timeout_s. Exit status or -1.
  int finish(double timeout_s);
  const std::string& out() const { return out_; }
  const std::string& err() const { return err_; }
  std::string command() const { return join_argv(argv_); }

 private:
  std::vector<std::string> argv_;
  pid_t pid_ = -1;
  int fds_[2] = {-1, -1};
  bool reaped_ = false;
  std::string out_, err_;
};

// Keeps a file's cached pages in memory: a locked shared mapping puts them on the unevictable
// list, which reclaim (memory pressure, DAMON pageout as some hosts run it) leaves alone. Only
// the pages cached when it is taken are locked (mincore first, then mlock of each cached run), so
// it inserts nothing: locking a whole mapping would read the rest of a partly cached file in.
// mlock is called through syscall(2): AddressSanitizer's interceptor makes mlock() a no-op, which
// left the sanitizer tier's scenes unpinned.
class pin {
 public:
  explicit pin(const std::string& path);
  ~pin();
  pin(const pin&) = delete;
  pin& operator=(const pin&) = delete;

 private:
  int fd_ = -1;
  void* addr_ = nullptr;
  std::size_t len_ = 0;
};

// What a scenario set up: the pages of each file it expects cached, as the test itself sees them
// (mincore), pinned there (see pin). Should some go anyway, the expected numbers no longer apply:
// the run is repeated after re-reading the missing pages (only those, without readahead). Pages
// cached beyond the expected ones are the test's to judge, not a disturbance.
class scene {
 public:
  // Tracks the pages of a file cached now (all of it, or the part the scenario read), and pins them.
  void add(const std::string& path);
  // Tracks a file without pinning it (it is read later): all of its pages are expected.
  void track(const std::string& path);
  void hold(const std::string& path);
  // Unpins everything (before evicting).
  void release() { pins_.clear(); }
  bool intact() const;
  void restore() const;
  std::string describe() const;

 private:
  std::uint64_t cached_of(const std::string& path) const;
  std::map<std::string, std::vector<unsigned char>> pages_;  // 1: expected cached
  std::vector<std::unique_ptr<pin>> pins_;
};

// How often a run whose scene was disturbed meanwhile is repeated before the test fails.
constexpr int max_attempts = 3;

// Runs argv on an intact scene; repeats the run when the scene was disturbed meanwhile.
command_result run_on(const scene& sc, const std::vector<std::string>& argv, int timeout_s = 60);

}  // namespace dupcache::testing
