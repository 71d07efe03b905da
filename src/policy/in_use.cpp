// SPDX-License-Identifier: GPL-2.0-only
#include "policy/in_use.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>

#include "util/proc.hpp"

namespace dupcache::policy {

files_in_use files_in_use::collect() {
  files_in_use f;
  const int self = getpid();
  auto add = [&](const proc::held_file& h) {
    f.held_.insert({h.st.st_dev, h.st.st_ino});
    f.inos_.insert(h.st.st_ino);
  };
  for (int pid : proc::process_ids()) {
    if (pid == self) continue;
    proc::for_each_held_file(pid, proc::held_kind::mapped, add);
    proc::for_each_held_file(pid, proc::held_kind::open, add);
  }
  return f;
}

bool files_in_use::holds_copy(const scan_result& scan, copy_id c) const {
  if (held_.empty() || c >= scan.files.size() || scan.files[c].path.empty()) return false;
  // No process holds an inode of that number on any filesystem: no stat. The planner asks for
  // every shared copy at every pass (a million stat()s on a large tree), processes hold a few.
  if (!inos_.contains(static_cast<ino_t>(scan.index.key_of(c).ino))) return false;
  struct stat st {};
  if (stat(scan.files[c].path.str().c_str(), &st) < 0) return false;
  if (static_cast<std::uint64_t>(st.st_ino) != scan.index.key_of(c).ino) return false;
  return holds(st.st_dev, st.st_ino);
}

}  // namespace dupcache::policy
