// SPDX-License-Identifier: GPL-2.0-only
// Per-container accounting on hand-built scans: the waste split, its rounding, unattributed
// pages, the filters; page-charge run edits; the memory hierarchy choice; runtime names.

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>

#include "cgroup/accounting.hpp"
#include "cgroup/hierarchy.hpp"
#include "cgroup/names.hpp"
#include "scan/charges.hpp"

namespace dupcache::cgroup {
namespace {

constexpr std::uint64_t ps = 4096;

// A scan of copies of one extent: copy i caches pages [0, pages[i]) of a file placed at
// physical 0 of domain "fs", its pages charged as charges[i] says.
struct scene {
  scan_result scan{ps};
  void copy(std::uint64_t pages, std::vector<charge_run> charges, std::uint64_t file_pages = 0) {
    const copy_id id = scan.index.intern_copy({"fs", 0, scan.files.size() + 1});
    scan.files.resize(id + 1);
    scan.charges.resize(id + 1);
    scan.placements.resize(id + 1);
    scan.files[id] = {"/c" + std::to_string(id), pages * ps, 0};
    scan.index.add(id, scan.index.intern_domain("fs"), 0, pages * ps);
    scan.charges[id] = std::move(charges);
    scan.placements[id] = {{"fs", 0, file_pages ? file_pages : pages, 0, true}};
    scan.attributed = true;
  }
  std::vector<container_row> rows() {
    return account(scan, [](std::uint64_t ino) {
      charge_owner o;
      o.ref.runtime = "docker";
      o.ref.id = "c" + std::to_string(ino);
      o.ref.cgroup = "/system.slice/docker-" + std::to_string(ino) + ".scope";
      return o;
    });
  }
};

std::map<std::string, std::uint64_t> wasted_pages(const std::vector<container_row>& rows) {
  std::map<std::string, std::uint64_t> out;
  for (const auto& r : rows) out[r.runtime == "docker" ? r.id : r.runtime] = r.wasted_bytes / ps;
  return out;
}

TEST(account, each_copy_pays_an_equal_share_per_page) {
  scene s;
  // Pages 0-1 of copy 0 charged to 10, pages 2-3 to 20; copy 1 wholly to 30. 4 pages, 2
  // copies: 4 wasted pages, half a page per copy per page.
  s.copy(4, {{0, 2, 10}, {2, 2, 20}});
  s.copy(4, {{0, 4, 30}});
  const auto rows = s.rows();
  EXPECT_EQ(wasted_pages(rows), (std::map<std::string, std::uint64_t>{{"c10", 1}, {"c20", 1}, {"c30", 2}}));
  for (const auto& r : rows) {
    if (r.id == "c30") {
      EXPECT_EQ(r.cached_bytes, 4 * ps);
      EXPECT_EQ(r.shared_cached_bytes, 4 * ps);
      ASSERT_EQ(r.shared_with.size(), 2u);
      EXPECT_EQ(r.shared_with[0].bytes, 2 * ps);
    }
  }
}

// Equal remainders go by the rows' identity, not by the order the scanner's threads met the
// copies in: the same cache gives the same bytes per row on every run.
TEST(account, ties_in_rounding_do_not_depend_on_scan_order) {
  auto shares = [](const std::vector<std::uint64_t>& order) {
    scene s;
    for (std::uint64_t cg : order) s.copy(1, {{0, 1, cg}});
    return wasted_pages(s.rows());
  };
  const auto first = shares({1, 2, 3});
  // Two pages to give for three equal 2/3 shares: the first two rows by id get them.
  EXPECT_EQ(first, (std::map<std::string, std::uint64_t>{{"c1", 1}, {"c2", 1}, {"c3", 0}}));
  EXPECT_EQ(shares({3, 2, 1}), first);
  EXPECT_EQ(shares({2, 3, 1}), first);
}

// A stopped container's pages are charged to an ancestor (the host here); where the files live
// puts them back on the container, marked stopped. Copies the lookup does not place stay put.
TEST(account, pages_of_stopped_containers_go_by_file_location) {
  scene s;
  s.copy(4, {{0, 4, 7}});
  s.copy(4, {{0, 4, 7}});
  s.copy(4, {{0, 4, 8}});
  const auto rows = account(
      s.scan,
      [](std::uint64_t ino) {
        charge_owner o;
        if (ino == 8) {
          o.ref.runtime = "docker";
          o.ref.id = "live";
          o.ref.cgroup = "/docker/live";
        }
        return o;  // 7: the host
      },
      true,
      [](copy_id c) -> std::optional<charge_owner> {
        if (c != 1) return std::nullopt;
        charge_owner o;
        o.ref.runtime = "docker";
        o.ref.id = "gone";
        o.name = "web-3";
        return o;
      });
  std::map<std::string, std::pair<std::uint64_t, bool>> got;
  for (const auto& r : rows) got[r.runtime + ":" + r.id] = {r.cached_bytes / ps, r.stopped};
  EXPECT_EQ(got, (std::map<std::string, std::pair<std::uint64_t, bool>>{
                     {"host:", {4, false}}, {"docker:gone", {4, true}}, {"docker:live", {4, false}}}));
  std::uint64_t wasted = 0;
  for (const auto& r : rows) wasted += r.wasted_bytes / ps;
  EXPECT_EQ(wasted, 8u);
}

TEST(account, fractions_are_rounded_so_the_parts_add_up_exactly) {
  scene s;
  // One page, three copies: 2 wasted pages, 2/3 each; two containers get a page, one none.
  s.copy(1, {{0, 1, 1}});
  s.copy(1, {{0, 1, 2}});
  s.copy(1, {{0, 1, 3}});
  auto rows = s.rows();
  std::uint64_t sum = 0, ones = 0;
  for (const auto& r : rows) {
    sum += r.wasted_bytes;
    ones += r.wasted_bytes == ps;
  }
  EXPECT_EQ(sum, 2 * ps);
  EXPECT_EQ(ones, 2u);
  EXPECT_EQ(sum, s.scan.index.wasted_bytes());
}

TEST(account, a_third_and_a_half_make_whole_pages_across_groups) {
  scene s;
  // Copy 0 and 1 hold 3 pages; copy 2 holds the first 2 only (the file is 3 pages long).
  // Pages 0-1: 3 copies (2/3 each); page 2: 2 copies (1/2 each). Container 7 owns copy 0:
  // 2 x 2/3 + 1/2 = 11/6 pages; 8 the same; 9: 4/3. Total 5 = 1 + 1 + 1 whole, 2 by remainder:
  // 7 and 8 (5/6 each) before 9 (1/3).
  s.copy(3, {{0, 3, 7}});
  s.copy(3, {{0, 3, 8}});
  s.copy(2, {{0, 2, 9}}, 3);
  EXPECT_EQ(wasted_pages(s.rows()), (std::map<std::string, std::uint64_t>{{"c7", 2}, {"c8", 2}, {"c9", 1}}));
}

TEST(account, pages_without_a_known_charge_are_unattributed_never_guessed) {
  scene s;
  s.copy(4, {{0, 2, 5}});  // pages 2-3 cached, charge unknown
  s.copy(4, {});           // no charges read at all
  const auto rows = s.rows();
  auto w = wasted_pages(rows);
  EXPECT_EQ(w["c5"], 1u);
  EXPECT_EQ(w["unattributed"], 3u);
  for (const auto& r : rows) {
    if (r.unattributed()) {
      EXPECT_EQ(r.cached_bytes, 6 * ps);
    }
    if (r.id == "c5") {
      EXPECT_EQ(r.cached_bytes, 2 * ps);
    }
  }
  // And with no usable charges at all, everything is.
  const auto none = account(s.scan, [](std::uint64_t) { return charge_owner{}; }, false);
  ASSERT_EQ(none.size(), 1u);
  EXPECT_TRUE(none[0].unattributed());
  EXPECT_EQ(none[0].wasted_bytes, 4 * ps);
}

TEST(account, removed_cgroups_and_the_host_are_rows_of_their_own) {
  scene s;
  s.copy(2, {{0, 2, 40}});
  s.copy(2, {{0, 2, 41}});
  const auto rows = account(s.scan, [](std::uint64_t ino) {
    charge_owner o;
    o.known = ino != 41;
    return o;
  });
  ASSERT_EQ(rows.size(), 2u);
  std::map<std::string, std::string> got;
  for (const auto& r : rows) got[r.runtime] = r.id + "|" + r.cgroup;
  EXPECT_EQ(got, (std::map<std::string, std::string>{{"host", "|/"}, {"removed", "cgroup-ino-41|"}}));
}

TEST(account, filters) {
  container_row r;
  r.runtime = "containerd";
  r.id = std::string(64, 'e');
  r.name = "default/web/nginx";
  r.pod_uid = "1234-5678";
  r.cgroup = "/kubepods.slice/kubepods-pod1234_5678.slice/cri-containerd-eee.scope";
  EXPECT_TRUE(matches_container(r, "default/web/nginx"));
  EXPECT_TRUE(matches_container(r, "eeee"));
  EXPECT_FALSE(matches_container(r, "eee"));  // too short a prefix to mean one container
  EXPECT_TRUE(matches_container(r, "1234-5678"));
  EXPECT_FALSE(matches_container(r, ""));
  EXPECT_TRUE(matches_cgroup(r, "/kubepods.slice"));
  EXPECT_TRUE(matches_cgroup(r, "/kubepods.slice/"));
  EXPECT_TRUE(matches_cgroup(r, "/"));
  EXPECT_FALSE(matches_cgroup(r, "/kubepods"));  // a component, not a string prefix
  container_row u;
  u.runtime = "unattributed";
  EXPECT_FALSE(matches_cgroup(u, "/"));
}

TEST(charges, set_and_clear_keep_runs_sorted_and_merged) {
  std::vector<charge_run> runs;
  set_charge(runs, 10, 5, 1);
  set_charge(runs, 15, 5, 1);
  EXPECT_EQ(runs, (std::vector<charge_run>{{10, 10, 1}}));
  set_charge(runs, 12, 2, 2);
  EXPECT_EQ(runs, (std::vector<charge_run>{{10, 2, 1}, {12, 2, 2}, {14, 6, 1}}));
  set_charge(runs, 0, 3, 3);
  clear_charge(runs, 11, 5);
  EXPECT_EQ(runs, (std::vector<charge_run>{{0, 3, 3}, {10, 1, 1}, {16, 4, 1}}));
  set_charge(runs, 11, 5, 1);
  EXPECT_EQ(runs, (std::vector<charge_run>{{0, 3, 3}, {10, 10, 1}}));
  clear_charge(runs, 0, 100);
  EXPECT_TRUE(runs.empty());
  clear_charge(runs, 0, 1);
  append_charge(runs, 0, 1, 4);
  append_charge(runs, 1, 1, 4);
  append_charge(runs, 3, 1, 4);
  EXPECT_EQ(runs, (std::vector<charge_run>{{0, 2, 4}, {3, 1, 4}}));
}

mount_entry cg(std::string type, std::string mp, std::string super, std::string root = "/") {
  mount_entry m;
  m.fstype = std::move(type);
  m.mount_point = std::move(mp);
  m.super_options = std::move(super);
  m.root = std::move(root);
  return m;
}

TEST(hierarchy, hybrid_hosts_use_the_v1_memory_hierarchy) {
  const std::vector<mount_entry> hybrid{cg("cgroup", "/sys/fs/cgroup/cpu", "rw,cpu"),
                                        cg("cgroup2", "/sys/fs/cgroup/unified", "rw"),
                                        cg("cgroup", "/sys/fs/cgroup/memory", "rw,memory")};
  auto h = pick_memory_hierarchy(hybrid, [](const std::string&) { return false; });
  ASSERT_TRUE(h);
  EXPECT_EQ(h->mount_point, "/sys/fs/cgroup/memory");
  EXPECT_EQ(h->version, 1);
  // "memory" must be a whole option, not part of one.
  EXPECT_FALSE(pick_memory_hierarchy(std::vector<mount_entry>{cg("cgroup", "/x", "rw,memory_recursiveprot")},
                                     [](const std::string&) { return false; }));
}

TEST(hierarchy, pure_v2_uses_the_mount_that_offers_memory) {
  const std::vector<mount_entry> v2{cg("cgroup2", "/sys/fs/cgroup/sub", "rw", "/sub"),
                                    cg("cgroup2", "/sys/fs/cgroup", "rw,nsdelegate")};
  auto h = pick_memory_hierarchy(v2, [](const std::string& mp) { return mp == "/sys/fs/cgroup"; });
  ASSERT_TRUE(h);
  EXPECT_EQ(h->mount_point, "/sys/fs/cgroup");
  EXPECT_EQ(h->version, 2);
  EXPECT_FALSE(pick_memory_hierarchy(v2, [](const std::string&) { return false; }));
}

class names_test : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/dupcache-names-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    root_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(root_); }
  void put(const std::string& rel, const std::string& text) {
    std::filesystem::create_directories(std::filesystem::path(root_ + rel).parent_path());
    std::ofstream(root_ + rel) << text;
  }
  std::string root_;
};

