// SPDX-License-Identifier: GPL-2.0-only
#pragma once

// The per-frame tables of /proc (kpageflags, kpagecgroup): one 64-bit entry per page frame,
// at offset pfn * 8. Asking for one entry per pread costs a system call per cached page (328,342
// of them before evicting 10 copies of 64 MiB); frames of a file read in one go lie close
// together, so the entries are read over spans of nearby frames instead, one pread per span.

#include <cstdint>
#include <functional>
#include <vector>

#include "util/result.hpp"

namespace dupcache {

// Reads `count` entries starting at frame `first` into out (one pread of count * 8 bytes).
using frame_table_read = std::function<result<void>(std::uint64_t first, std::uint64_t count, std::uint64_t* out)>;

struct frame_span_limits {
  std::uint64_t max_gap = 64;        // frames not asked for that a span may read across (512 bytes)
  std::uint64_t max_span = 1 << 16;  // entries per pread at most (512 KiB of buffer)
};

// The entry of each frame in pfns, in the order given (repeats allowed). reads, when given,
// receives the number of preads made.
result<std::vector<std::uint64_t>> read_frame_entries(const frame_table_read& read, const std::vector<std::uint64_t>& pfns,
                                                      std::uint64_t* reads = nullptr, frame_span_limits limits = {});

// A frame_table_read over an open /proc/kpage* file; `what` names it in errors.
frame_table_read frame_table_of(int fd, const char* what);

}  // namespace dupcache
