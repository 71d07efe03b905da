// SPDX-License-Identifier: GPL-2.0-only
#include "scan/nodev_view.hpp"

#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdint>

namespace dupcache {
namespace {

// From linux/mount.h (Linux 5.2 and 5.12), which Debian 12's glibc headers predate in part and
// which clashes with <sys/mount.h>; the ABI is fixed.
constexpr unsigned open_tree_clone = 1;                 // OPEN_TREE_CLONE
constexpr unsigned open_tree_cloexec = O_CLOEXEC;       // OPEN_TREE_CLOEXEC
constexpr unsigned at_recursive = 0x8000;               // AT_RECURSIVE
constexpr std::uint64_t mount_attr_nodev = 0x00000004;  // MOUNT_ATTR_NODEV
struct mount_attr_arg {
  std::uint64_t attr_set, attr_clr, propagation, userns_fd;
};
#ifndef SYS_open_tree
constexpr long sys_open_tree = 428;
#else
constexpr long sys_open_tree = SYS_open_tree;
#endif
#ifndef SYS_mount_setattr
constexpr long sys_mount_setattr = 442;
#else
constexpr long sys_mount_setattr = SYS_mount_setattr;
#endif

}  // namespace

result<unique_fd> open_nodev_view(int dir_fd) {
  const long tree = syscall(sys_open_tree, dir_fd, "", open_tree_clone | open_tree_cloexec | at_recursive | AT_EMPTY_PATH);
  if (tree < 0) return errno_error("copy the mount tree (open_tree)");
  unique_fd view(static_cast<int>(tree));
  mount_attr_arg attr{};
  attr.attr_set = mount_attr_nodev;
  if (syscall(sys_mount_setattr, view.get(), "", AT_EMPTY_PATH | at_recursive, &attr, sizeof attr) < 0) {
    return errno_error("set nodev on the copied mounts (mount_setattr)");
  }
  return view;
}

std::string nodev_view_unfit(const std::vector<mount_entry>& mounts) {
  for (const auto& m : mounts) {
    if (m.unbindable) return "mount " + m.mount_point + " is unbindable, so a copy of the mount tree would leave it out";
  }
  return {};
}

}  // namespace dupcache
