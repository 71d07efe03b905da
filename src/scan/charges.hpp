// SPDX-License-Identifier: GPL-2.0-only
#pragma once

// Which memory cgroup each cached page of a file is charged to, read without reading data:
// the file is mapped read-only, only pages mincore(2) reports resident are populated into our
// page tables (MADV_POPULATE_READ, never a read from disk for a page that was cached), their
// frames come from /proc/self/pagemap and each frame's memory cgroup from /proc/kpagecgroup.
// Both /proc files need CAP_SYS_ADMIN; without them the caller says "unattributed".
//
// Disturbance: the mapping is MADV_RANDOM, so faulting maps no neighbours by read-ahead and
// unmapping it does not mark pages accessed. The one race left: a page evicted between mincore
// and the populate of its run is read back in (a clean page, never data) and charged to the
// caller's cgroup. The window is one madvise call per run of resident pages.

#include <cstdint>
#include <vector>

#include "scan/residency.hpp"
#include "util/fd.hpp"
#include "util/result.hpp"

namespace dupcache {

// A run of file pages charged to one memory cgroup. cgroup is the memcg's cgroup inode number
// (what /proc/kpagecgroup reports and the BPF events carry as cgroup_id); 0: the page is
// cached but its charge could not be read.
struct charge_run {
  std::uint64_t first = 0;
  std::uint64_t pages = 0;
  std::uint64_t cgroup = 0;
  bool operator==(const charge_run&) const = default;
};

// Appends [first, first + pages) charged to cgroup, merging with the last run when it continues it.
void append_charge(std::vector<charge_run>& runs, std::uint64_t first, std::uint64_t pages, std::uint64_t cgroup);

// Replaces the charge of [first, first + pages) (runs stay sorted, disjoint and merged).
void set_charge(std::vector<charge_run>& runs, std::uint64_t first, std::uint64_t pages, std::uint64_t cgroup);
// Forgets [first, first + pages): no longer cached.
void clear_charge(std::vector<charge_run>& runs, std::uint64_t first, std::uint64_t pages);

class charge_reader {
 public:
  // Opens /proc/self/pagemap and /proc/kpagecgroup; fails naming the file and the reason.
  static result<charge_reader> open(std::uint64_t page_size);

  // The charge of every cached page within `cached` (sorted runs, from
  // residency_reader::cached_runs), in file order. Pages that are not cached are not in any run.
  // Only those runs are mapped: walking the file's whole size would cost 64 MiB of mapping per
  // step of a file that need hold nothing (truncate -s 4E). Thread-safe.
  result<std::vector<charge_run>> read(int fd, const std::vector<page_run>& cached) const;

 private:
  charge_reader(std::uint64_t ps, unique_fd pagemap, unique_fd kpagecgroup)
      : ps_(ps), pagemap_(std::move(pagemap)), kpagecgroup_(std::move(kpagecgroup)) {}
  result<void> read_window(int fd, std::uint64_t first, std::uint64_t pages, std::vector<charge_run>& out) const;

  std::uint64_t ps_;
  unique_fd pagemap_;
  unique_fd kpagecgroup_;
};

}  // namespace dupcache
