// SPDX-License-Identifier: GPL-2.0-only
#include "scan/mounts.hpp"

#include <cstdio>
#include <fstream>
#include <sstream>

namespace dupcache {

std::string unescape_mount_field(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size()) {
      const char a = s[i + 1], b = s[i + 2], c = s[i + 3];
      if (a >= '0' && a <= '3' && b >= '0' && b <= '7' && c >= '0' && c <= '7') {
        out += static_cast<char>((a - '0') * 64 + (b - '0') * 8 + (c - '0'));
        i += 3;
        continue;
      }
    }
    out += s[i];
  }
  return out;
}

result<std::vector<mount_entry>> parse_mountinfo(std::string_view text) {
  std::vector<mount_entry> out;
  std::size_t line_no = 0;
  while (!text.empty()) {
    const std::size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
    ++line_no;
    if (line.empty()) continue;

    std::vector<std::string_view> f;
    for (std::size_t pos = 0; pos <= line.size();) {
      std::size_t sp = line.find(' ', pos);
      if (sp == std::string_view::npos) sp = line.size();
      f.push_back(line.substr(pos, sp - pos));
      pos = sp + 1;
    }
    // id parent major:minor root mount-point options [optional...] - fstype source super-options
    std::size_t dash = 6;
    while (dash < f.size() && f[dash] != "-") ++dash;
    if (f.size() < 7 || dash + 2 >= f.size()) {
      return plain_error("parse mountinfo", "line " + std::to_string(line_no) + " has too few fields");
    }
    mount_entry m;
    unsigned maj = 0, min = 0;
    try {
      m.id = std::stoi(std::string(f[0]));
      m.parent = std::stoi(std::string(f[1]));
    } catch (...) {
      return plain_error("parse mountinfo", "line " + std::to_string(line_no) + ": bad mount id");
    }
    if (std::sscanf(std::string(f[2]).c_str(), "%u:%u", &maj, &min) != 2) {
      return plain_error("parse mountinfo", "line " + std::to_string(line_no) + ": bad major:minor");
    }
    m.major = maj;
    m.minor = min;
    m.root = unescape_mount_field(f[3]);
    m.mount_point = unescape_mount_field(f[4]);
    m.options = std::string(f[5]);
    m.fstype = unescape_mount_field(f[dash + 1]);
    m.source = unescape_mount_field(f[dash + 2]);
    if (dash + 3 < f.size()) m.super_options = unescape_mount_field(f[dash + 3]);
    for (std::size_t i = 6; i < dash; ++i) m.unbindable = m.unbindable || f[i] == "unbindable";
    out.push_back(std::move(m));
  }
  return out;
}

result<std::vector<mount_entry>> read_mountinfo() {
  std::ifstream in("/proc/self/mountinfo");
  if (!in) return errno_error("read /proc/self/mountinfo");
  std::stringstream ss;
  ss << in.rdbuf();
  return parse_mountinfo(ss.str());
}

bool may_share_extents(std::string_view fstype) {
  return fstype == "btrfs" || fstype == "xfs" || fstype == "bcachefs" || fstype == "ocfs2" ||
         fstype == "zfs";
}

bool is_pseudo_fs(std::string_view t) {
  static constexpr std::string_view pseudo[] = {
      "proc",   "sysfs",  "devtmpfs", "devpts",   "cgroup", "cgroup2",  "tracefs", "debugfs",
      "securityfs", "pstore", "bpf", "configfs", "fusectl", "mqueue", "hugetlbfs", "autofs",
      "binfmt_misc", "efivarfs", "rpc_pipefs", "nsfs", "selinuxfs"};
  for (auto p : pseudo) {
    if (t == p) return true;
  }
  return false;
}

std::vector<walk_outline> outline_walks(const std::vector<mount_entry>& mounts, const std::vector<mount_entry>& roots) {
  std::vector<walk_outline> out;
  for (const auto& r : roots) {
    walk_outline w{r, {}, {}};
    for (const auto& m : mounts) {
      if (m.id == r.id || m.mount_point == r.mount_point || !root_within(m.mount_point, r.mount_point)) continue;
      if (m.major == r.major && m.minor == r.minor) w.same_fs.push_back(m);
      else if (!is_pseudo_fs(m.fstype)) w.other_fs.push_back(m);
    }
    out.push_back(std::move(w));
  }
  return out;
}

}  // namespace dupcache
