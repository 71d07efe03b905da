// SPDX-License-Identifier: GPL-2.0-only
#include "live/ordering.hpp"

#include <algorithm>

namespace dupcache::live {
namespace {

void note(recent_range& r, const trace::decoded_event& ev, const order_window& w) {
  const std::uint64_t end = ev.index + ev.nr_pages;
  const std::int64_t cpu = ev.unordered ? -1 : static_cast<std::int64_t>(ev.cpu);
  if (r.ns == 0 || r.ns + w.slack_ns < w.horizon_ns) {
    // Nothing recent: every run still to come began after the horizon, later than this.
    r.first = ev.index;
    r.end = end;
    r.cpu = cpu;
  } else {
    r.first = std::min(r.first, ev.index);
    r.end = std::max(r.end, end);
    if (r.cpu != cpu) r.cpu = -1;
  }
  r.ns = std::max(r.ns, ev.end_timestamp_ns);
}

// Whether a record of another CPU, applied already, may have happened after this record began
// on the same pages: then it overtook this one.
bool overtaken(const recent_range& r, const trace::decoded_event& ev, const order_window& w) {
  if (r.ns == 0 || r.ns + w.slack_ns < std::max(w.horizon_ns, ev.timestamp_ns)) return false;
  if (!ev.unordered && r.cpu == static_cast<std::int64_t>(ev.cpu)) return false;
  return ev.index < r.end && r.first < ev.index + ev.nr_pages;
}

}  // namespace

admission admit(inode_order& order, const trace::decoded_event& ev, const order_window& window) {
  bool doubt = false;
  if (order.counted_ns != 0) {
    // Made wholly before the count was taken: already in it (and in the index rebuilt with it).
    // A removal's tracepoint fires just before the page leaves the cache (with interrupts off,
    // so within the slack): one stamped just before the count may still be in it.
    const std::uint64_t done = ev.end_timestamp_ns + (ev.kind == trace::event_kind::cache_add ? 0 : window.slack_ns);
    if (done < order.counted_ns) return admission::counted;
    doubt = ev.timestamp_ns <= std::max(order.counted_ns, order.counted_until_ns) + window.slack_ns;
  }
  if (!doubt) {
    // An insertion overtaken by the removal (or dirtying) of a page it inserted; a removal
    // overtaken by the insertion that put its page back.
    doubt = ev.kind == trace::event_kind::cache_add      ? overtaken(order.removed, ev, window)
            : ev.kind == trace::event_kind::cache_delete ? overtaken(order.added, ev, window)
                                                         : false;
  }
  if (doubt) return admission::doubt;
  note(ev.kind == trace::event_kind::cache_add ? order.added : order.removed, ev, window);
  return admission::apply;
}

}  // namespace dupcache::live
