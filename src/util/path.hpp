// SPDX-License-Identifier: GPL-2.0-only
#pragma once

// Path prefixes by component: "/a/b" is under "/a" but "/ab" is not. Plain string logic, on
// paths already absolute and clean (no "..", no doubled slashes); nothing here touches the
// filesystem.

#include <string_view>
#include <vector>
#include <string>

namespace dupcache {

// Whether path is dir or lies below it. Trailing slashes of dir are ignored; "/" holds every
// absolute path; an empty dir holds nothing.
inline bool path_under(std::string_view path, std::string_view dir) {
  while (dir.size() > 1 && dir.back() == '/') dir.remove_suffix(1);
  if (dir.empty()) return false;
  if (dir == "/") return !path.empty() && path.front() == '/';
  return path == dir || (path.size() > dir.size() && path.substr(0, dir.size()) == dir && path[dir.size()] == '/');
}

// Strictly below dir (not dir itself).
inline bool path_below(std::string_view path, std::string_view dir) {
  while (dir.size() > 1 && dir.back() == '/') dir.remove_suffix(1);
  return path != dir && path_under(path, dir);
}

// Whether path is under any of dirs; `empty_means_all`: an empty list holds every path.
inline bool path_under_any(std::string_view path, const std::vector<std::string>& dirs, bool empty_means_all) {
  if (dirs.empty()) return empty_means_all;
  for (const auto& d : dirs) {
    if (path_under(path, d)) return true;
  }
  return false;
}

}  // namespace dupcache
