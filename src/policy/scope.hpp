// SPDX-License-Identifier: GPL-2.0-only
#pragma once

// Which cached copies an action may touch, and which it keeps first: the one set of rules evict
// and the daemon both apply. Built from rules (a config's [scope] and [priority], or evict's
// options) and the container rows of the same scan; then asked per copy.
//   in_scope(c):   under one of `paths` (none: anywhere), under none of `exclude_paths`, on one
//                  of `filesystems` (none: any), charged to no container `deny` matches and, when
//                  `allow` is given, charged to one it matches. A copy charged to several
//                  containers is denied if any of them is.
//   priority(c):   the highest priority of the containers the copy is charged to whose id, name
//                  or pod uid is a key of `priority`; 0 when none is (so a negative priority
//                  keeps a copy after unnamed ones).
//   live_container(c): charged to a running container (cgroup::container_row::live_container).
// Paths compare by component (util/path.hpp). A filesystem rule matches an fs id exactly or as
// the id's type prefix ("btrfs" matches "btrfs:<uuid>").
// The scope reads the scan's files when asked: the scan must outlive it.

#include <map>
#include <set>
#include <string>
#include <vector>

#include "cgroup/accounting.hpp"
#include "scan/scanner.hpp"

namespace dupcache::policy {

struct config;

struct scope_rules {
  std::vector<std::string> paths;
  std::vector<std::string> exclude_paths;
  std::vector<std::string> filesystems;
  cgroup::container_filter allow;  // empty: every container, and copies charged to none
  cgroup::container_filter deny;
  std::map<std::string, int> priority;  // container id, name or pod uid -> priority
};

// The daemon's rules: [scope] and [priority] of its configuration.
scope_rules scope_rules_of(const config& cfg);

class scope {
 public:
  scope(scope_rules rules, const scan_result& scan, const std::vector<cgroup::container_row>& rows);

  bool in_scope(copy_id c) const;
  int priority(copy_id c) const;
  bool live_container(copy_id c) const;

 private:
  scope_rules rules_;
  const scan_result& scan_;
  std::set<copy_id> allowed_, denied_, in_containers_;
  std::map<copy_id, int> priority_;
};

}  // namespace dupcache::policy
