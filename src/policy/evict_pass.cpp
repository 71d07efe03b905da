// SPDX-License-Identifier: GPL-2.0-only
#include "policy/evict_pass.hpp"

#include <optional>
#include <utility>

#include "policy/in_use.hpp"
#include "policy/plan.hpp"
#include "policy/scope.hpp"

namespace dupcache::policy {

result<evict_pass_result> run_evict_pass(const evict_request& req) {
  scan_options so;
  so.paths = req.paths;
  so.cross_mounts = req.cross_mounts;
  so.keep_placements = true;  // the planner maps the index back to file pages
  // Page charges tell which copies running containers use: the keeper is chosen among those.
  // Only the copies of shared blocks can be planned; the others' charges are read only where a
  // container is named, so that a container known by its charges alone is still found.
  so.attribute = true;
  so.attribute_shared_only = req.charged_to.empty() && req.keep_containers.empty();
  auto scanned = scan(so);
  if (!scanned) return scanned.err();

  evict_pass_result out;
  out.dry_run = req.dry_run;
  out.scan_errors = scanned->errors;
  out.skipped_mounts = scanned->skipped_mounts;
  scope_rules rules;
  rules.allow = req.charged_to;
  for (const auto& k : req.keep_containers) rules.priority[k] = 1;
  std::optional<scope> sc;
  {
    cgroup::host_accounting acc(req.metadata_root);
    const auto rows = acc.rows(*scanned);
    out.usage_errors = cgroup::unknown_container_errors("--container", req.charged_to.containers, rows, acc);
    for (auto& e : cgroup::unknown_container_errors("--keep-container", req.keep_containers, rows, acc)) {
      out.usage_errors.push_back(std::move(e));
    }
    if (!out.usage_errors.empty()) return out;
    out.charges_error = acc.error(*scanned);
    if (!out.charges_error.empty() && (!req.charged_to.empty() || !req.keep_containers.empty())) {
      out.refused = true;
      return out;
    }
    sc.emplace(std::move(rules), *scanned, rows);
  }

  out.wasted_before = scanned->index.wasted_bytes();
  const auto in_use = out.wasted_before > 0 ? files_in_use::collect() : files_in_use{};
  auto plans = plan_evictions(*scanned, req.keep_containers.empty() ? keep_rule::hottest : keep_rule::priority,
                              [&](copy_id c) {
                                copy_facts f;
                                f.heat = scanned->files[c].cached_bytes;
                                f.priority = sc->priority(c);
                                f.in_use = in_use.holds_copy(*scanned, c);
                                f.live_container = sc->live_container(c);
                                f.evictable = sc->in_scope(c);
                                return f;
                              });

  evictor ev(*scanned, req.dry_run, req.pageout);
  auto run = run_plans(ev, plans, req.max_bytes);
  out.done = std::move(run.done);
  out.planned_bytes = run.planned_bytes;
  out.freed_bytes = run.freed_bytes;
  out.failed = scanned->named_path_failed || run.failed;
  out.wasted_after = out.wasted_before;
  if (!req.dry_run) {
    scan_options again = so;
    again.attribute = false;
    if (auto s = scan(again)) out.wasted_after = s->index.wasted_bytes();
  }
  return out;
}

}  // namespace dupcache::policy
