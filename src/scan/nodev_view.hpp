// SPDX-License-Identifier: GPL-2.0-only
#pragma once

// A walk's private view of the mounts at and below a directory, in which no device node can be
// opened: a detached copy of that mount tree (open_tree(2) with OPEN_TREE_CLONE | AT_RECURSIVE,
// Linux 5.2) with MOUNT_ATTR_NODEV set on every mount of the copy (mount_setattr(2), Linux
// 5.12). Nothing is mounted anywhere and no namespace is entered: the copy is reachable only
// through the returned fd and goes away with the last fd into it. The files, their inodes,
// st_dev and superblocks are the real ones; only the mounts (and their ids) are the copy's.
//
// Why: the walk runs as root over trees users write. A name listed as a regular file can be a
// device node by the time it is opened (any container root has CAP_MKNOD), and opening some
// devices acts (a watchdog starts, a tape rewinds). Through this view the kernel refuses such an
// open (EACCES) before any driver is called, so each file is opened once by name, instead of
// O_PATH, a type check and a reopen through /proc/self/fd (a quarter of the walk's time).
//
// Needs CAP_SYS_ADMIN. A mount marked unbindable is left out of any copy (its mount point would
// show what is under it), so no view is made while the mount table has one.

#include <string>
#include <vector>

#include "scan/mounts.hpp"
#include "util/fd.hpp"
#include "util/result.hpp"

namespace dupcache {

// The view of the mount tree at dir_fd (any fd of a directory, O_PATH will do), as an O_PATH fd
// of its root directory. Errors name the system call that refused.
result<unique_fd> open_nodev_view(int dir_fd);

// Why no view can stand for the real mount tree under this table, or empty when one can.
std::string nodev_view_unfit(const std::vector<mount_entry>& mounts);

}  // namespace dupcache
