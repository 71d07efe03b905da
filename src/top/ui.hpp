// SPDX-License-Identifier: GPL-2.0-only
#pragma once

// The front ends of `dupcache top` over any live::sample_source: the curses view, which draws
// top/view.hpp's tables for samples taken on a thread of its own so a slow scan never freezes
// the keys, and the batch form (text or JSON lines on standard output, for logs and pipes).

#include <cstddef>
#include <cstdint>
#include <functional>

#include "live/sample.hpp"
#include "top/view.hpp"

namespace dupcache::top {

// The interactive view. A sampling thread takes samples from the source (a live loop of ours
// or the daemon's); this thread only draws and reads keys. Returns an exit status.
// `iterations` 0 = until q. `stop_requested` is polled between keys (SIGINT/SIGTERM).
// on_view, when given, is told each change of view, sort, direction or filter (before the
// sampler is woken for a new sample): `top --from-daemon` asks the daemon for that view's rows.
int run_curses(live::sample_source& s, view_state state, std::uint64_t iterations, bool (*stop_requested)(),
               const std::function<void(const view_state&)>& on_view = {});

struct batch_options {
  std::uint64_t iterations = 0;  // 0: until stop_requested()
  bool json = false;             // live::sample_json per line instead of batch_text
  std::size_t rows = 20;         // rows per interval; 0 in JSON: every row
  int width = 80;                // text columns
};
// One sample per interval on standard output until the iterations are done or a stop is
// requested. Returns an exit status: 1 when sampling or writing fails (said on stderr).
int run_batch(live::sample_source& s, const view_state& state, const batch_options& o, bool (*stop_requested)());

}  // namespace dupcache::top
