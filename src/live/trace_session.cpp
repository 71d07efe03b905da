// SPDX-License-Identifier: GPL-2.0-only
#include "live/trace_session.hpp"

#include <chrono>

#include "scan/superblocks.hpp"

namespace dupcache::live {

trace_outcome run_trace(const trace_request& request, const trace_callbacks& cb) {
  trace_outcome out;
  trace::tracer_options to;
  to.ring_buffer_bytes = request.ring_buffer_bytes;
  to.sharing_events = request.sharing_events;
  to.fiemap_events = request.sharing_events;  // shown by `dupcache trace`
  to.wakeup_fraction = 8;  // batched wakeups; the loop polls every 100 ms
  to.coalesce = request.coalesce;
  if (!request.all) {
    scan_options so;
    so.paths = request.paths;
    auto devs = superblock_devs(so);
    if (!devs) {
      out.failure = "trace: " + devs.err().message();
      return out;
    }
    if (devs->empty()) {
      out.failure = std::string("trace: no filesystem to watch (") +
                    (request.paths.empty() ? "no mounted filesystem can share extents"
                                           : "the PATHs could not be resolved") +
                    "); name a PATH or use --all";
      return out;
    }
    to.watch_devs = *devs;
  }
  auto t = trace::tracer::open(to);
  if (!t) {
    out.failure = t.err().message();
    return out;
  }
  if (cb.started) cb.started(**t);
  const auto start = std::chrono::steady_clock::now();
  std::uint64_t delivered = 0;
  bool done = false;
  while (!done && !(cb.stop_requested && cb.stop_requested())) {
    auto r = (*t)->poll(100, [&](const trace::decoded_event& e) {
      if (done) return;
      cb.on_event(e);
      if (request.count && ++delivered >= request.count) done = true;
    });
    if (!r) {
      out.failure = r.err().message();
      return out;
    }
    if (cb.after_poll && !cb.after_poll()) done = true;  // the reader went away (| head): as if by count
    if (request.duration_s > 0 &&
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() >= request.duration_s) {
      done = true;
    }
  }
  if (auto c = (*t)->counters()) out.counters = *c;
  return out;
}

}  // namespace dupcache::live
