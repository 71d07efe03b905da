// SPDX-License-Identifier: GPL-2.0-only
#pragma once

// Which files running processes hold right now: mapped (/proc/PID/map_files) or open
// (/proc/PID/fd), by the (st_dev, st_ino) that stat() of each link gives (on btrfs st_dev is
// the subvolume's, so copies in different snapshots stay apart). The keeper of a duplicated
// block is chosen among such copies first: evicting the copy a process uses only makes it read
// the block again, and rebuild the duplicate. Links of processes that go away meanwhile are
// skipped; map_files needs CAP_SYS_ADMIN (without it only open files are seen).

#include <sys/types.h>

#include <cstdint>
#include <set>
#include <unordered_set>
#include <utility>

#include "scan/scanner.hpp"

namespace dupcache::policy {

class files_in_use {
 public:
  // One walk of /proc; this process's own files are left out.
  static files_in_use collect();
  bool holds(dev_t dev, ino_t ino) const { return held_.count({dev, ino}) > 0; }
  // Whether a process holds the copy: its path is stat()ed and must still be the copy's inode.
  bool holds_copy(const scan_result& scan, copy_id c) const;
  std::size_t size() const { return held_.size(); }

 private:
  std::set<std::pair<dev_t, ino_t>> held_;
  std::unordered_set<ino_t> inos_;  // of held_, whatever their device
};

}  // namespace dupcache::policy
