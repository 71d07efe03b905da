// SPDX-License-Identifier: GPL-2.0-only
#pragma once

// The curses front end of `dupcache top`: draws top/view.hpp's tables for samples taken on a
// thread of its own, so a slow scan never freezes the keys.

#include <cstdint>

#include "live/sample.hpp"
#include "top/view.hpp"

namespace dupcache::top {

// The interactive view. A sampling thread takes samples from the source (a live loop of ours
// or the daemon's); this thread only draws and reads keys. Returns an exit status.
// `iterations` 0 = until q. `stop_requested` is polled between keys (SIGINT/SIGTERM).
int run_curses(live::sample_source& s, view_state state, std::uint64_t iterations, bool (*stop_requested)());

}  // namespace dupcache::top
