// SPDX-License-Identifier: GPL-2.0-only
// policy::scope: the allow/deny rules evict and the daemon share, copy by copy.

#include <gtest/gtest.h>

#include "policy/config.hpp"
#include "policy/scope.hpp"

namespace dupcache::policy {
namespace {

using cgroup::container_row;

// Copies 0..n-1 with the given paths and filesystems; which containers they are charged to is
// said by the rows each test passes.
scan_result files(const std::vector<std::pair<std::string, std::string>>& path_fs) {
  scan_result s{4096};
  for (const auto& [path, fs] : path_fs) {
    file_entry f;
    f.path = path;
    f.fs_id = fs;
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

TEST(scope, allow_keeps_only_copies_charged_to_a_matched_container) {
  const auto s = files({{"/a", "fs"}, {"/b", "fs"}, {"/c", "fs"}, {"/d", "fs"}});
  const std::vector<container_row> rows = {
      row("docker", "0123456789abcdef", "web", "/system.slice/docker-0123.scope", {0, 3}),
      row("podman", "fedcba9876543210", "db", "/machine.slice/libpod-fedc.scope", {1}),
      row("host", "", "", "/", {2}),
  };
  scope_rules by_name;
  by_name.allow = {{"web"}, {}};
  const scope a(by_name, s, rows);
  EXPECT_TRUE(a.in_scope(0));
  EXPECT_FALSE(a.in_scope(1));
  EXPECT_FALSE(a.in_scope(2));  // the host's copy: no allowed container pays for it
  EXPECT_TRUE(a.in_scope(3));

  scope_rules by_cgroup;
  by_cgroup.allow = {{}, {"/machine.slice"}};
  const scope b(by_cgroup, s, rows);
  EXPECT_FALSE(b.in_scope(0));
  EXPECT_TRUE(b.in_scope(1));

  scope_rules by_prefix;
  by_prefix.allow = {{"fedc"}, {}};  // an id prefix of 4 characters
  EXPECT_TRUE(scope(by_prefix, s, rows).in_scope(1));
  by_prefix.allow = {{"fed"}, {}};   // too short to name a container
  EXPECT_FALSE(scope(by_prefix, s, rows).in_scope(1));
}

TEST(scope, deny_wins_over_allow_and_over_other_charges) {
  const auto s = files({{"/shared", "fs"}, {"/web", "fs"}, {"/free", "fs"}});
  const std::vector<container_row> rows = {
      row("docker", "aaaa1111", "web", "/w", {0, 1}),
      row("docker", "bbbb2222", "db", "/d", {0}),
  };
  scope_rules r;
  r.allow = {{"web"}, {}};
  r.deny = {{"db"}, {}};
  const scope sc(r, s, rows);
  EXPECT_FALSE(sc.in_scope(0));  // charged to web and db: db's denial holds
  EXPECT_TRUE(sc.in_scope(1));
  EXPECT_FALSE(sc.in_scope(2));

  scope_rules deny_only;
  deny_only.deny = {{}, {"/d"}};
  const scope d(deny_only, s, rows);
  EXPECT_FALSE(d.in_scope(0));
  EXPECT_TRUE(d.in_scope(1));
  EXPECT_TRUE(d.in_scope(2));  // no allow list: copies charged to no container stay in scope
}

TEST(scope, path_rules_apply_before_container_rules) {
  const auto s = files({{"/in/a", "fs"}, {"/out/b", "fs"}});
  const std::vector<container_row> rows = {row("docker", "aaaa1111", "web", "/w", {0, 1})};
  scope_rules r;
  r.paths = {"/in"};
  r.allow = {{"web"}, {}};
  const scope sc(r, s, rows);
  EXPECT_TRUE(sc.in_scope(0));
  EXPECT_FALSE(sc.in_scope(1));
}

TEST(scope, priority_is_the_highest_of_the_named_containers_paying) {
  const auto s = files({{"/a", "fs"}, {"/b", "fs"}, {"/c", "fs"}, {"/d", "fs"}});
  const std::vector<container_row> rows = {
      row("docker", "aaaa1111", "web", "/w", {0, 1}),
      row("docker", "bbbb2222", "api", "/a", {1, 2}),
      row("docker", "cccc3333", "batch", "/b", {3}),
  };
  scope_rules r;
  r.priority = {{"web", 10}, {"bbbb2222", 20}, {"batch", -5}};
  const scope sc(r, s, rows);
  EXPECT_EQ(sc.priority(0), 10);
  EXPECT_EQ(sc.priority(1), 20);
  EXPECT_EQ(sc.priority(2), 20);
  EXPECT_EQ(sc.priority(3), -5);
  EXPECT_EQ(sc.priority(99), 0);  // a copy no row names
}

TEST(scope, evicts_keep_container_is_priority_one) {
  const auto s = files({{"/a", "fs"}, {"/b", "fs"}});
  const std::vector<container_row> rows = {row("docker", "aaaa1111", "web", "/w", {0})};
  scope_rules r;
  r.priority["web"] = 1;
  const scope sc(r, s, rows);
  EXPECT_EQ(sc.priority(0), 1);
  EXPECT_EQ(sc.priority(1), 0);
  EXPECT_TRUE(sc.in_scope(0));
  EXPECT_TRUE(sc.in_scope(1));  // priorities never narrow the scope
}

TEST(scope, live_containers_are_running_ones_only) {
  const auto s = files({{"/a", "fs"}, {"/b", "fs"}, {"/c", "fs"}, {"/d", "fs"}, {"/e", "fs"}});
  const std::vector<container_row> rows = {
      row("docker", "aaaa1111", "web", "/w", {0}),
      row("docker", "bbbb2222", "old", "", {1}, true),
      row("host", "", "", "/", {2}),
      row("unattributed", "", "", "", {3}),
      row("removed", "cccc3333", "", "/r", {4}),
  };
  const scope sc({}, s, rows);
  EXPECT_TRUE(sc.live_container(0));
  EXPECT_FALSE(sc.live_container(1));
  EXPECT_FALSE(sc.live_container(2));
  EXPECT_FALSE(sc.live_container(3));
  EXPECT_FALSE(sc.live_container(4));
}

TEST(scope, the_daemons_rules_come_from_scope_and_priority) {
  auto c = parse_config(R"(
[scope]
paths = ["/var/lib/containers"]
exclude_paths = ["/var/lib/containers/volumes"]
filesystems = ["btrfs"]
containers = ["web"]
cgroups = ["/kubepods.slice"]
exclude_containers = ["db"]
exclude_cgroups = ["/system.slice"]
[priority]
web = 10
)",
                        "t.toml");
  ASSERT_TRUE(c) << c.err().message();
  const scope_rules r = scope_rules_of(*c);
  EXPECT_EQ(r.paths, std::vector<std::string>{"/var/lib/containers"});
  EXPECT_EQ(r.exclude_paths, std::vector<std::string>{"/var/lib/containers/volumes"});
  EXPECT_EQ(r.filesystems, std::vector<std::string>{"btrfs"});
  EXPECT_EQ(r.allow.containers, std::vector<std::string>{"web"});
  EXPECT_EQ(r.allow.cgroups, std::vector<std::string>{"/kubepods.slice"});
  EXPECT_EQ(r.deny.containers, std::vector<std::string>{"db"});
  EXPECT_EQ(r.deny.cgroups, std::vector<std::string>{"/system.slice"});
  EXPECT_EQ(r.priority, (std::map<std::string, int>{{"web", 10}}));
}

}  // namespace
}  // namespace dupcache::policy
