// SPDX-License-Identifier: GPL-2.0-only
#include "scan/charges.hpp"

#include <fcntl.h>
#include <linux/capability.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>

#include "scan/frame_table.hpp"

#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22
#endif

namespace dupcache {

namespace {

constexpr std::uint64_t window_pages = 16384;  // 64 MiB of 4 KiB pages mapped at a time
constexpr std::uint64_t pm_present = 1ULL << 63;
constexpr std::uint64_t pm_pfn_mask = (1ULL << 55) - 1;

class mapping {
 public:
  mapping(void* p, std::size_t len) : p_(p), len_(len) {}
  mapping(const mapping&) = delete;
  mapping& operator=(const mapping&) = delete;
  ~mapping() {
    if (p_ != MAP_FAILED) munmap(p_, len_);
  }
  bool ok() const { return p_ != MAP_FAILED; }
  unsigned char* data() const { return static_cast<unsigned char*>(p_); }

 private:
  void* p_;
  std::size_t len_;
};

result<void> pread_all(int fd, void* buf, std::size_t len, std::uint64_t off, const char* what) {
  auto* p = static_cast<char*>(buf);
  while (len > 0) {
    const ssize_t n = pread(fd, p, len, static_cast<off_t>(off));
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno_error(what);
    }
    if (n == 0) return plain_error(what, "short read");
    p += n;
    len -= static_cast<std::size_t>(n);
    off += static_cast<std::uint64_t>(n);
  }
  return {};
}

bool has_cap_sys_admin() {
  __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2]{};
  if (syscall(SYS_capget, &hdr, data) < 0) return false;
  return (data[CAP_SYS_ADMIN / 32].effective & (1U << (CAP_SYS_ADMIN % 32))) != 0;
}

}  // namespace

void append_charge(std::vector<charge_run>& runs, std::uint64_t first, std::uint64_t pages, std::uint64_t cgroup) {
  if (pages == 0) return;
  if (!runs.empty() && runs.back().cgroup == cgroup && runs.back().first + runs.back().pages == first) {
    runs.back().pages += pages;
    return;
  }
  runs.push_back({first, pages, cgroup});
}

void clear_charge(std::vector<charge_run>& runs, std::uint64_t first, std::uint64_t pages) {
  if (pages == 0 || runs.empty()) return;
  const std::uint64_t end = first + pages;
  // First run ending after `first`.
  auto it = std::partition_point(runs.begin(), runs.end(), [&](const charge_run& r) { return r.first + r.pages <= first; });
  std::vector<charge_run> keep;  // the parts of overlapping runs outside the range
  auto last = it;
  for (; last != runs.end() && last->first < end; ++last) {
    if (last->first < first) keep.push_back({last->first, first - last->first, last->cgroup});
    if (last->first + last->pages > end) keep.push_back({end, last->first + last->pages - end, last->cgroup});
  }
  it = runs.erase(it, last);
  runs.insert(it, keep.begin(), keep.end());
}

void set_charge(std::vector<charge_run>& runs, std::uint64_t first, std::uint64_t pages, std::uint64_t cgroup) {
  if (pages == 0) return;
  clear_charge(runs, first, pages);
  auto it = std::partition_point(runs.begin(), runs.end(), [&](const charge_run& r) { return r.first < first; });
  const auto at = static_cast<std::size_t>(it - runs.begin());
  runs.insert(it, {first, pages, cgroup});
  // Merge with the neighbours it continues.
  std::size_t i = at;
  if (i + 1 < runs.size() && runs[i + 1].cgroup == cgroup && runs[i + 1].first == first + pages) {
    runs[i].pages += runs[i + 1].pages;
    runs.erase(runs.begin() + static_cast<std::ptrdiff_t>(i + 1));
  }
  if (i > 0 && runs[i - 1].cgroup == cgroup && runs[i - 1].first + runs[i - 1].pages == first) {
    runs[i - 1].pages += runs[i].pages;
    runs.erase(runs.begin() + static_cast<std::ptrdiff_t>(i));
  }
}

