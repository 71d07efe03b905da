// SPDX-License-Identifier: GPL-2.0-only
// policy::scope: the allow/deny rules evict and the daemon share, copy by copy.

#include <gtest/gtest.h>

#include "policy/config.hpp"
#include "policy/scope.hpp"

namespace dupcache::policy {
namespace {

using cgroup::container_row;

// Copies 0..n-1 with the given paths and filesystems (the filesystem is the copy's key's);
// which containers they are charged to is said by the rows each test passes.
scan_result files(const std::vector<std::pair<std::string, std::string>>& path_fs) {
  scan_result s{4096};
  for (const auto& [path, fs] : path_fs) {
    const copy_id id = s.index.intern_copy({fs, 0, s.files.size() + 1});
    EXPECT_EQ(id, s.files.size());
    file_entry f;
    f.path = path;
    s.files.push_back(f);
  }
  return s;
}

container_row row(std::string runtime, std::string id, std::string name, std::string cgroup,
                  std::vector<copy_id> copies, bool stopped = false) {
  container_row r;
  r.runtime = std::move(runtime);
  r.id = std::move(id);
  r.name = std::move(name);
  r.cgroup = std::move(cgroup);
  r.copies = std::move(copies);
  r.stopped = stopped;
  return r;
}

TEST(scope, no_rules_hold_every_copy_at_priority_zero) {
  const auto s = files({{"/a", "btrfs:1"}, {"/b", "xfs:2"}});
  const scope sc({}, s, {});
  EXPECT_TRUE(sc.in_scope(0));
  EXPECT_TRUE(sc.in_scope(1));
  EXPECT_EQ(sc.priority(0), 0);
  EXPECT_FALSE(sc.live_container(0));
}

TEST(scope, paths_and_exclusions_compare_whole_components) {
  const auto s = files({{"/var/lib/c/x", "btrfs:1"},
                        {"/var/lib/cx/x", "btrfs:1"},
                        {"/var/lib/c/volumes/v", "btrfs:1"},
                        {"/var/lib/c", "btrfs:1"},
                        {"/srv/y", "btrfs:1"}});
  scope_rules r;
  r.paths = {"/var/lib/c/", "/srv"};
  r.exclude_paths = {"/var/lib/c/volumes"};
  const scope sc(r, s, {});
  EXPECT_TRUE(sc.in_scope(0));
  EXPECT_FALSE(sc.in_scope(1));  // "/var/lib/cx" is not under "/var/lib/c"
  EXPECT_FALSE(sc.in_scope(2));
  EXPECT_TRUE(sc.in_scope(3));   // the directory itself
  EXPECT_TRUE(sc.in_scope(4));
}

TEST(scope, a_filesystem_rule_is_an_id_or_its_type) {
  const auto s = files({{"/a", "btrfs:1111"}, {"/b", "btrfsx:2222"}, {"/c", "xfs:3333"}, {"/d", "xfs:4444"}});
  scope_rules r;
  r.filesystems = {"btrfs", "xfs:3333"};
  const scope sc(r, s, {});
  EXPECT_TRUE(sc.in_scope(0));
  EXPECT_FALSE(sc.in_scope(1));
  EXPECT_TRUE(sc.in_scope(2));
  EXPECT_FALSE(sc.in_scope(3));
}

// One host: who pays for each of copies 0..6.
//   0 web           1 web and db    2 the host    3 db
//   4 old (stopped) 5 unattributed  6 a removed container's
struct host {
  scan_result scan = files({{"/0", "fs"}, {"/1", "fs"}, {"/2", "fs"}, {"/3", "fs"},
                            {"/4", "fs"}, {"/5", "fs"}, {"/6", "fs"}});
  std::vector<container_row> rows = {
      row("docker", "0123456789abcdef", "web", "/system.slice/docker-0123.scope", {0, 1}),
      row("podman", "fedcba9876543210", "db", "/machine.slice/libpod-fedc.scope", {1, 3}),
      row("host", "", "", "/", {2}),
      row("docker", "5555aaaa5555aaaa", "old", "", {4}, true),
      row("unattributed", "", "", "", {5}),
      row("removed", "6666bbbb6666bbbb", "", "/r", {6}),
  };
  // Which of the seven copies the rules hold in scope, as a string of 0 and 1.
  std::string in_scope(scope_rules r) const {
    const scope sc(std::move(r), scan, rows);
    std::string out;
    for (copy_id c = 0; c < scan.files.size(); ++c) out += sc.in_scope(c) ? '1' : '0';
    return out;
  }
};

cgroup::container_filter names(std::vector<std::string> n) { return {std::move(n), {}}; }
cgroup::container_filter cgroups(std::vector<std::string> g) { return {{}, std::move(g)}; }

TEST(scope, allow_keeps_only_copies_charged_to_a_matched_container) {
  const host h;
  scope_rules r;
  r.allow = names({"web"});
  EXPECT_EQ(h.in_scope(r), "1100000");  // the host's and unattributed copies: nobody allowed pays
  r.allow = cgroups({"/machine.slice"});
  EXPECT_EQ(h.in_scope(r), "0101000");
  r.allow = names({"fedc"});  // an id prefix of 4 characters
  EXPECT_EQ(h.in_scope(r), "0101000");
  r.allow = names({"fed"});   // too short to name a container
  EXPECT_EQ(h.in_scope(r), "0000000");
  r.allow = {{"web"}, {"/machine.slice"}};
  EXPECT_EQ(h.in_scope(r), "1101000");
}

TEST(scope, deny_wins_over_allow_and_over_other_charges) {
  const host h;
  scope_rules r;
  r.allow = names({"web"});
  r.deny = names({"db"});
  EXPECT_EQ(h.in_scope(r), "1000000");  // copy 1 is web's too, but db's denial holds
  r.allow = {};
  r.deny = cgroups({"/machine.slice/"});
  EXPECT_EQ(h.in_scope(r), "1010111");  // no allow list: copies charged to no container stay
}

TEST(scope, path_rules_apply_before_container_rules) {
  const host h;
  scope_rules r;
  r.paths = {"/0", "/2"};
  r.allow = names({"web"});
  EXPECT_EQ(h.in_scope(r), "1000000");
}

TEST(scope, priority_is_the_highest_of_the_named_containers_paying) {
  const host h;
  scope_rules r;
  r.priority = {{"web", 10}, {"fedcba9876543210", 20}, {"old", -5}};
  const scope sc(r, h.scan, h.rows);
  EXPECT_EQ(sc.priority(0), 10);
  EXPECT_EQ(sc.priority(1), 20);
  EXPECT_EQ(sc.priority(3), 20);
  EXPECT_EQ(sc.priority(4), -5);  // below the copies nobody named
  EXPECT_EQ(sc.priority(2), 0);
  EXPECT_EQ(sc.priority(99), 0);  // a copy no row names
}

TEST(scope, evicts_keep_container_is_priority_one) {
  const host h;
  scope_rules r;
  r.priority["web"] = 1;
  const scope sc(r, h.scan, h.rows);
  EXPECT_EQ(sc.priority(0), 1);
  EXPECT_EQ(sc.priority(3), 0);
  EXPECT_EQ(h.in_scope(r), "1111111");  // priorities never narrow the scope
}

TEST(scope, live_containers_are_running_ones_only) {
  const host h;
  const scope sc({}, h.scan, h.rows);
  std::string live;
  for (copy_id c = 0; c < h.scan.files.size(); ++c) live += sc.live_container(c) ? '1' : '0';
  EXPECT_EQ(live, "1101000");
}

TEST(scope, the_daemons_rules_come_from_scope_and_priority) {
  config c;
  c.paths = {"/var/lib/containers"};
  c.exclude_paths = {"/var/lib/containers/volumes"};
  c.filesystems = {"btrfs"};
  c.containers = {"web"};
  c.cgroups = {"/kubepods.slice"};
  c.exclude_containers = {"db"};
  c.exclude_cgroups = {"/system.slice"};
  c.priority = {{"web", 10}};
  const scope_rules r = scope_rules_of(c);
  EXPECT_EQ(r.paths, c.paths);
  EXPECT_EQ(r.exclude_paths, c.exclude_paths);
  EXPECT_EQ(r.filesystems, c.filesystems);
  EXPECT_EQ(r.allow.containers, c.containers);
  EXPECT_EQ(r.allow.cgroups, c.cgroups);
  EXPECT_EQ(r.deny.containers, c.exclude_containers);
  EXPECT_EQ(r.deny.cgroups, c.exclude_cgroups);
  EXPECT_EQ(r.priority, c.priority);
}

}  // namespace
}  // namespace dupcache::policy
