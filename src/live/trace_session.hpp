// SPDX-License-Identifier: GPL-2.0-only
#pragma once

// The `dupcache trace` session: choose the filesystems to watch, open the tracer, hand every
// decoded event to the caller until a count, a duration or a stop request ends it, then read
// the tracer's counters. Rendering is the caller's (output/trace.hpp).
// Contract: run_trace() returns failure empty when the session ran (however it ended), else
// the one line to show after "dupcache: ". on_event is not called again once the count is
// reached; after_poll runs after each batch and returns false to end the session (its reader
// went away). Needs what the tracer
// needs (CAP_BPF + CAP_PERFMON, or root). Built into dupcache_live_trace, not dupcache_live,
// which stays free of libbpf.

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "trace/tracer.hpp"

namespace dupcache::live {

struct trace_request {
  std::vector<std::string> paths;  // empty: every filesystem that can share extents
  bool all = false;                // every filesystem, no in-kernel device filter
  std::uint64_t count = 0;         // 0: no limit
  double duration_s = 0;           // 0: no limit
  std::uint64_t ring_buffer_bytes = std::uint64_t{16} << 20;
  bool sharing_events = true;
  bool coalesce = true;
};

struct trace_outcome {
  std::string failure;
  std::optional<trace::event_counters> counters;  // when the session ran and they could be read
};

struct trace_callbacks {
  std::function<void(const trace::tracer& t)> started;
  std::function<void(const trace::decoded_event& ev)> on_event;
  std::function<bool()> after_poll;
  std::function<bool()> stop_requested;
};

trace_outcome run_trace(const trace_request& request, const trace_callbacks& callbacks);

}  // namespace dupcache::live