result<charge_reader> charge_reader::open(std::uint64_t page_size) {
  // Since Linux 4.2 pagemap reports page frame 0 to callers without CAP_SYS_ADMIN: every page
  // would look unattributed with no reason given. Say why instead.
  if (!has_cap_sys_admin()) {
    return plain_error("read page charges",
                       "/proc/self/pagemap hides page frame numbers without CAP_SYS_ADMIN (run as root with it)");
  }
  unique_fd pm(::open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC));
  if (!pm) return errno_error("open /proc/self/pagemap");
  unique_fd kc(::open("/proc/kpagecgroup", O_RDONLY | O_CLOEXEC));
  if (!kc) {
    if (errno == ENOENT) return plain_error("open /proc/kpagecgroup", "the kernel has no memory cgroups (CONFIG_MEMCG)");
    return errno_error("open /proc/kpagecgroup");
  }
  return charge_reader(page_size, std::move(pm), std::move(kc));
}

result<std::vector<charge_run>> charge_reader::read(int fd, const std::vector<page_run>& cached) const {
  std::vector<charge_run> out;
  for (const auto& run : cached) {
    for (std::uint64_t done = 0; done < run.pages; done += window_pages) {
      if (auto r = read_window(fd, run.first + done, std::min(window_pages, run.pages - done), out); !r) return r.err();
    }
  }
  return out;
}

result<void> charge_reader::read_window(int fd, std::uint64_t first, std::uint64_t pages,
                                        std::vector<charge_run>& out) const {
  const std::size_t len = pages * ps_;
  mapping m(mmap(nullptr, len, PROT_READ, MAP_SHARED, fd, static_cast<off_t>(first * ps_)), len);
  if (!m.ok()) return errno_error("map file for its page charges");
  // No read-ahead on fault, and no accessed marks when the mapping goes (vma_has_recency()).
  if (madvise(m.data(), len, MADV_RANDOM) < 0) return errno_error("madvise MADV_RANDOM");
  std::vector<unsigned char> resident(pages);
  if (mincore(m.data(), len, resident.data()) < 0) return errno_error("mincore");

  std::vector<std::uint64_t> entries(pages);
  std::vector<bool> seen(pages);  // resident, and its pagemap entry was read
  for (std::uint64_t i = 0; i < pages;) {
    if (!(resident[i] & 1)) {
      ++i;
      continue;
    }
    std::uint64_t end = i;
    while (end < pages && (resident[end] & 1)) ++end;
    const std::size_t run_len = (end - i) * ps_;
    // EFAULT: a page of the run went away (truncated); its PTE stays empty and it is reported
    // as not attributed below.
    (void)madvise(m.data() + i * ps_, run_len, MADV_POPULATE_READ);
    const auto vaddr = reinterpret_cast<std::uintptr_t>(m.data() + i * ps_);
    if (auto r = pread_all(pagemap_.get(), &entries[i], (end - i) * sizeof(std::uint64_t),
                           vaddr / ps_ * sizeof(std::uint64_t), "read /proc/self/pagemap");
        !r) {
      return r;
    }
    for (std::uint64_t j = i; j < end; ++j) seen[j] = true;
    i = end;
  }
  // The charges of the whole window's frames, read over spans of nearby frames (a large folio's
  // frames are consecutive, and a file read in one go lies close together).
  std::vector<std::uint64_t> pfns;
  for (std::uint64_t j = 0; j < pages; ++j) {
    if (seen[j] && (entries[j] & pm_present) && (entries[j] & pm_pfn_mask) != 0) pfns.push_back(entries[j] & pm_pfn_mask);
  }
  auto cgroups = read_frame_entries(frame_table_of(kpagecgroup_.get(), "/proc/kpagecgroup"), pfns);
  if (!cgroups) return cgroups.err();
  std::size_t next = 0;
  for (std::uint64_t j = 0; j < pages; ++j) {
    if (!seen[j]) continue;
    const bool framed = (entries[j] & pm_present) && (entries[j] & pm_pfn_mask) != 0;
    append_charge(out, first + j, 1, framed ? (*cgroups)[next++] : 0);
  }
  return {};
}

}  // namespace dupcache
