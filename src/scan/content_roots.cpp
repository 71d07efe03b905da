// SPDX-License-Identifier: GPL-2.0-only
#include "scan/content_roots.hpp"

#include <fmt/format.h>
#include <sys/stat.h>
#include <sys/statfs.h>

#include <climits>
#include <cstdlib>
#include <algorithm>
#include <map>
#include <optional>
#include <set>

namespace dupcache {
namespace {

constexpr unsigned long overlayfs_magic = 0x794c7630;

std::vector<std::string> split_options(const std::string& s) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : s) {
    if (c == ',') {
      out.push_back(std::move(cur));
      cur.clear();
    } else {
      cur += c;
    }
  }
  out.push_back(std::move(cur));
  return out;
}

std::string real_path(const std::string& p) {
  char buf[PATH_MAX];
  return realpath(p.c_str(), buf) ? std::string(buf) : p;
}

}  // namespace

std::vector<std::string> overlay_layers(const std::string& super_options) {
  std::vector<std::string> upper, lower;
  for (const auto& opt : split_options(super_options)) {
    auto value = [&](std::string_view key) -> std::optional<std::string> {
      if (opt.size() > key.size() && opt.compare(0, key.size(), key) == 0) return opt.substr(key.size());
      return std::nullopt;
    };
    if (auto v = value("upperdir=")) upper.push_back(*v);
    else if (auto v = value("lowerdir+=")) lower.push_back(*v);
    else if (auto v = value("datadir+=")) lower.push_back(*v);
    else if (auto v = value("lowerdir=")) {
      std::string cur;
      for (std::size_t i = 0; i < v->size(); ++i) {
        if ((*v)[i] == '\\' && i + 1 < v->size()) cur += (*v)[++i];
        else if ((*v)[i] == ':') {
          lower.push_back(std::move(cur));
          cur.clear();
        } else {
          cur += (*v)[i];
        }
      }
      lower.push_back(std::move(cur));
    }
  }
  std::vector<std::string> out;
  for (auto& l : upper) if (!l.empty()) out.push_back(std::move(l));
  for (auto& l : lower) if (!l.empty()) out.push_back(std::move(l));
  return out;
}

std::vector<mount_entry> local_fs_mounts(const std::vector<mount_entry>& mounts) {
  std::vector<mount_entry> out;
  std::set<std::pair<unsigned, unsigned>> seen;
  std::vector<const mount_entry*> sorted;
  for (const auto& m : mounts) sorted.push_back(&m);
  // The shortest root first: a mount of the whole filesystem rather than a bind mount of part.
  std::stable_sort(sorted.begin(), sorted.end(),
                   [](const mount_entry* a, const mount_entry* b) { return a->root.size() < b->root.size(); });
  for (const auto* m : sorted) {
    if (m->source.rfind("/dev/", 0) != 0 || is_pseudo_fs(m->fstype) || m->fstype == "overlay") continue;
    if (seen.insert({m->major, m->minor}).second) out.push_back(*m);
  }
  return out;
}

content_roots resolve_content_roots(const std::vector<std::string>& paths, const std::vector<mount_entry>& mounts) {
  content_roots out;
  if (paths.empty()) {
    std::map<std::string, unsigned> left_out;
    for (const auto& m : local_fs_mounts(mounts)) out.paths.push_back(m.mount_point);
    for (const auto& m : mounts) {
      if (m.source.rfind("/dev/", 0) != 0 && !is_pseudo_fs(m.fstype)) ++left_out[m.fstype];
    }
    std::string which;
    for (const auto& [type, n] : left_out) which += fmt::format("{}{} {}", which.empty() ? "" : ", ", n, type);
    out.notes.push_back(fmt::format("content: walked every local block filesystem ({}); overlayfs mounts are read "
                                    "through their layers there{}",
                                    out.paths.size(), which.empty() ? "" : "; not walked: " + which + " mount(s)"));
    return out;
  }
  for (const auto& p : paths) {
    struct statfs sfs {};
    if (statfs(p.c_str(), &sfs) != 0 || static_cast<unsigned long>(sfs.f_type) != overlayfs_magic) {
      out.paths.push_back(p);
      continue;
    }
    const std::string real = real_path(p);
    const mount_entry* best = nullptr;
    for (const auto& m : mounts) {
      if (m.fstype != "overlay" || !root_within(real, m.mount_point)) continue;
      if (!best || m.mount_point.size() >= best->mount_point.size()) best = &m;
    }
    auto layers = best ? overlay_layers(best->super_options) : std::vector<std::string>{};
    if (layers.empty()) {
      out.paths.push_back(p);  // scanned as it is: its files will show nothing cached
      out.notes.push_back(fmt::format("content: {} is on overlayfs but its layers could not be read from the mount "
                                      "table; its page cache is not seen", p));
      continue;
    }
    const std::string rel = real.size() > best->mount_point.size() && best->mount_point != "/"
                                ? real.substr(best->mount_point.size())
                                : real == best->mount_point ? std::string() : real;
    std::string used;
    for (const auto& l : layers) {
      const std::string lp = l + rel;
      struct stat st {};
      if (stat(lp.c_str(), &st) != 0) continue;  // not in this layer
      out.paths.push_back(lp);
      used += (used.empty() ? "" : ", ") + lp;
    }
    out.notes.push_back(fmt::format("content: {} is on overlayfs; read through its layers: {}", p, used));
  }
  return out;
}

}  // namespace dupcache
