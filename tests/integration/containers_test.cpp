// SPDX-License-Identifier: GPL-2.0-only
// Per-container accounting on real scenes: a btrfs image directory reflinked into container
// root filesystems, processes in real memory cgroups named by each runtime's convention, each
// reading its own rootfs from a mount namespace of its own, chrooted into it.

#include <gtest/gtest.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <memory>

#include "fs_fixture.hpp"

namespace dupcache::testing {
namespace {

const std::string docker_id(64, 'a');
const std::string cri_id = std::string(63, 'b') + "1";
const std::string podman_id = std::string(62, 'c') + "22";
const std::string pod_uid = "0f3c2a4e-9d1b-4c55-8a6e-2b7d9e1f0a11";

// The scene. lib.so: 62 pages; A, B and C read all of it, D its first 32 pages. A also reads a
// 16-page file of its own. So the first 32 physical pages have 4 copies (waste 3 x 32), the
// last 30 have 3 (waste 2 x 30): 156 wasted pages. Each copy pays (k-1)/k of a page:
// A, B, C: 32 x 3/4 + 30 x 2/3 = 24 + 20 = 44 pages; D: 24 pages. 44 x 3 + 24 = 156.
class container_scene : public ::testing::Test {
 protected:
  void SetUp() override {
    DUPCACHE_REQUIRE_ROOT("mkfs.btrfs");
    if (!memory_hierarchy()) {
      if (under_ci()) FAIL() << "CI=true and there is no memory cgroup hierarchy";
      GTEST_SKIP() << "no memory cgroup hierarchy (memory controller not mounted)";
    }
    ps_ = page_size();
    char tmpl[] = "/tmp/dupcache-containers-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    side_ = tmpl;  // outside the scanned filesystem
    fs_ = std::make_unique<scratch_fs>("btrfs");
    std::filesystem::create_directories(fs_->path("image"));
    write_file(fs_->path("image/lib.so"), 62 * ps_, 1);
    for (const char* c : {"a", "b", "c", "d"}) {
      std::filesystem::create_directories(fs_->path(std::string("rootfs/") + c));
      reflink(fs_->path("image/lib.so"), fs_->path(std::string("rootfs/") + c + "/lib.so"));
    }
    write_file(fs_->path("rootfs/a/own.dat"), 16 * ps_, 2);
    for (const auto& p : {"image/lib.so", "rootfs/a/lib.so", "rootfs/b/lib.so", "rootfs/c/lib.so", "rootfs/d/lib.so",
                          "rootfs/a/own.dat"}) {
      evict(fs_->path(p));
    }
    const std::string base = "dupcache-test-" + std::to_string(getpid()) + ".slice";
    a_ = std::make_unique<test_cgroup>(base + "/system.slice/docker-" + docker_id + ".scope");
    b_ = std::make_unique<test_cgroup>(base + "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" +
                                       under(pod_uid) + ".slice/cri-containerd-" + cri_id + ".scope");
    c_ = std::make_unique<test_cgroup>(base + "/machine.slice/libpod-" + podman_id + ".scope");
    d_ = std::make_unique<test_cgroup>(base + "/lxc.payload.web");
  }

  void TearDown() override {
    // Charged pages keep a removed cgroup alive: evict them before the cgroups go.
    if (fs_) {
      for (const auto& p : {"rootfs/a/lib.so", "rootfs/b/lib.so", "rootfs/c/lib.so", "rootfs/d/lib.so",
                            "rootfs/a/own.dat"}) {
        try {
          evict(fs_->path(p));
        } catch (...) {
        }
      }
    }
    // a_ made the shared parents: it goes last.
    d_.reset();
    c_.reset();
    b_.reset();
    a_.reset();
    fs_.reset();
    if (!side_.empty()) std::filesystem::remove_all(side_);
  }

  static std::string under(std::string s) {
    for (auto& ch : s) ch = ch == '-' ? '_' : ch;
    return s;
  }

  void read_scene() {
    const std::uint64_t ps = ps_;
    a_->run_in(fs_->path("rootfs/a"), [] { read_all("/lib.so"); read_all("/own.dat"); });
    b_->run_in(fs_->path("rootfs/b"), [] { read_all("/lib.so"); });
    c_->run_in(fs_->path("rootfs/c"), [] { read_all("/lib.so"); });
    d_->run_in(fs_->path("rootfs/d"), [ps] { read_range("/lib.so", 0, 32 * ps); });
  }

