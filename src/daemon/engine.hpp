// SPDX-License-Identifier: GPL-2.0-only
#pragma once

// The policy daemon's engine (dupcache-daemon(8)): the live loop, the triggers, the scope, the
// merge, evict and pageout actions within the rate limit, cooldowns and refault backoff, the
// journal, metrics and control socket, and systemd's READY/STATUS/WATCHDOG. Built from the
// configuration alone (plus what the command line overrides), so the command only loads the
// file and runs it. Logs through util/log; the caller picks the journald style.

#include <memory>
#include <string>

#include "policy/config.hpp"

namespace dupcache::daemon {

struct overrides {
  bool dry_run = false;     // --dry-run: holds across reloads, whatever the file says
  std::string config_path;  // re-read on SIGHUP
};

class engine {
 public:
  engine(policy::config cfg, overrides o);
  ~engine();
  // Until stop_requested() holds after a wake(): true, or false after a failure it has logged.
  // reload_requested() is taken once per interval; when it holds the configuration is re-read
  // (an invalid one is refused and the old one kept).
  bool run(bool (*stop_requested)(), bool (*reload_requested)());
  // Ends the current interval early; async-signal-safe (for SIGTERM/SIGHUP handlers).
  void wake();

 private:
  class loop;
  std::unique_ptr<loop> loop_;
};

}  // namespace dupcache::daemon
