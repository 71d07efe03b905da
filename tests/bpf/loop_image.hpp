// SPDX-License-Identifier: GPL-2.0-only
#pragma once

// Test fixture pieces for the BPF tests: a filesystem (btrfs, xfs) on a loop device in a
// temporary directory, torn down (unmount, loop detach, files removed) whatever happens to the
// test.

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "util/fd.hpp"
#include "util/result.hpp"

namespace dupcache::test {

// Why a privileged test cannot run here; empty if it can.
struct environment_gap {
  std::string reason;
  explicit operator bool() const { return !reason.empty(); }
};

// Root, /dev/loop-control, fstype in /proc/filesystems, mkfs.<fstype> in PATH or /sbin.
environment_gap check_environment(const std::string& fstype);

class loop_image {
 public:
  // Creates a sparse image of `bytes`, runs mkfs.<fstype>, attaches a loop device and mounts it.
  // A failure that means "this host cannot do it" (EPERM/EACCES on mount or loop) is reported
  // with err().err set so callers can tell it from a bug.
  static result<std::unique_ptr<loop_image>> create(const std::string& fstype, std::uint64_t bytes);

  loop_image(const loop_image&) = delete;
  loop_image& operator=(const loop_image&) = delete;
  ~loop_image();

  // Unmount and mount again: a cold page cache for the filesystem's metadata. The superblock
  // is new, and so may be its device number (superblock_dev() is updated).
  result<void> remount();

  const std::string& mount_dir() const { return mount_dir_; }
  std::string path(const std::string& rel) const { return mount_dir_ + "/" + rel; }
  // The superblock device from /proc/self/mountinfo (major:minor): what the kernel's s_dev
  // is, unlike stat()'s st_dev, which btrfs makes up per subvolume.
  dev_t superblock_dev() const { return sb_dev_; }

 private:
  loop_image() = default;
  void teardown() noexcept;

  std::string tmp_dir_;
  std::string image_;
  std::string mount_dir_;
  std::string fstype_;
  std::string loop_path_;
  unique_fd loop_fd_;
  bool mounted_ = false;
  dev_t sb_dev_ = 0;
};

// Runs argv (no shell), stdout/stderr to /dev/null unless capture is given. Returns the exit
// status, or an error if it could not be started.
result<int> run_program(const std::vector<std::string>& argv, std::string* capture = nullptr);

// major:minor of the filesystem mounted at `dir`, from /proc/self/mountinfo.
std::optional<dev_t> mountinfo_dev(const std::string& dir);

// btrfs: create a subvolume / a snapshot of `src_subvol` named `name` in directory `parent`.
result<void> btrfs_create_subvolume(const std::string& parent, const std::string& name);
result<void> btrfs_snapshot(const std::string& src_subvol, const std::string& parent, const std::string& name);
// Root (subvolume) id of the subvolume holding fd, via BTRFS_IOC_INO_LOOKUP.
result<std::uint64_t> btrfs_root_id(int fd);

// Writes `bytes` of a non-repeating pattern to path (created/truncated), then fsync.
result<void> write_file(const std::string& path, std::uint64_t bytes);
// Evicts fd's pages (fsync + POSIX_FADV_DONTNEED) and returns how many stay resident (mincore).
result<std::uint64_t> drop_cache(int fd);
result<std::uint64_t> resident_pages(int fd);

// The cgroup id a folio read by this process is charged to: the memory cgroup's kernfs node id,
// i.e. the inode number of its directory (cgroup v1 memory hierarchy or cgroup v2). nullopt if
// it cannot be determined (no memory controller mounted).
std::optional<std::uint64_t> expected_memcg_id();

}  // namespace dupcache::test
