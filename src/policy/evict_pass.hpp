// SPDX-License-Identifier: GPL-2.0-only
#pragma once

// One eviction pass, as `dupcache evict` runs it: scan with page charges, check the container
// options against what the host knows, choose keepers (a --keep-container's copy, then one in
// use, then one a running container uses, then the most cached), evict the rest within the
// scope and the byte budget, and scan again for the waste left.
//
// The pass stops before acting, with nothing changed, when a container option names no
// container (usage_errors: the caller exits 2) or when container options are given but page
// charges cannot be read (refused: the caller exits 1). Without container options, unreadable
// charges only mean no copy is preferred for a running container's sake (charges_error says why).
// A scan that fails outright is the error of the result.

#include <cstdint>
#include <string>
#include <vector>

#include "cgroup/accounting.hpp"
#include "policy/evict.hpp"
#include "scan/scanner.hpp"
#include "util/result.hpp"

namespace dupcache::policy {

struct evict_request {
  std::vector<std::string> paths;  // empty: every filesystem that can share extents
  bool cross_mounts = false;
  bool dry_run = false;
  bool pageout = true;                       // page mapped duplicates out of their processes first
  cgroup::container_filter charged_to;       // only copies charged to these (empty: any copy)
  std::vector<std::string> keep_containers;  // their copies are kept first
  std::uint64_t max_bytes = 0;               // 0: no limit
  std::string metadata_root = "/";
};

struct evict_pass_result {
  bool dry_run = false;
  std::vector<scan_error> scan_errors;      // what the walk could not read; the pass went on
  std::vector<std::string> usage_errors;    // one line per container option value naming nothing
  std::string charges_error;                // why page charges could not be read; empty if they could
  bool refused = false;                     // container options cannot apply without charges
  std::vector<skipped_mount> skipped_mounts;
  std::uint64_t wasted_before = 0;
  std::uint64_t wasted_after = 0;  // measured by a second scan; wasted_before when dry or it failed
  std::uint64_t planned_bytes = 0;
  std::uint64_t freed_bytes = 0;
  std::vector<evict_outcome> done;
  bool failed = false;  // a named PATH could not be scanned or some copy could not be acted on
};

result<evict_pass_result> run_evict_pass(const evict_request& req);

}  // namespace dupcache::policy
