// SPDX-License-Identifier: GPL-2.0-only
#pragma once

// The event feed as the live loop sees it: decoded events, a descriptor to wait on, the drops
// that force a rescan, and the flush horizon that orders coalesced runs. trace::tracer is the
// real feed; the interface keeps libbpf out of live/ (which links only trace/event) and lets
// unprivileged tests drive the loop. Header-only on purpose: nothing here needs libbpf.

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string_view>
#include <vector>

#include "trace/event.hpp"
#include "util/result.hpp"

namespace dupcache::trace {

class feed {
 public:
  using event_fn = std::function<void(const decoded_event&)>;

  virtual ~feed() = default;
  // Waits up to timeout_ms (0: no wait) and hands every available event to fn; the number of
  // records consumed.
  virtual result<int> poll(int timeout_ms, const event_fn& fn) = 0;
  // Readable when poll() has work, for the caller's own poll() beside its wake-up descriptor.
  virtual int epoll_fd() const = 0;
  // Records lost since the feed opened (ring buffer full, ...): any increase means the index
  // can no longer be trusted.
  virtual result<std::uint64_t> total_drops() const = 0;
  // CLOCK_MONOTONIC ns before which every record has been delivered (0 before the first flush).
  virtual std::uint64_t flushed_before_ns() const = 0;
  // The page-cache hook path in use, for the mode line: "tp_btf", "raw_tp", ...
  virtual std::string_view hook_name() const = 0;
};

// What the live loop asks of a feed when it opens one.
struct feed_options {
  std::vector<dev_t> watch_devs;  // superblock devices; never empty when asked
  std::uint64_t ring_buffer_bytes = std::uint64_t{16} << 20;
  unsigned wakeup_fraction = 0;
};

using feed_opener = std::function<result<std::unique_ptr<feed>>(const feed_options&)>;

}  // namespace dupcache::trace
