// SPDX-License-Identifier: GPL-2.0-only
#pragma once
// The merge pass: mapped duplicates merged through the companion kernel module
// (policy/merge_module.hpp).
//
// A process's read-only private mapping of a file B that shares its blocks with other cached
// copies is pointed at a canonical copy of the same content: a read-only reflink clone of B in
// dupcache's own directory on B's filesystem (policy/canonical.hpp), which nobody writes to, so a
// later write to B or to any other copy never shows through. Every process that maps any copy
// then shares the canonical copy's cached pages, and B's own pages, now unmapped, can be evicted.
// Before asking, stopped and traced targets and targets the LSMs' ptrace check (/proc/PID/mem)
// denies are refused, and B's mapped range is flushed and checked with FIEMAP to map the same
// physical extents as the canonical copy's (none encoded, delayed or inline); the module checks
// the rest in the target's own context (exact range, expected inode, private, not writable, no
// copy-on-write pages, neither file open for writing, the bytes equal) and refuses otherwise.

#include <cstdint>
#include <functional>
#include <set>
#include <string>
#include <vector>

#include "policy/canonical.hpp"
#include "policy/merge_module.hpp"
#include "scan/scanner.hpp"

namespace dupcache::policy {

// A mapping of /proc/PID/smaps that may be merged: private, readable, not writable, of a file.
struct vma_line {
  std::uint64_t start = 0, end = 0, offset = 0;
  std::uint64_t anonymous_kib = 0;  // its copy-on-write pages ("Anonymous:")
  bool operator==(const vma_line&) const = default;
};
// The mergeable mappings of one /proc/PID/smaps text, in its order.
std::vector<vma_line> mergeable_vmas(const std::string& smaps);

struct merge_outcome {
  int pid = 0;
  std::uint64_t start = 0, end = 0;
  std::string path;       // the copy mapped (scan path)
  std::string canonical;  // the canonical copy's path
  bool merged = false;
  std::string refusal;    // refusal_name, or "" when merged or not asked
  std::string error;      // what failed, with the reason
};

struct merge_options {
  std::set<int> pids;  // targets; empty with all: every process
  bool all = false;
  bool dry_run = false;
  unsigned timeout_ms = 0;  // per request; 0: the module's default
  // Only copies for which this says yes (the daemon's scope); empty: all.
  std::function<bool(copy_id)> in_scope;
  // Mappings not to ask about (the daemon's refused ones, for a while); empty: none.
  std::function<bool(int pid, std::uint64_t start, std::uint64_t end)> skip;
};

struct merge_run {
  std::vector<merge_outcome> done;
  std::set<copy_id> merged_copies;  // copies at least one mapping was moved off
  std::uint64_t merged_bytes = 0;   // Σ length of the mappings moved
  std::vector<std::string> errors;  // targets that could not be read
  std::uint64_t mapped_copies = 0;  // duplicated copies the targets map
  // Canonical ranges brought into the cache before the requests: the bytes read, and the bytes
  // found cached already (by an earlier mapping of the same copy in this run, or before it) and
  // not read again.
  std::uint64_t canonical_read_bytes = 0;
  std::uint64_t canonical_cached_bytes = 0;
};

// Brings [offset, offset + length) of fd into the page cache, reading (pread, waiting for it)
// only the pages the residency reader does not find cached: a canonical copy mapped by ten
// processes is read once, not ten times. Adds to the two counters of `run`.
result<void> warm_range(int fd, std::uint64_t offset, std::uint64_t length, residency_reader& reader, merge_run& run);

// Merges the targets' mappings of duplicated copies in `scan` onto canonical copies.
merge_run merge_mapped(const scan_result& scan, const merge_module& mod, const merge_options& o);

}  // namespace dupcache::policy
