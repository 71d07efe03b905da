// SPDX-License-Identifier: GPL-2.0-only
#include "scan/frame_table.hpp"

#include <unistd.h>

#include <algorithm>
#include <string>

namespace dupcache {

result<std::vector<std::uint64_t>> read_frame_entries(const frame_table_read& read, const std::vector<std::uint64_t>& pfns,
                                                      std::uint64_t* reads, frame_span_limits limits) {
  std::vector<std::uint64_t> out(pfns.size());
  if (reads) *reads = 0;
  if (pfns.empty()) return out;
  // Positions of pfns in frame order: spans are cut from the sorted frames, then every
  // position takes its entry from the span read.
  std::vector<std::uint32_t> order(pfns.size());
  for (std::uint32_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](std::uint32_t a, std::uint32_t b) { return pfns[a] < pfns[b]; });
  std::vector<std::uint64_t> buf;
  for (std::size_t i = 0; i < order.size();) {
    const std::uint64_t first = pfns[order[i]];
    std::size_t j = i + 1;
    std::uint64_t last = first;
    while (j < order.size()) {
      const std::uint64_t next = pfns[order[j]];
      if (next - last > limits.max_gap + 1 || next - first >= limits.max_span) break;
      last = next;
      ++j;
    }
    buf.resize(last - first + 1);
    if (auto r = read(first, buf.size(), buf.data()); !r) return r.err();
    if (reads) ++*reads;
    for (std::size_t k = i; k < j; ++k) out[order[k]] = buf[pfns[order[k]] - first];
    i = j;
  }
  return out;
}

frame_table_read frame_table_of(int fd, const char* what) {
  return [fd, what](std::uint64_t first, std::uint64_t count, std::uint64_t* out) -> result<void> {
    auto* p = reinterpret_cast<char*>(out);
    std::size_t len = count * sizeof(std::uint64_t);
    auto off = static_cast<off_t>(first * sizeof(std::uint64_t));
    while (len > 0) {
      const ssize_t n = pread(fd, p, len, off);
      if (n < 0) {
        if (errno == EINTR) continue;
        return errno_error(std::string("read ") + what);
      }
      if (n == 0) return plain_error(std::string("read ") + what, "short read");
      p += n;
      len -= static_cast<std::size_t>(n);
      off += n;
    }
    return {};
  };
}

}  // namespace dupcache
