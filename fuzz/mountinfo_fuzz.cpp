// SPDX-License-Identifier: GPL-2.0-only
// /proc/self/mountinfo (scan/mounts.hpp): mount points are chosen by users (a directory named
// "a\040b" or holding a newline), so the parser and what is built on its result — the default
// mounts of a report, doctor's walk outline — must take any text.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "scan/mounts.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  // Undoing escapes never makes a field longer.
  if (dupcache::unescape_mount_field(text).size() > text.size()) std::abort();

  auto mounts = dupcache::parse_mountinfo(text);
  if (!mounts) return 0;
  std::size_t lines = 0;
  for (char c : text) lines += c == '\n';
  if (mounts->size() > lines + 1) std::abort();
  for (const auto& m : *mounts) {
    (void)dupcache::may_share_extents(m.fstype);
    (void)dupcache::is_pseudo_fs(m.fstype);
  }
  // Reflink capability decided by something the input controls (XFS: its super options).
  auto chosen = dupcache::default_scan_mounts(*mounts, [](const dupcache::mount_entry& m) {
    return m.fstype != "xfs" || m.super_options.find("reflink") != std::string::npos;
  });
  if (chosen.size() > mounts->size()) std::abort();
  for (const auto& w : dupcache::outline_walks(*mounts, chosen)) {
    if (w.same_fs.size() + w.other_fs.size() > mounts->size()) std::abort();
  }
  (void)dupcache::outline_walks(*mounts, *mounts);
  return 0;
}
