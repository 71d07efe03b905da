// SPDX-License-Identifier: GPL-2.0-only
#pragma once

// One `dupcache merge`, from scan to clean-up: the filesystems are scanned; with the companion
// module the named processes' mappings of duplicated copies are merged onto canonical copies
// (policy/merge.hpp), the copies they were moved off are evicted (from a fresh scan: the
// canonical copies are cached now), and canonical copies nobody maps are removed; without it
// (not loaded, or declined), the mapped duplicates are paged out of the named processes and
// evicted, keeping one copy cached. Whether the run failed is decided here, not by the caller.

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "policy/evict.hpp"
#include "policy/merge.hpp"
#include "util/result.hpp"

namespace dupcache::policy {

struct merge_request {
  std::vector<std::string> paths;  // filesystems to scan; empty: every one that can share extents
  std::set<int> pids;              // targets; with all: every process
  bool all = false;
  bool use_module = true;   // false: page out and evict even where the module is loaded
  unsigned timeout_ms = 0;  // per module request; 0: the module's default
  bool dry_run = false;
};

// What a merge run did, for both ways of merging.
struct merge_report {
  bool dry_run = false;        // as requested: nothing was acted on
  bool module = false;         // the module was used
  std::string module_version;  // its ABI, when used
  bool module_declined = false;  // not used because the request said so
  std::string module_error;      // else why it could not be used
  std::uint64_t mapped = 0;      // duplicated copies the targets map
  merge_run merged;              // with the module
  plan_run evicted;
  std::uint64_t canonical_removed = 0;
  std::vector<std::string> errors;
  std::uint64_t merged_mappings = 0;
  // A PATH could not be scanned, a process could not be read or an action failed (a mapping the
  // module refused is reported, not a failure).
  bool failed = false;
};

// Fails, without acting, when the filesystems cannot be scanned or, without the module, a named
// process's mappings cannot be read.
result<merge_report> run_merge_pass(const merge_request& req);

}  // namespace dupcache::policy
