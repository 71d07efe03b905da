// SPDX-License-Identifier: GPL-2.0-only
#include "policy/in_use.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>

#include "policy/pageout.hpp"

namespace dupcache::policy {

namespace {

void add_links(const std::string& dir, std::set<std::pair<dev_t, ino_t>>& out) {
  DIR* d = opendir(dir.c_str());
  if (!d) return;  // gone, a kernel thread, or not ours to read
  while (struct dirent* de = readdir(d)) {
    if (de->d_name[0] == '.') continue;
    struct stat st {};
    // Following the link stats the file itself, as the process holds it.
    if (fstatat(dirfd(d), de->d_name, &st, 0) < 0 || !S_ISREG(st.st_mode)) continue;
    out.insert({st.st_dev, st.st_ino});
  }
  closedir(d);
}

}  // namespace

files_in_use files_in_use::collect() {
  files_in_use f;
  const int self = getpid();
  for (int pid : process_ids()) {
    if (pid == self) continue;
    const std::string base = "/proc/" + std::to_string(pid);
    add_links(base + "/map_files", f.held_);
    add_links(base + "/fd", f.held_);
  }
  return f;
}

bool files_in_use::holds_copy(const scan_result& scan, copy_id c) const {
  if (held_.empty() || c >= scan.files.size() || scan.files[c].path.empty()) return false;
  struct stat st {};
  if (stat(scan.files[c].path.c_str(), &st) < 0) return false;
  if (static_cast<std::uint64_t>(st.st_ino) != scan.index.key_of(c).ino) return false;
  return holds(st.st_dev, st.st_ino);
}

}  // namespace dupcache::policy
