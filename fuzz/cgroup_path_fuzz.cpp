// SPDX-License-Identifier: GPL-2.0-only
// Container identity from a cgroup path (cgroup/container.hpp): any path, hostile or not, is
// classified without throwing, and what comes out is consistent with what went in.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "cgroup/container.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view path(reinterpret_cast<const char*>(data), size);
  const auto r = dupcache::cgroup::classify(path);
  if (r.host()) {
    if (!r.id.empty() || !r.pod_uid.empty() || r.monitor) std::abort();
  } else {
    // A container's own cgroup is a leading part of the path, its components rejoined.
    if (r.id.empty() || r.cgroup.empty() || r.cgroup[0] != '/' || r.cgroup.size() > path.size() + 1) std::abort();
  }
  const std::string u = dupcache::cgroup::unescape_unit(path);
  // Each "\xNN" that decodes shrinks four bytes to one; nothing ever grows.
  if (u.size() > path.size()) std::abort();
  if (path.find('\\') == std::string_view::npos && u != path) std::abort();
  return 0;
}
