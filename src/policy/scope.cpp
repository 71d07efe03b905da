// SPDX-License-Identifier: GPL-2.0-only
#include "policy/scope.hpp"

#include <algorithm>
#include <utility>

#include "policy/config.hpp"
#include "util/path.hpp"

namespace dupcache::policy {

scope_rules scope_rules_of(const config& cfg) {
  scope_rules r;
  r.paths = cfg.paths;
  r.exclude_paths = cfg.exclude_paths;
  r.filesystems = cfg.filesystems;
  r.allow = {cfg.containers, cfg.cgroups};
  r.deny = {cfg.exclude_containers, cfg.exclude_cgroups};
  r.priority = cfg.priority;
  return r;
}

scope::scope(scope_rules rules, const scan_result& scan, const std::vector<cgroup::container_row>& rows)
    : rules_(std::move(rules)), scan_(scan) {
  // Sets of copies, computed once per pass: the planner asks about every copy of every block.
  for (const auto& r : rows) {
    if (!rules_.allow.empty() && rules_.allow.matches(r)) allowed_.insert(r.copies.begin(), r.copies.end());
    if (!rules_.deny.empty() && rules_.deny.matches(r)) denied_.insert(r.copies.begin(), r.copies.end());
    if (r.live_container()) in_containers_.insert(r.copies.begin(), r.copies.end());
    for (const auto& [who, p] : rules_.priority) {
      if (!cgroup::matches_container(r, who)) continue;
      for (copy_id c : r.copies) {
        auto [it, fresh] = priority_.emplace(c, p);
        if (!fresh) it->second = std::max(it->second, p);
      }
    }
  }
}

bool scope::in_scope(copy_id c) const {
  const auto& f = scan_.files[c];
  const std::string path = f.path;
  if (!path_under_any(path, rules_.paths, true)) return false;
  if (path_under_any(path, rules_.exclude_paths, false)) return false;
  const interned& fs_id = scan_.index.key_of(c).fs;
  const auto on = [&](const std::string& fs) { return fs_id == fs || fs_id.str().rfind(fs + ":", 0) == 0; };
  if (!rules_.filesystems.empty() && std::none_of(rules_.filesystems.begin(), rules_.filesystems.end(), on)) return false;
  if (denied_.count(c)) return false;
  return rules_.allow.empty() || allowed_.count(c) > 0;
}

int scope::priority(copy_id c) const {
  auto it = priority_.find(c);
  return it == priority_.end() ? 0 : it->second;
}

bool scope::live_container(copy_id c) const { return in_containers_.count(c) > 0; }

}  // namespace dupcache::policy
