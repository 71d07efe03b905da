// SPDX-License-Identifier: GPL-2.0-only
#pragma once

#include <atomic>
#include <functional>

namespace dupcache {

// SIGINT and SIGTERM set a flag and run `on_signal` (which must be async-signal-safe, e.g. an
// eventfd write), so long-running commands stop cleanly and flush their output.
void install_stop_handlers(void (*on_signal)());
bool stop_requested();
// SIGHUP sets a flag (taken, i.e. read and cleared, by reload_requested()) and runs on_signal.
void install_reload_handler(void (*on_signal)());
bool reload_requested();

}  // namespace dupcache
