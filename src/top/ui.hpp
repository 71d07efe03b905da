// SPDX-License-Identifier: GPL-2.0-only
#pragma once

#include <cstdint>

#include "top/sampler.hpp"
#include "top/view.hpp"

namespace dupcache::top {

// The interactive view. A sampling thread produces samples; this thread only draws and reads
// keys. Returns an exit status. `iterations` 0 = until q.
// `stop_requested` is polled between keys (SIGINT/SIGTERM).
int run_curses(sampler& s, view_state state, std::uint64_t iterations, bool (*stop_requested)());

}  // namespace dupcache::top
