// SPDX-License-Identifier: GPL-2.0-only
// dupcache evict: one pass of the daemon's evict action, from the command line.
#include <fmt/format.h>

#include <iostream>
#include <nlohmann/json.hpp>
#include <set>

#include "cgroup/accounting.hpp"
#include "cli/commands.hpp"
#include "policy/evict.hpp"
#include "policy/in_use.hpp"
#include "policy/plan.hpp"
#include "report/report.hpp"
#include "util/json_text.hpp"
#include "util/text.hpp"

namespace dupcache {

void register_evict(CLI::App& app, evict_args& a) {
  auto* cmd = app.add_subcommand("evict", "Evict duplicate cached copies once, keeping one copy of each block");
  cmd->footer(
      "For every physical block cached by two or more files, one copy is kept and the clean pages "
      "of the others are dropped with POSIX_FADV_DONTNEED. The copy kept is a --keep-container's, "
      "else one a running process maps or has open, else one charged to a running container, else "
      "the most cached. Dirty pages are never dropped; file contents never change.\n"
      "Exit status: 0 ok, 1 a PATH could not be scanned or an action failed, 2 usage error.");
  cmd->add_option("PATH", a.paths, "Files or directories (default: every filesystem that can share extents)");
  cmd->add_flag("-n,--dry-run", a.dry_run, "Plan and print, act on nothing");
  cmd->add_flag("--json", a.json, "Print the result as one JSON document");
  cmd->add_flag("--bytes", a.bytes, "Sizes in bytes");
  add_container_filters(cmd, a.containers, a.cgroups, "Only evict copies charged to");
  cmd->add_option("--keep-container", a.keep_containers,
                  "Keep this container's copies in preference to others (repeatable)")
      ->allow_extra_args(false)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  cmd->add_option("--max-bytes", a.max_bytes, "Evict at most this many bytes (default: no limit)");
  cmd->add_flag("--cross-mounts", a.cross_mounts,
                "Also enter mounts of other filesystems below a PATH (mounts of the same filesystem are always entered)");
  cmd->add_flag("--no-pageout", a.no_pageout,
                "Leave mapped duplicates alone (default: page them out of the processes that map them, then evict)");
  cmd->add_option("--metadata-root", a.metadata_root, "Where container runtimes' metadata is read (default /)");
}

int run_evict(const evict_args& a) {
  scan_options so;
  so.paths = a.paths;
  so.cross_mounts = a.cross_mounts;
  const container_filter scope{a.containers, a.cgroups};
  const container_filter keep{a.keep_containers, {}};
  so.keep_placements = true;  // the planner maps the index back to file pages
  // Page charges tell which copies running containers use: the keeper is chosen among those.
  so.attribute = true;
  auto scanned = scan(so);
  if (!scanned) {
    fmt::print(stderr, "dupcache: evict: {}\n", terminal_safe(scanned.err().message()));
    return exit_failure;
  }
  for (const auto& e : scanned->errors) {
    fmt::print(stderr, "dupcache: {}: {}\n", terminal_safe(e.path), terminal_safe(e.message));
  }
  std::set<copy_id> in_scope, kept_first, in_containers;
  {
    cgroup::host_accounting acc(a.metadata_root);
    const auto rows = acc.rows(*scanned);
    std::vector<std::string> bad = unknown_container_errors("--container", a.containers, rows, acc);
    for (auto& e : unknown_container_errors("--keep-container", a.keep_containers, rows, acc)) bad.push_back(std::move(e));
    if (!bad.empty()) {
      for (const auto& e : bad) fmt::print(stderr, "dupcache: evict: {}\n", e);
      return exit_usage;
    }
    if (auto why = acc.error(*scanned); !why.empty()) {
      if (!scope.empty() || !keep.empty()) {
        fmt::print(stderr, "dupcache: evict: page charges unavailable ({}): container options cannot apply\n", why);
        return exit_failure;
      }
      fmt::print(stderr, "dupcache: evict: page charges unavailable ({}): copies running containers use are not "
                         "preferred as keepers\n", why);
    }
    for (const auto& r : rows) {
      if (!scope.empty() && scope.matches(r)) in_scope.insert(r.copies.begin(), r.copies.end());
      if (!keep.empty() && keep.matches(r)) kept_first.insert(r.copies.begin(), r.copies.end());
      if (r.live_container()) in_containers.insert(r.copies.begin(), r.copies.end());
    }
  }
  const std::uint64_t wasted_before = scanned->index.wasted_bytes();
  const auto in_use = wasted_before > 0 ? policy::files_in_use::collect() : policy::files_in_use{};
  auto plans = policy::plan_evictions(*scanned, keep.empty() ? policy::keep_rule::hottest : policy::keep_rule::priority,
                                      [&](copy_id c) {
                                        policy::copy_facts f;
                                        f.heat = scanned->files[c].cached_bytes;
                                        f.priority = kept_first.count(c) ? 1 : 0;
                                        f.in_use = in_use.holds_copy(*scanned, c);
                                        f.live_container = in_containers.count(c) > 0;
                                        f.evictable = scope.empty() || in_scope.count(c);
                                        return f;
                                      });

  policy::evictor ev(*scanned, a.dry_run, !a.no_pageout);
  const auto [done, planned, freed, acts_failed] = policy::run_plans(ev, plans, a.max_bytes);
  const bool failed = scanned->named_path_failed || acts_failed;
  std::uint64_t wasted_after = wasted_before;
  if (!a.dry_run) {
    scan_options again = so;
    again.attribute = false;
    if (auto s = scan(again)) wasted_after = s->index.wasted_bytes();
  }

  auto size = [&](std::uint64_t b) { return a.bytes ? fmt::format("{}", b) : human_bytes(b); };
  if (a.json) {
    nlohmann::ordered_json j;
    j["dry_run"] = a.dry_run;
    j["wasted_bytes_before"] = wasted_before;
    j["wasted_bytes_after"] = wasted_after;
    j["planned_bytes"] = planned;
    j["freed_bytes"] = freed;
    j["actions"] = nlohmann::ordered_json::array();
    for (const auto& o : done) j["actions"].push_back(policy::outcome_json(o));
    std::cout << dump_json(j, 2) << '\n';
  } else {
    for (const auto& o : done) {
      if (!o.error.empty()) {
        fmt::print(stderr, "dupcache: evict: {}\n", terminal_safe(o.error));
        continue;
      }
      std::string extra;
      if (o.skipped_dirty_bytes) extra += fmt::format(", {} dirty skipped", size(o.skipped_dirty_bytes));
      if (o.skipped_keeper_bytes) extra += fmt::format(", {} skipped (keeper gone)", size(o.skipped_keeper_bytes));
      if (o.paged_out_bytes) extra += fmt::format(", {} paged out of {} process(es)", size(o.paged_out_bytes), o.pageout_processes);
      if (o.still_cached_bytes) extra += fmt::format(", {} still cached (mapped or busy)", size(o.still_cached_bytes));
      std::cout << fmt::format("{} {:>9}  {}  (kept: {}{})\n", a.dry_run ? "would evict" : "evicted",
                               size(a.dry_run ? o.planned_bytes : o.freed_bytes), terminal_safe(o.path),
                               terminal_safe(o.kept_path), extra);
    }
    std::cout << skipped_mounts_note(scanned->skipped_mounts);
    if (a.dry_run) {
      std::cout << fmt::format("dry run: wasted {}; would evict {} from {} file(s); nothing was changed\n",
                               size(wasted_before), size(planned), done.size());
    } else {
      std::cout << fmt::format("wasted {} -> {}; freed {} from {} file(s)\n", size(wasted_before), size(wasted_after),
                               size(freed), done.size());
    }
  }
  std::cout.flush();
  return failed || !std::cout ? exit_failure : exit_ok;
}

}  // namespace dupcache
