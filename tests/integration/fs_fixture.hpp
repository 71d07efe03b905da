// SPDX-License-Identifier: GPL-2.0-only
#pragma once

// Real filesystems for the integration tests: images on loop devices in a temporary directory,
// made and mounted by the test, unmounted and removed afterwards even when a test fails.

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "process.hpp"

namespace dupcache::testing {

// Why a root test cannot run here (not root, no loop devices, a tool missing), if it cannot.
std::optional<std::string> cannot_run(const std::vector<std::string>& tools);
bool under_ci();
// Skips with the reason, or under CI=true fails: CI must not pass by skipping these.
#define DUPCACHE_REQUIRE_ROOT(...)                                                  \
  if (auto why_ = ::dupcache::testing::cannot_run({__VA_ARGS__})) {                 \
    if (::dupcache::testing::under_ci()) FAIL() << "CI=true and this test cannot run: " << *why_; \
    GTEST_SKIP() << *why_;                                                          \
  }

// The same for tests that need tools but not root.
std::optional<std::string> missing_tool(const std::vector<std::string>& tools);
#define DUPCACHE_REQUIRE_TOOLS(...)                                                 \
  if (auto why_ = ::dupcache::testing::missing_tool({__VA_ARGS__})) {               \
    if (::dupcache::testing::under_ci()) FAIL() << "CI=true and this test cannot run: " << *why_; \
    GTEST_SKIP() << *why_;                                                          \
  }

class scratch_fs {
 public:
  // type: "btrfs", "xfs" (reflink=1) or "ext4"; mount_opts as for mount -o.
  scratch_fs(const std::string& type, const std::string& mount_opts = "", std::uint64_t size_mib = 512);
  ~scratch_fs();
  scratch_fs(const scratch_fs&) = delete;
  scratch_fs& operator=(const scratch_fs&) = delete;

  const std::string& dir() const { return mnt_; }
  std::string path(const std::string& rel) const { return mnt_ + "/" + rel; }

 private:
  std::string tmp_;
  std::string img_;
  std::string mnt_;
  bool mounted_ = false;
};

// Data helpers. Sizes and offsets in bytes.
void write_file(const std::string& path, std::uint64_t size, std::uint32_t seed, bool compressible = false);
void overwrite(const std::string& path, std::uint64_t offset, std::uint64_t len, std::uint32_t seed);
void reflink(const std::string& src, const std::string& dst);
void clone_range(const std::string& src, std::uint64_t src_off, std::uint64_t len, const std::string& dst,
                 std::uint64_t dst_off);
// Syncs and evicts every page of the file, so a scenario starts from nothing cached.
void evict(const std::string& path);
// Reads exactly [offset, offset+len) into the page cache, no readahead around it.
void read_range(const std::string& path, std::uint64_t offset, std::uint64_t len);
void read_all(const std::string& path);
// Per-page residency through mincore on a read-only mapping (what the test sees, independent of
// dupcache's code).
std::vector<unsigned char> residency(const std::string& path);
std::uint64_t cached_pages(const std::string& path);
std::vector<std::uint32_t> extent_flags(const std::string& path);
// The physical address of each 4 KiB block of the file, from FIEMAP read here (independently of
// dupcache's reader); no_address where FIEMAP does not place the block exactly.
constexpr std::uint64_t no_address = ~std::uint64_t{0};
std::vector<std::uint64_t> block_addresses(const std::string& path);
// The whole file, bytes as they are.
std::string contents(const std::string& path);

// A memory cgroup made for a test in the host's memory hierarchy (cgroup v1 "memory" on hybrid
// hosts, cgroup2 with +memory delegated down on pure v2), removed with its parents afterwards.
// rel: path below the hierarchy root, e.g. "dupcache-test.slice/docker-<id>.scope".
class test_cgroup {
 public:
  explicit test_cgroup(const std::string& rel);
  ~test_cgroup();
  test_cgroup(const test_cgroup&) = delete;
  test_cgroup& operator=(const test_cgroup&) = delete;
  const std::string& dir() const { return dir_; }
  std::string rel() const { return "/" + rel_; }
  // Runs fn in a child process placed in this cgroup, in a mount namespace of its own with
  // its root changed to `root`; throws when the child fails.
  void run_in(const std::string& root, const std::function<void()>& fn) const;

 private:
  std::string rel_;
  std::string dir_;
  std::vector<std::string> made_;  // directories made, outermost first
};
// The memory hierarchy's mount point, or nullopt with no memory controller.
std::optional<std::string> memory_hierarchy();

// Runs `dupcache report --json ARGS...` and parses the document.
nlohmann::json report_json(const std::vector<std::string>& args, int* exit_status = nullptr);
const nlohmann::json* file_entry(const nlohmann::json& report, const std::string& path);

constexpr std::uint64_t KiB = 1024;
constexpr std::uint64_t MiB = 1024 * KiB;
std::uint64_t page_size();

}  // namespace dupcache::testing
