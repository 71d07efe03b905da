// SPDX-License-Identifier: GPL-2.0-only
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "util/result.hpp"

namespace dupcache {

// Page counts over a range of a file, as cachestat(2) reports them.
struct page_counts {
  std::uint64_t cached = 0;
  std::uint64_t dirty = 0;
  std::uint64_t writeback = 0;
  // Pages of holes whose residency was not read (the mincore fallback on a file whose holes
  // are far larger than its data): not in `cached`, and the caller must say so.
  std::uint64_t unread = 0;
};

struct page_run {
  std::uint64_t first = 0;  // file page index
  std::uint64_t pages = 0;
  auto operator<=>(const page_run&) const = default;
};

using range_query = std::function<result<page_counts>(std::uint64_t first, std::uint64_t pages)>;

// The runs of pages in [first, first + pages) that are cached and clean, found by bisection
// with a counting query: a range that is wholly clean-cached or wholly absent ends the descent,
// so the cost follows the number of residency changes, not the size of the file. Dirty and
// writeback pages are left out: their contents may already differ from the shared blocks.
result<std::vector<page_run>> clean_cached_runs(const range_query& query, std::uint64_t first,
                                                std::uint64_t pages);

// How residency is read from the kernel.
class residency_reader {
 public:
  virtual ~residency_reader() = default;
  virtual result<page_counts> totals(int fd, std::uint64_t file_size) = 0;
  virtual result<std::vector<page_run>> clean_runs(int fd, std::uint64_t first, std::uint64_t pages) = 0;
  // The runs of cached pages (clean or not) of the file's first file_size bytes, found at the
  // cost totals() has: what the page-charge reader walks instead of the whole size (holes that
// totals() leaves unread are left out here too).
  virtual result<std::vector<page_run>> cached_runs(int fd, std::uint64_t file_size) = 0;
  // False when dirty pages cannot be told apart (the mincore fallback).
  virtual bool knows_dirty() const = 0;
  virtual const char* name() const = 0;
};

// cachestat(2), Linux 6.5+.
class cachestat_reader final : public residency_reader {
 public:
  explicit cachestat_reader(std::uint64_t page_size) : page_size_(page_size) {}
  result<page_counts> totals(int fd, std::uint64_t file_size) override;
  result<std::vector<page_run>> clean_runs(int fd, std::uint64_t first, std::uint64_t pages) override;
  result<std::vector<page_run>> cached_runs(int fd, std::uint64_t file_size) override;
  bool knows_dirty() const override { return true; }
  const char* name() const override { return "cachestat"; }

 private:
  std::uint64_t page_size_;
};

// mincore(2) on a read-only shared mapping: mapping a file faults nothing in and mincore only
// reads page tables and the page cache. Cannot see dirty state.
//
// mincore costs one page-cache lookup per page of the range asked (about 50 ns; 12.7 s per TiB
// here), holes included, and nothing short of cachestat counts a range at once. So totals() and
// cached_runs() read the file's data ranges (SEEK_DATA/SEEK_HOLE, delayed allocations included)
// with holes of up to 32 pages between them, and the other holes only while they are no larger
// than hole_budget(data pages): 16 times the data plus 256 MiB (the cost of the one mapping the
// old code made for a small file). Reading a hole does cache zero-filled
// pages, so holes past the budget are not guessed empty: their size is returned as `unread`.
// The cost of a file is thereby bounded by what it has allocated, not by its size (a 4 EiB file
// made with truncate costs a few system calls).
class mincore_reader final : public residency_reader {
 public:
  explicit mincore_reader(std::uint64_t page_size) : page_size_(page_size) {}
  result<page_counts> totals(int fd, std::uint64_t file_size) override;
  result<std::vector<page_run>> clean_runs(int fd, std::uint64_t first, std::uint64_t pages) override;
  result<std::vector<page_run>> cached_runs(int fd, std::uint64_t file_size) override;
  bool knows_dirty() const override { return false; }
  const char* name() const override { return "mincore"; }

  static std::uint64_t hole_budget(std::uint64_t data_pages) { return 16 * data_pages + 65536; }

 private:
  using window_fn = std::function<void(std::uint64_t, const unsigned char*, std::uint64_t)>;
  result<void> for_each_window(int fd, std::uint64_t first, std::uint64_t pages, const window_fn& fn);
  // Every window of the file's first file_size bytes that can be read in bounded time (see
  // above); returns the pages of holes left unread.
  result<std::uint64_t> for_each_readable_window(int fd, std::uint64_t file_size, const window_fn& fn);
  std::uint64_t page_size_;
};

// The page runs of fd's first `size` bytes that hold data (lseek SEEK_DATA/SEEK_HOLE, which
// count delayed allocations as data), with holes shorter than join_pages merged into the runs
// around them. A filesystem without SEEK_HOLE reports the whole file as one run. data_pages, when
// given, receives the pages of data alone (without the joined holes).
result<std::vector<page_run>> data_runs(int fd, std::uint64_t size, std::uint64_t page_size,
                                        std::uint64_t join_pages, std::uint64_t* data_pages = nullptr);

// cachestat when the kernel has it and lets us use it, else mincore. Probed once.
enum class residency_mode { automatic, cachestat, mincore };
result<std::unique_ptr<residency_reader>> make_residency_reader(residency_mode mode, std::uint64_t page_size);

// The raw syscall, for callers that want one count (tests, the doctor).
result<page_counts> cachestat_range(int fd, std::uint64_t offset, std::uint64_t length);

// Cached, dirty and writeback pages of [offset, offset + length): cachestat where the kernel has
// it; before Linux 6.5, mincore for the cached pages and /proc/kpageflags for the dirty and
// writeback ones (needs CAP_SYS_ADMIN). Finding the flags maps the cached pages into this
// process for a moment (MADV_RANDOM, MADV_POPULATE_READ of resident runs only: nothing is read
// from disk); they are unmapped before this returns. Fails rather than guess a page clean.
result<page_counts> page_counts_range(int fd, std::uint64_t offset, std::uint64_t length);

}  // namespace dupcache
