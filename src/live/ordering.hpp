// SPDX-License-Identifier: GPL-2.0-only
#pragma once

// The order rules for one inode's page-cache records. Insertions, removals and dirtying arrive
// as runs flushed later than they happened (dupcache_abi.h), so a record of one CPU can overtake
// a record of another: a removal the insertion of its page, an insertion the removal run
// before it. One CPU's records stay in order (the kernel flushes its run before anything else
// leaves the CPU) unless the record says otherwise (unordered).
// Contract: pure, no I/O and no clock. admit() decides from the record's times, pages and CPU,
// the inode's recent records and the window; it remembers the record only when it says apply.
// Times are CLOCK_MONOTONIC ns as the events carry them.

#include <cstdint>

#include "trace/event.hpp"

namespace dupcache::live {

struct order_window {
  // How late after the kernel acted an event's timestamp may be taken (the program runs
  // first). Two records of different CPUs whose times differ by less are unordered.
  std::uint64_t slack_ns = 100'000;
  // Every record made before this time has been applied (the tracer's flushed_before_ns() once
  // its ring buffer was drained): older records can be forgotten.
  std::uint64_t horizon_ns = 0;
};

// Recent records of one kind on one inode: latest time, page range [first, end), CPU (-1:
// several, or a record that may have overtaken its own CPU's run).
struct recent_range {
  std::uint64_t ns = 0;  // 0: none
  std::uint64_t first = 0;
  std::uint64_t end = 0;
  std::int64_t cpu = 0;
};

struct inode_order {
  // CLOCK_MONOTONIC ns just before the last re-resolution that took the cached count from
  // cachestat: records made before it are already in that count. 0 = none.
  std::uint64_t counted_ns = 0;
  // Just after that count returned (0: taken as counted_ns). A record begun between the two
  // may or may not be in the count, however long the call took (a preempted reader).
  std::uint64_t counted_until_ns = 0;
  recent_range removed;  // removals and dirtying
  recent_range added;    // insertions
};

enum class admission {
  apply,    // in order: apply it (it is now remembered)
  counted,  // made wholly before the count was taken: already reflected, skip it
  doubt,    // may be out of order: skip it and re-resolve the inode from cachestat
};

admission admit(inode_order& order, const trace::decoded_event& ev, const order_window& window);

}  // namespace dupcache::live
