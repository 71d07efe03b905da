// SPDX-License-Identifier: GPL-2.0-only
#pragma once

// Which filesystems a walk covers, named by their superblock device (major:minor as
// /proc/self/mountinfo shows it). The live tracer filters on these devices in the kernel, so
// they must be known from the mount table alone, before any walk has started.
// Contract: the result has no repeats; a PATH that cannot be looked up adds nothing (the walk
// reports it); on btrfs one device stands for every subvolume, unlike stat()'s st_dev.

#include <sys/types.h>

#include <vector>

#include "scan/mounts.hpp"
#include "scan/scanner.hpp"
#include "util/result.hpp"

namespace dupcache {

// The mounts a walk with no PATH starts from: default_scan_mounts() with each candidate's
// format asked whether it can share extents (XFS without reflink=1 cannot).
std::vector<mount_entry> sharing_mounts(const std::vector<mount_entry>& mounts);

// The superblock devices a scan with these options covers.
result<std::vector<dev_t>> superblock_devs(const scan_options& opts);

}  // namespace dupcache
