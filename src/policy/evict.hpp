// SPDX-License-Identifier: GPL-2.0-only
#pragma once

// Carries out an eviction plan: posix_fadvise(POSIX_FADV_DONTNEED) on exactly the planned
// runs. Each run is checked just before it is acted on:
//   - the file at the planned path is still the planned inode (filesystem, subvolume, inode);
//   - the keeper still caches its pages of the run (else the run could hold the block's last
//     cached copy: skipped);
//   - none of the run's pages is dirty or under writeback (cachestat; before Linux 6.5,
//     /proc/kpageflags): such a run is skipped,
//     so no writeback is started and no dirty page is ever dropped (DONTNEED never drops one
//     either; this also keeps it from starting writeback).
// Freed bytes are measured: the run's cached pages before minus after. Pages that stay (mapped
// by a process, or in use) are reported as kept.

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "policy/pageout.hpp"
#include "policy/plan.hpp"
#include "scan/fs_identity.hpp"
#include "util/fd.hpp"
#include "util/small_lru.hpp"

namespace dupcache::policy {

struct evict_outcome {
  copy_id copy = 0;
  std::string path;
  std::string kept_path;  // the keeper of its largest run
  std::uint64_t planned_bytes = 0;
  std::uint64_t freed_bytes = 0;
  std::uint64_t skipped_dirty_bytes = 0;
  std::uint64_t skipped_keeper_bytes = 0;  // the keeper no longer held the run
  std::uint64_t still_cached_bytes = 0;    // acted on, but the kernel kept them (mapped, busy)
  std::uint64_t paged_out_bytes = 0;       // of the freed bytes: freed only after MADV_PAGEOUT
  std::uint64_t pageout_processes = 0;     // processes whose mappings were paged out
  std::string error;                       // the copy could not be acted on at all
};

// The outcome as the evict command's JSON and the daemon's journal show it.
nlohmann::ordered_json outcome_json(const evict_outcome& o);

class evictor;
// A whole plan carried out, copy by copy, until max_bytes are planned (0: no limit).
struct plan_run {
  std::vector<evict_outcome> done;
  std::uint64_t planned_bytes = 0;
  std::uint64_t freed_bytes = 0;
  bool failed = false;  // some copy could not be acted on (its outcome says why)
};
plan_run run_plans(evictor& ev, const std::vector<copy_plan>& plans, std::uint64_t max_bytes = 0);

class evictor {
 public:
  // pageout: pages still cached after DONTNEED because processes map them are paged out of
  // those processes (process_madvise MADV_PAGEOUT) and evicted again.
  evictor(const scan_result& scan, bool dry_run, bool pageout = false)
      : scan_(scan), dry_run_(dry_run), pageout_(pageout), ps_(scan.index.page_size()) {}
  // Page out of these processes only (default: every process that maps the file).
  void pageout_only(std::set<int> pids) { pageout_pids_ = std::move(pids); }
  // Acts on the plan's runs in order until budget_bytes are planned (0: no limit); a run
  // larger than what is left of the budget is cut to it.
  evict_outcome run(const copy_plan& plan, std::uint64_t budget_bytes = 0);

 private:
  unique_fd open_copy(copy_id c, std::string* err);
  int keeper_fd(copy_id c, std::string* err);
  const scan_result& scan_;
  bool dry_run_;
  bool pageout_;
  std::uint64_t ps_;
  fs_registry registry_;
  // The copy acted on is open for its run only. Keepers, which many copies share, stay open in
  // a small cache of the most recently used: a plan can name a million copies, and a host's
  // open-file limit is 1024 by default (each copy kept open once failed every copy past it).
  // At most 64, and a sixteenth of the soft limit: the scan holds up to a quarter of it in
  // directories (scan/scanner.cpp).
  static std::size_t keepers_cache_size();
  small_lru<copy_id, unique_fd> keepers_{keepers_cache_size()};
  std::optional<std::vector<struct mapping_range>> mapped_;  // of the copy being acted on
  std::optional<std::set<int>> pageout_pids_;
};

}  // namespace dupcache::policy
