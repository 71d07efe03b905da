// SPDX-License-Identifier: GPL-2.0-only
#include "cli/signals.hpp"

#include <signal.h>

namespace dupcache {
namespace {
std::atomic<bool> stop_flag{false};
void (*callback)() = nullptr;

void handler(int) {
  stop_flag = true;
  if (callback) callback();
}

void on(int sig, void (*h)(int)) {
  struct sigaction sa {};
  sa.sa_handler = h;
  sigemptyset(&sa.sa_mask);
  sigaction(sig, &sa, nullptr);
}
}  // namespace

void install_stop_handlers(void (*on_signal)()) {
  callback = on_signal;
  on(SIGINT, handler);
  on(SIGTERM, handler);
  signal(SIGPIPE, SIG_IGN);
}

bool stop_requested() { return stop_flag; }

namespace {
std::atomic<bool> reload_flag{false};
void (*reload_callback)() = nullptr;
void reload_handler(int) {
  reload_flag = true;
  if (reload_callback) reload_callback();
}
}  // namespace

void install_reload_handler(void (*on_signal)()) {
  reload_callback = on_signal;
  on(SIGHUP, reload_handler);
}

bool reload_requested() { return reload_flag.exchange(false); }

}  // namespace dupcache
