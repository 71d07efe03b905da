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
  bool knows_dirty() const override { return true; }
  const char* name() const override { return "cachestat"; }

 private:
  std::uint64_t page_size_;
};

// mincore(2) on a read-only shared mapping: mapping a file faults nothing in and mincore only
// reads page tables and the page cache. Cannot see dirty state.
class mincore_reader final : public residency_reader {
 public:
  explicit mincore_reader(std::uint64_t page_size) : page_size_(page_size) {}
  result<page_counts> totals(int fd, std::uint64_t file_size) override;
  result<std::vector<page_run>> clean_runs(int fd, std::uint64_t first, std::uint64_t pages) override;
  bool knows_dirty() const override { return false; }
  const char* name() const override { return "mincore"; }

 private:
  result<void> for_each_window(int fd, std::uint64_t first, std::uint64_t pages,
                               const std::function<void(std::uint64_t, const unsigned char*, std::uint64_t)>& fn);
  std::uint64_t page_size_;
};

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
