// SPDX-License-Identifier: GPL-2.0-only
// dupcache doctor on this machine: each check's verdict against what the test finds itself.

#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <optional>

#include "cli_test.hpp"

namespace dupcache::testing {
namespace {

using nlohmann::json;

struct doctor_line {
  std::string status, detail;
};

// Text lines are "NAME  STATUS  DETAIL"; names may hold spaces ("hook fentry"), so look them up.
std::optional<doctor_line> doctor_find(const std::vector<std::string>& lines, const std::string& name) {
  for (const auto& l : lines) {
    if (!starts_with(l, name + " ")) continue;
    auto rest = tokens(l.substr(name.size()));
    if (rest.empty()) return doctor_line{};
    doctor_line d;
    d.status = rest[0];
    std::size_t pos = l.find(rest[0], name.size()) + rest[0].size();
    if (d.status == "not" && rest.size() > 1 && rest[1] == "tried") {
      d.status = "not tried";
      pos = l.find("tried", pos) + 5;
    }
    const auto first = l.find_first_not_of(' ', pos);
    d.detail = first == std::string::npos ? "" : l.substr(first);
    return d;
  }
  return std::nullopt;
}

// The first cgroup2 mount point, from the test's own reading of mountinfo.
std::string cgroup2_mount() {
  std::ifstream in("/proc/self/mountinfo");
  for (std::string line; std::getline(in, line);) {
    const auto dash = line.find(" - ");
    if (dash == std::string::npos) continue;
    const auto before = tokens(line.substr(0, dash));
    const auto after = tokens(line.substr(dash + 3));
    if (!after.empty() && after[0] == "cgroup2" && before.size() > 4) return before[4];
  }
  return "";
}

bool cachestat_works() {
#ifndef __NR_cachestat
  constexpr long nr_cachestat = 451;
#else
  constexpr long nr_cachestat = __NR_cachestat;
#endif
  const int fd = memfd_create("cli-live-test", MFD_CLOEXEC);
  if (fd < 0) return false;
  struct {
    std::uint64_t off, len;
  } range{0, 0};
  std::uint64_t out[5] = {};
  const long rc = syscall(nr_cachestat, fd, &range, out, 0);
  close(fd);
  return rc == 0;
}

TEST(Doctor, ReportsThisMachine) {
  DUPCACHE_REQUIRE_ROOT("setpriv");
  auto r = run({DUPCACHE_BINARY, "doctor"}, 60);
  ASSERT_EQ(r.status, 0) << r.err;
  const auto lines = split_lines(r.out);

  const bool btf = access("/sys/kernel/btf/vmlinux", R_OK) == 0;
  auto l = doctor_find(lines, "btf");
  ASSERT_TRUE(l) << r.out;
  EXPECT_EQ(l->status, btf ? "ok" : "missing") << r.out;

  l = doctor_find(lines, "cachestat");
  ASSERT_TRUE(l) << r.out;
  EXPECT_EQ(l->status, cachestat_works() ? "ok" : "missing") << r.out;
  // The version lines agree with the probe on this kernel, which is in the tested matrix (6.18).
  l = doctor_find(lines, "kernel 6.5 cachestat");
  ASSERT_TRUE(l) << r.out;
  EXPECT_EQ(l->status, cachestat_works() ? "ok" : "missing") << r.out;
  l = doctor_find(lines, "kernel support");
  ASSERT_TRUE(l) << r.out;
  EXPECT_EQ(l->status, "ok") << r.out;

  // On this machine's kernel fentry programs are refused (DESIGN.md): rejected, with the reason.
  l = doctor_find(lines, "hook fentry");
  ASSERT_TRUE(l) << r.out;
  EXPECT_EQ(l->status, "rejected") << r.out;
  EXPECT_FALSE(l->detail.empty()) << r.out;
  EXPECT_NE(l->detail, "rejected") << "a rejected hook needs its reason: " << r.out;

  l = doctor_find(lines, "hook tp_btf");
  ASSERT_TRUE(l) << r.out;
  EXPECT_EQ(l->status, "ok") << r.out;

  const std::string v2 = cgroup2_mount();
  l = doctor_find(lines, "cgroup");
  ASSERT_TRUE(l) << r.out;
  if (!v2.empty()) {
    EXPECT_EQ(l->status, "ok") << r.out;
    EXPECT_TRUE(contains(l->detail, "v2")) << l->detail;
    EXPECT_TRUE(contains(l->detail, v2)) << "the cgroup v2 mount point " << v2 << " is not named: " << l->detail;
  }

  // As root on this kernel (5.12 and later), with no unbindable mount here: the nodev copy.
  l = doctor_find(lines, "file opening");
  ASSERT_TRUE(l) << r.out;
  EXPECT_EQ(l->status, "ok") << r.out;
  EXPECT_TRUE(contains(l->detail, "nodev copy")) << l->detail;
  // Not root: the copy is refused, and doctor says so and what scans do instead.
  auto nobody = run({"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", DUPCACHE_BINARY, "doctor"}, 60);
  ASSERT_EQ(nobody.status, 0) << nobody.err;
  l = doctor_find(split_lines(nobody.out), "file opening");
  ASSERT_TRUE(l) << nobody.out;
  EXPECT_EQ(l->status, "info") << nobody.out;
  EXPECT_TRUE(contains(l->detail, "open_tree")) << l->detail;
  EXPECT_TRUE(contains(l->detail, "O_PATH")) << l->detail;

  auto rj = run({DUPCACHE_BINARY, "doctor", "--json"}, 60);
  ASSERT_EQ(rj.status, 0) << rj.err;
  json j;
  ASSERT_NO_THROW(j = json::parse(rj.out)) << rj.out;
  ASSERT_TRUE(j.is_array()) << rj.out;
  ASSERT_FALSE(j.empty());
  std::map<std::string, std::string> status_of;
  for (const auto& c : j) {
    ASSERT_TRUE(c.is_object()) << c.dump();
    EXPECT_EQ(c.size(), 3u) << c.dump();
    ASSERT_TRUE(c.contains("check") && c["check"].is_string()) << c.dump();
    ASSERT_TRUE(c.contains("status") && c["status"].is_string()) << c.dump();
    ASSERT_TRUE(c.contains("detail") && c["detail"].is_string()) << c.dump();
    status_of[c["check"].get<std::string>()] = c["status"].get<std::string>();
  }
  EXPECT_EQ(j.size(), lines.size()) << "the JSON and the text should list the same checks";
  EXPECT_EQ(status_of["btf"], btf ? "ok" : "missing");
  EXPECT_EQ(status_of["hook fentry"], "rejected");
  EXPECT_EQ(status_of["hook tp_btf"], "ok");
}


}  // namespace
}  // namespace dupcache::testing
