// SPDX-License-Identifier: GPL-2.0-only
#include "scan/residency.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <limits>
#include <memory>

#include "scan/frame_table.hpp"
#include "util/fd.hpp"

namespace dupcache {
namespace {

// Debian 12's UAPI headers predate cachestat (Linux 6.5); the ABI is stable, so spell it out.
#ifndef __NR_cachestat
constexpr long nr_cachestat = 451;  // the same number on every architecture
#else
constexpr long nr_cachestat = __NR_cachestat;
#endif

struct cachestat_range_arg {
  std::uint64_t off;
  std::uint64_t len;
};
struct cachestat_out {
  std::uint64_t nr_cache;
  std::uint64_t nr_dirty;
  std::uint64_t nr_writeback;
  std::uint64_t nr_evicted;
  std::uint64_t nr_recently_evicted;
};

void append_run(std::vector<page_run>& runs, std::uint64_t first, std::uint64_t pages) {
  if (!runs.empty() && runs.back().first + runs.back().pages == first) runs.back().pages += pages;
  else runs.push_back({first, pages});
}

// clean_only: a run must also be free of dirty and writeback pages.
result<void> bisect(const range_query& query, std::uint64_t first, std::uint64_t pages,
                    std::vector<page_run>& runs, bool clean_only) {
  if (pages == 0) return {};
  auto c = query(first, pages);
  if (!c) return c.err();
  if (c->cached == 0) return {};
  if (c->cached >= pages && (!clean_only || (c->dirty == 0 && c->writeback == 0))) {
    append_run(runs, first, pages);
    return {};
  }
  if (pages == 1) return {};  // cached but dirty or under writeback
  const std::uint64_t half = pages / 2;
  if (auto r = bisect(query, first, half, runs, clean_only); !r) return r;
  return bisect(query, first + half, pages - half, runs, clean_only);
}

}  // namespace

result<page_counts> cachestat_range(int fd, std::uint64_t offset, std::uint64_t length) {
  cachestat_range_arg range{offset, length};
  cachestat_out cs{};
  if (syscall(nr_cachestat, fd, &range, &cs, 0) < 0) return errno_error("read residency (cachestat)");
  return page_counts{cs.nr_cache, cs.nr_dirty, cs.nr_writeback};
}

result<std::vector<page_run>> clean_cached_runs(const range_query& query, std::uint64_t first,
                                                std::uint64_t pages) {
  std::vector<page_run> runs;
  if (auto r = bisect(query, first, pages, runs, true); !r) return r.err();
  return runs;
}

result<page_counts> cachestat_reader::totals(int fd, std::uint64_t) {
  return cachestat_range(fd, 0, 0);  // length 0: to the end of the file
}

result<std::vector<page_run>> cachestat_reader::clean_runs(int fd, std::uint64_t first,
                                                           std::uint64_t pages) {
  const std::uint64_t ps = page_size_;
  return clean_cached_runs(
      [fd, ps](std::uint64_t f, std::uint64_t n) { return cachestat_range(fd, f * ps, n * ps); },
      first, pages);
}

result<std::vector<page_run>> cachestat_reader::cached_runs(int fd, std::uint64_t file_size) {
  const std::uint64_t ps = page_size_;
  std::vector<page_run> runs;
  auto query = [fd, ps](std::uint64_t f, std::uint64_t n) { return cachestat_range(fd, f * ps, n * ps); };
  if (auto r = bisect(query, 0, (file_size + ps - 1) / ps, runs, false); !r) return r.err();
  return runs;
}

result<std::vector<page_run>> data_runs(int fd, std::uint64_t size, std::uint64_t page_size,
                                        std::uint64_t join_pages, std::uint64_t* data_pages) {
  std::vector<page_run> runs;
  if (data_pages) *data_pages = 0;
  const std::uint64_t limit = std::min<std::uint64_t>(size, std::numeric_limits<off_t>::max());
  for (std::uint64_t off = 0; off < limit;) {
    const off_t data = lseek(fd, static_cast<off_t>(off), SEEK_DATA);
    if (data < 0) {
      if (errno == ENXIO) break;  // no data at or after off
      return errno_error("find the data ranges of a file (lseek SEEK_DATA)");
    }
    off_t hole = lseek(fd, data, SEEK_HOLE);
    if (hole < 0) {
      if (errno != ENXIO) return errno_error("find the data ranges of a file (lseek SEEK_HOLE)");
      hole = static_cast<off_t>(limit);  // truncated meanwhile: what is left counts as data
    }
    const std::uint64_t start = static_cast<std::uint64_t>(data);
    if (start >= limit) break;
    const std::uint64_t end = std::min(limit, std::max(static_cast<std::uint64_t>(hole), start + 1));
    const std::uint64_t first = start / page_size, last = (end + page_size - 1) / page_size;
    if (data_pages) *data_pages += last - first;
    if (!runs.empty() && first <= runs.back().first + runs.back().pages + join_pages) {
      runs.back().pages = std::max(runs.back().pages, last - runs.back().first);
    } else {
      runs.push_back({first, last - first});
    }
    off = end;
  }
  return runs;
}

result<void> mincore_reader::for_each_window(int fd, std::uint64_t first, std::uint64_t pages, const window_fn& fn) {
  // 64 Ki pages (256 MiB of address space, 64 KiB of vector) per mapping.
  constexpr std::uint64_t window = 64 * 1024;
  std::vector<unsigned char> vec(std::min(window, std::max<std::uint64_t>(pages, 1)));
  for (std::uint64_t done = 0; done < pages;) {
    const std::uint64_t n = std::min(window, pages - done);
    const std::uint64_t len = n * page_size_;
    void* addr = mmap(nullptr, len, PROT_READ, MAP_SHARED, fd,
                      static_cast<off_t>((first + done) * page_size_));
    if (addr == MAP_FAILED) return errno_error("map file to read residency (mmap)");
    const int rc = mincore(addr, len, vec.data());
    const int saved = errno;
    munmap(addr, len);
    if (rc < 0) return errno_error("read residency (mincore)", saved);
    fn(first + done, vec.data(), n);
    done += n;
  }
  return {};
}

result<std::uint64_t> mincore_reader::for_each_readable_window(int fd, std::uint64_t file_size, const window_fn& fn) {
  const std::uint64_t pages = (file_size + page_size_ - 1) / page_size_;
  // Holes of up to 32 pages cost less inside a window than a mapping of their own does; that
  // also keeps the pages read within 33 times the data.
  std::uint64_t data_pages = 0;
  auto data = data_runs(fd, file_size, page_size_, 32, &data_pages);
  if (!data) return data.err();
  std::uint64_t read_pages = 0;
  for (const auto& d : *data) read_pages += d.pages;
  const std::uint64_t holes = pages - std::min(pages, data_pages);
  if (holes <= hole_budget(data_pages)) {
    // Every page is read, so the file is counted exactly.
    if (auto r = for_each_window(fd, 0, pages, fn); !r) return r.err();
    return std::uint64_t{0};
  }
  for (const auto& d : *data) {
    if (auto r = for_each_window(fd, d.first, d.pages, fn); !r) return r.err();
  }
  return pages - std::min(pages, read_pages);
}

result<page_counts> mincore_reader::totals(int fd, std::uint64_t file_size) {
  page_counts c;
  auto unread = for_each_readable_window(fd, file_size, [&c](std::uint64_t, const unsigned char* v, std::uint64_t n) {
    for (std::uint64_t i = 0; i < n; ++i) c.cached += v[i] & 1;
  });
  if (!unread) return unread.err();
  c.unread = *unread;
  return c;
}

result<std::vector<page_run>> mincore_reader::cached_runs(int fd, std::uint64_t file_size) {
  std::vector<page_run> runs;
  auto unread = for_each_readable_window(fd, file_size, [&runs](std::uint64_t base, const unsigned char* v, std::uint64_t n) {
    for (std::uint64_t i = 0; i < n; ++i) {
      if (v[i] & 1) append_run(runs, base + i, 1);
    }
  });
  if (!unread) return unread.err();
  return runs;
}

result<std::vector<page_run>> mincore_reader::clean_runs(int fd, std::uint64_t first,
                                                         std::uint64_t pages) {
  std::vector<page_run> runs;
  auto r = for_each_window(fd, first, pages, [&runs](std::uint64_t base, const unsigned char* v, std::uint64_t n) {
    for (std::uint64_t i = 0; i < n; ++i) {
      if (v[i] & 1) append_run(runs, base + i, 1);
    }
  });
  if (!r) return r.err();
  return runs;
}

result<std::unique_ptr<residency_reader>> make_residency_reader(residency_mode mode,
                                                                std::uint64_t page_size) {
  if (mode == residency_mode::mincore) return std::unique_ptr<residency_reader>(new mincore_reader(page_size));
  unique_fd probe(memfd_create("dupcache-probe", MFD_CLOEXEC));
  if (!probe) return errno_error("probe cachestat (memfd_create)");
  auto c = cachestat_range(probe.get(), 0, 0);
  if (c) return std::unique_ptr<residency_reader>(new cachestat_reader(page_size));
  if (mode == residency_mode::cachestat) return c.err();
  // ENOSYS before Linux 6.5; EPERM where a seccomp filter refuses it.
  return std::unique_ptr<residency_reader>(new mincore_reader(page_size));
}

namespace {

constexpr std::uint64_t kpf_dirty = 1ULL << 4, kpf_writeback = 1ULL << 8;
constexpr std::uint64_t pagemap_present = 1ULL << 63, pagemap_pfn = (1ULL << 55) - 1;

bool pread_whole(int fd, void* buf, std::size_t len, std::uint64_t off) {
  return pread(fd, buf, len, static_cast<off_t>(off)) == static_cast<ssize_t>(len);
}

result<page_counts> page_flags_range(int fd, std::uint64_t offset, std::uint64_t length) {
  const std::uint64_t ps = static_cast<std::uint64_t>(sysconf(_SC_PAGESIZE));
  const std::uint64_t first = offset / ps, last = (offset + length + ps - 1) / ps;
  page_counts out;
  if (last <= first) return out;
  static const int pagemap = ::open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
  static const int kpageflags = ::open("/proc/kpageflags", O_RDONLY | O_CLOEXEC);
  if (pagemap < 0 || kpageflags < 0) {
    return plain_error("tell dirty pages", "this kernel has no cachestat(2) (Linux 6.5) and /proc/kpageflags cannot be read (needs CAP_SYS_ADMIN)");
  }
  const std::size_t len = (last - first) * ps;
  void* p = mmap(nullptr, len, PROT_READ, MAP_SHARED, fd, static_cast<off_t>(first * ps));
  if (p == MAP_FAILED) return errno_error("map file to read its page flags");
  auto* base = static_cast<unsigned char*>(p);
  struct unmap {
    void* p;
    std::size_t n;
    ~unmap() { munmap(p, n); }
  } guard{p, len};
  if (madvise(p, len, MADV_RANDOM) < 0) return errno_error("madvise MADV_RANDOM");
  std::vector<unsigned char> resident(last - first);
  if (mincore(p, len, resident.data()) < 0) return errno_error("mincore");
  std::vector<std::uint64_t> entries, pfns;
  for (std::uint64_t i = 0; i < resident.size();) {
    if (!(resident[i] & 1)) {
      ++i;
      continue;
    }
    std::uint64_t end = i;
    while (end < resident.size() && (resident[end] & 1)) ++end;
    out.cached += end - i;
    (void)madvise(base + i * ps, (end - i) * ps, MADV_POPULATE_READ);
    entries.resize(end - i);
    const auto vpage = reinterpret_cast<std::uintptr_t>(base + i * ps) / ps;
    if (!pread_whole(pagemap, entries.data(), entries.size() * 8, vpage * 8)) return errno_error("read /proc/self/pagemap");
    for (auto e : entries) {
      // A page we could not see is not known to be clean.
      if (!(e & pagemap_present) || (e & pagemap_pfn) == 0) return plain_error("tell dirty pages", "a cached page's frame is not visible in /proc/self/pagemap");
      pfns.push_back(e & pagemap_pfn);
    }
    i = end;
  }
  // One pread per span of nearby frames, not one per page.
  auto flags = read_frame_entries(frame_table_of(kpageflags, "/proc/kpageflags"), pfns);
  if (!flags) return flags.err();
  for (auto f : *flags) {
    if (f & kpf_dirty) ++out.dirty;
    if (f & kpf_writeback) ++out.writeback;
  }
  return out;
}

}  // namespace

result<page_counts> page_counts_range(int fd, std::uint64_t offset, std::uint64_t length) {
  static std::atomic<bool> no_cachestat{false};
  if (!no_cachestat) {
    auto c = cachestat_range(fd, offset, length);
    if (c || c.err().err != ENOSYS) return c;
    no_cachestat = true;
  }
  return page_flags_range(fd, offset, length);
}

}  // namespace dupcache