const std::string hex_a(64, 'a');
const std::string hex_b(64, 'b');

TEST_F(names_test, every_runtime_from_its_own_metadata) {
  put("/var/lib/docker/containers/" + hex_a + "/config.v2.json", R"({"Name": "/web", "Id": "x"})");
  put("/var/lib/containers/storage/overlay-containers/containers.json",
      R"([{"id": ")" + hex_b + R"(", "names": ["db"]}, {"id": 5}])");
  put("/var/log/containers/api-7d9_prod_server-" + hex_a + ".log", "");
  put("/var/log/pods/prod_api-7d9_1234-5678/server/0.log", "");
  name_resolver n(root_);
  EXPECT_EQ(n.name({"docker", hex_a, "/", "", "", false}), "web");
  EXPECT_EQ(n.name({"podman", hex_b, "/", "", "", false}), "db");
  EXPECT_EQ(n.name({"containerd", hex_a, "/", "1234-5678", "burstable", false}), "prod/api-7d9/server");
  EXPECT_EQ(n.name({"kubernetes", "1234-5678", "/", "1234-5678", "burstable", false}), "prod/api-7d9");
  EXPECT_EQ(n.name({"cri-o", hex_b, "/", "1234-5678", "", false}), "prod/api-7d9/bbbbbbbbbbbb");
  EXPECT_EQ(n.name({"lxc", "web", "/", "", "", false}), "web");
  EXPECT_EQ(n.name({"docker", hex_b, "/", "", "", false}), "");  // no metadata: the id names it
  EXPECT_EQ(n.name({}), "");
}

TEST_F(names_test, hostile_metadata_is_ignored_or_made_printable) {
  put("/var/lib/docker/containers/" + hex_a + "/config.v2.json", "{\"Name\": \"/we\\u001b[2Jb\"}");
  put("/var/lib/docker/containers/" + hex_b + "/config.v2.json", "{not json");
  put("/var/lib/containers/storage/overlay-containers/containers.json", R"({"id": "not an array"})");
  name_resolver n(root_);
  EXPECT_EQ(n.name({"docker", hex_a, "/", "", "", false}), "we?[2Jb");
  EXPECT_EQ(n.name({"docker", hex_b, "/", "", "", false}), "");
  EXPECT_EQ(n.name({"podman", hex_b, "/", "", "", false}), "");
}

}  // namespace
}  // namespace dupcache::cgroup