  static const nlohmann::json* row(const nlohmann::json& doc, const std::string& runtime) {
    for (const auto& c : doc["containers"]) {
      if (c["runtime"] == runtime) return &c;
    }
    return nullptr;
  }

  // `dupcache top --json ARGS... <fs>` in the background, its documents going to out_path.
  pid_t start_top(const std::string& out_path, std::vector<std::string> args) {
    const pid_t pid = fork();
    if (pid != 0) return pid;
    const int fd = open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) _exit(126);
    dup2(fd, 1);
    std::vector<std::string> argv{DUPCACHE_BINARY, "top", "--json"};
    argv.insert(argv.end(), args.begin(), args.end());
    argv.push_back(fs_->dir());
    std::vector<char*> c;
    for (auto& a : argv) c.push_back(a.data());
    c.push_back(nullptr);
    execv(c[0], c.data());
    _exit(127);
  }
  static std::vector<std::string> lines_of(const std::string& path) {
    std::ifstream f(path);
    std::vector<std::string> v;
    for (std::string l; std::getline(f, l);) v.push_back(l);
    return v;
  }

  std::uint64_t ps_ = 0;
  std::unique_ptr<scratch_fs> fs_;
  std::unique_ptr<test_cgroup> a_, b_, c_, d_;
  std::string side_;
};

TEST_F(container_scene, OneShotChargesEachContainerItsShareExactly) {
  read_scene();
  int status = -1;
  auto doc = report_json({"--by", "container", fs_->dir()}, &status);
  ASSERT_EQ(status, 0);
  ASSERT_EQ(doc["totals"]["wasted_bytes"], 156 * ps_);
  ASSERT_EQ(doc["totals"]["cached_bytes"], (62 * 3 + 32 + 16) * ps_);
  ASSERT_EQ(doc["containers"].size(), 4u) << doc["containers"].dump(1);
  EXPECT_EQ(doc["attribution"]["method"], "kpagecgroup");

  const auto* a = row(doc, "docker");
  const auto* b = row(doc, "containerd");
  const auto* c = row(doc, "podman");
  const auto* d = row(doc, "lxc");
  ASSERT_TRUE(a && b && c && d) << doc["containers"].dump(1);
  EXPECT_EQ((*a)["id"], docker_id);
  EXPECT_EQ((*a)["cgroup"], a_->rel());
  EXPECT_EQ((*a)["cached_bytes"], 78 * ps_);
  EXPECT_EQ((*a)["shared_cached_bytes"], 62 * ps_);
  EXPECT_EQ((*a)["wasted_bytes"], 44 * ps_);
  EXPECT_EQ((*b)["id"], cri_id);
  EXPECT_EQ((*b)["pod_uid"], pod_uid);
  EXPECT_EQ((*b)["qos"], "burstable");
  EXPECT_EQ((*b)["cgroup"], b_->rel());
  EXPECT_EQ((*b)["cached_bytes"], 62 * ps_);
  EXPECT_EQ((*b)["wasted_bytes"], 44 * ps_);
  EXPECT_EQ((*c)["id"], podman_id);
  EXPECT_EQ((*c)["cached_bytes"], 62 * ps_);
  EXPECT_EQ((*c)["wasted_bytes"], 44 * ps_);
  EXPECT_EQ((*d)["id"], "web");
  EXPECT_EQ((*d)["name"], "web");
  EXPECT_EQ((*d)["cached_bytes"], 32 * ps_);
  EXPECT_EQ((*d)["wasted_bytes"], 24 * ps_);

  // Its duplicated file, and who holds the other copies: D shares its 32 pages with each of
  // the others; A shares all 62 with B and C, and 32 with D.
  ASSERT_EQ((*a)["files"].size(), 1u);
  EXPECT_EQ((*a)["files"][0]["path"], fs_->path("rootfs/a/lib.so"));
  EXPECT_EQ((*a)["files"][0]["shared_cached_bytes"], 62 * ps_);
  std::map<std::string, std::uint64_t> peers;
  for (const auto& p : (*a)["shared_with"]) peers[p["runtime"]] = p["bytes"];
  EXPECT_EQ(peers, (std::map<std::string, std::uint64_t>{{"containerd", 62 * ps_}, {"podman", 62 * ps_}, {"lxc", 32 * ps_}}));
  peers.clear();
  for (const auto& p : (*d)["shared_with"]) peers[p["runtime"]] = p["bytes"];
  EXPECT_EQ(peers, (std::map<std::string, std::uint64_t>{{"containerd", 32 * ps_}, {"podman", 32 * ps_}, {"docker", 32 * ps_}}));

  // Measuring disturbed nothing.
  EXPECT_EQ(cached_pages(fs_->path("rootfs/d/lib.so")), 32u);
  EXPECT_EQ(cached_pages(fs_->path("image/lib.so")), 0u);
}

// Names come from the runtimes' metadata files: Docker's config.v2.json, kubelet's log links.
TEST_F(container_scene, NamesFromRuntimeMetadata) {
  read_scene();
  const std::string meta = side_ + "/meta";
  std::filesystem::create_directories(meta + "/var/lib/docker/containers/" + docker_id);
  std::ofstream(meta + "/var/lib/docker/containers/" + docker_id + "/config.v2.json") << R"({"Name": "/web-frontend"})";
  std::filesystem::create_directories(meta + "/var/log/containers");
  std::ofstream(meta + "/var/log/containers/api-5f7_shop_server-" + cri_id + ".log");
  int status = -1;
  auto doc = report_json({"--by", "container", "--metadata-root", meta, fs_->dir()}, &status);
  ASSERT_EQ(status, 0);
  const auto* a = row(doc, "docker");
  const auto* b = row(doc, "containerd");
  ASSERT_TRUE(a && b) << doc["containers"].dump(1);
  EXPECT_EQ((*a)["name"], "web-frontend");
  EXPECT_EQ((*b)["name"], "shop/api-5f7/server");
  // And the filter takes the name.
  doc = report_json({"--by", "container", "--metadata-root", meta, "--container", "web-frontend", fs_->dir()}, &status);
  ASSERT_EQ(status, 0);
  ASSERT_EQ(doc["containers"].size(), 1u);
  EXPECT_EQ(doc["containers"][0]["id"], docker_id);
}

TEST_F(container_scene, FiltersSelectContainersAndTheirFiles) {
  read_scene();
  int status = -1;
  auto doc = report_json({"--by", "container,file", "--container", "web", fs_->dir()}, &status);
  ASSERT_EQ(status, 0);
  ASSERT_EQ(doc["containers"].size(), 1u);
  EXPECT_EQ(doc["containers"][0]["runtime"], "lxc");
  ASSERT_EQ(doc["files"].size(), 1u);
  EXPECT_EQ(doc["files"][0]["path"], fs_->path("rootfs/d/lib.so"));
  // Totals stay those of the whole scan.
  EXPECT_EQ(doc["totals"]["wasted_bytes"], 156 * ps_);

  doc = report_json({"--by", "container", "--container", docker_id.substr(0, 12), "--container", pod_uid,
                     fs_->dir()},
                    &status);
  ASSERT_EQ(status, 0);
  ASSERT_EQ(doc["containers"].size(), 2u);

  const std::string slice = a_->rel().substr(0, a_->rel().find(".slice/") + 6);
  doc = report_json({"--by", "container", "--cgroup", slice + "/kubepods.slice", fs_->dir()}, &status);
  ASSERT_EQ(status, 0);
  ASSERT_EQ(doc["containers"].size(), 1u);
  EXPECT_EQ(doc["containers"][0]["id"], cri_id);

  // A name no container has is a usage error that lists the known names; a known container
  // with nothing cached under the PATHs is a runtime error.
  auto none = run({DUPCACHE_BINARY, "report", "--container", "nosuchcontainer", fs_->dir()});
  EXPECT_EQ(none.status, 2);
  EXPECT_NE(none.err.find("--container nosuchcontainer: no such container (known: "), std::string::npos) << none.err;
  EXPECT_NE(none.err.find("web"), std::string::npos) << none.err;
  for (const char* cmd : {"evict", "top"}) {
    std::vector<std::string> argv{DUPCACHE_BINARY, cmd, "--container", "nosuchcontainer"};
    if (std::string(cmd) == "top") argv.insert(argv.end(), {"-b", "-n", "1", "--no-bpf"});
    else argv.push_back("--dry-run");
    argv.push_back(fs_->dir());
    auto r = run(argv);
    EXPECT_EQ(r.status, 2) << cmd << ": " << r.err;
    EXPECT_NE(r.err.find("--container nosuchcontainer: no such container"), std::string::npos) << cmd << ": " << r.err;
  }
  auto keep = run({DUPCACHE_BINARY, "evict", "--dry-run", "--keep-container", "nosuchcontainer", fs_->dir()});
  EXPECT_EQ(keep.status, 2) << keep.err;
  EXPECT_NE(keep.err.find("--keep-container nosuchcontainer: no such container"), std::string::npos) << keep.err;
  auto empty = run({DUPCACHE_BINARY, "report", "--container", "web", side_});
  EXPECT_EQ(empty.status, 1) << empty.err;
}

// Live: top attached before anything is read; the reads happen while it traces, and its last
// document must hold the same exact per-container numbers as the one-shot report.
TEST_F(container_scene, LiveTopChargesTheSameAsOneShot) {
  const std::string out_path = side_ + "/top.out";
  const pid_t pid = start_top(out_path, {"--view", "containers", "-d", "1.5", "-n", "3"});
  ASSERT_GE(pid, 0);
  auto lines = [&] { return lines_of(out_path); };
  // The first document: the tracer is attached and the seed done.
  for (int i = 0; i < 400 && lines().empty(); ++i) usleep(50'000);
  ASSERT_FALSE(lines().empty()) << "top printed no document";
  auto first = nlohmann::json::parse(lines().front());
  EXPECT_EQ(first["totals"]["cached_bytes"], 0u);
  EXPECT_EQ(first["containers"].size(), 0u);
  read_scene();
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  auto all = lines();
  ASSERT_EQ(all.size(), 3u);
  auto doc = nlohmann::json::parse(all.back());
  ASSERT_TRUE(doc.at("mode").get<std::string>().rfind("live", 0) == 0) << doc.at("mode");
  ASSERT_EQ(doc["lost_events"], 0u);
  ASSERT_EQ(doc["totals"]["wasted_bytes"], 156 * ps_);
  ASSERT_EQ(doc["containers"].size(), 4u) << doc["containers"].dump(1);
  const std::map<std::string, std::pair<std::uint64_t, std::uint64_t>> want{
      {"docker", {78 * ps_, 44 * ps_}},
      {"containerd", {62 * ps_, 44 * ps_}},
      {"podman", {62 * ps_, 44 * ps_}},
      {"lxc", {32 * ps_, 24 * ps_}}};
  std::map<std::string, std::pair<std::uint64_t, std::uint64_t>> got;
  for (const auto& c : doc["containers"]) got[c["runtime"]] = {c["cached_bytes"], c["wasted_bytes"]};
  EXPECT_EQ(got, want);
}

// Live, each insertion carries its own memcg: one file read half by one container and half by
// another is charged page by page to each, from the events (the second read needs no re-read
// of the file: its extents are known by then).
TEST_F(container_scene, LiveChargesFollowEachInsertionsCgroup) {
  const std::string out_path = side_ + "/top2.out";
  const pid_t pid = start_top(out_path, {"-d", "1", "-n", "4"});
  ASSERT_GE(pid, 0);
  auto lines = [&] { return lines_of(out_path); };
  for (int i = 0; i < 400 && lines().empty(); ++i) usleep(50'000);
  ASSERT_FALSE(lines().empty()) << "top printed no document";
  const std::uint64_t ps = ps_;
  a_->run_in(fs_->path("rootfs/a"), [ps] { read_range("/lib.so", 0, 32 * ps); });
  usleep(1'200'000);  // top has applied it (and resolved the file) by now
  d_->run_in(fs_->path("rootfs"), [ps] { read_range("/a/lib.so", 32 * ps, 30 * ps); });
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  auto doc = nlohmann::json::parse(lines().back());
  std::map<std::string, std::uint64_t> cached;
  for (const auto& c : doc["containers"]) cached[c["runtime"]] = c["cached_bytes"];
  EXPECT_EQ(cached, (std::map<std::string, std::uint64_t>{{"docker", 32 * ps_}, {"lxc", 30 * ps_}}))
      << doc["containers"].dump(1);
  // The one-shot report reads the same charges from the page frames.
  int st = -1;
  auto once = report_json({"--by", "container", fs_->dir()}, &st);
  std::map<std::string, std::uint64_t> again;
  for (const auto& c : once["containers"]) again[c["runtime"]] = c["cached_bytes"];
  EXPECT_EQ(again, cached);
}

TEST_F(container_scene, TextTableNamesContainersAndPeers) {
  read_scene();
  auto r = run({DUPCACHE_BINARY, "report", "--by", "container", "--bytes", fs_->dir()});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("CONTAINERS (4 of 4"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(std::to_string(44 * ps_)), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("web"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("other copies:"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace dupcache::testing
