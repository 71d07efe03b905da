// SPDX-License-Identifier: GPL-2.0-only
#include "doctor/kernel_support.hpp"

#include <charconv>
#include <optional>
#include <string>
#include <utility>

namespace dupcache::doctor {
namespace {

using version = std::pair<unsigned, unsigned>;

std::optional<version> parse_release(std::string_view r) {
  unsigned major = 0, minor = 0;
  auto [p, ec] = std::from_chars(r.data(), r.data() + r.size(), major);
  if (ec != std::errc{} || p == r.data() + r.size() || *p != '.') return std::nullopt;
  auto [q, ec2] = std::from_chars(p + 1, r.data() + r.size(), minor);
  if (ec2 != std::errc{} || q == p + 1) return std::nullopt;
  return version{major, minor};
}

}  // namespace

std::vector<check> kernel_support(std::string_view release) {
  const auto v = parse_release(release);
  const auto at_least = [&](version floor) { return v && *v >= floor; };
  std::vector<check> out;

  // The floor is the oldest kernel the matrix runs, not the oldest that might work: below it
  // nothing is known, and saying so beats a guess.
  if (!v) {
    out.push_back({"kernel support", "info",
                   "release not of the form MAJOR.MINOR: support unknown; 6.1 is the oldest kernel tested"});
  } else if (at_least({6, 1})) {
    out.push_back({"kernel support", "ok",
                   "6.1 or later: the oldest kernel supported is 6.1 (Debian 12's), the oldest tested; tested: 6.1 and "
                   "6.12 (Debian's, in qemu guests), 6.18 (development host)"});
  } else {
    out.push_back({"kernel support", "missing",
                   "older than 6.1, the oldest kernel supported and tested: untested here; report needs statx "
                   "mount ids (5.8) and the BPF programs the folio page cache"});
  }

  // cachestat(2) arrived in 6.5 ("cachestat: implement cachestat syscall").
  if (at_least({6, 5})) {
    out.push_back({"kernel 6.5 cachestat", "ok",
                   "residency from cachestat(2), exact, with dirty pages; tested: 6.12, 6.18"});
  } else {
    out.push_back({"kernel 6.5 cachestat", "missing",
                   "before 6.5, residency from mincore(2) on a mapping of each data range: no dirty state, and "
                   "holes are not read (bounded time; said as an error per file); tested: 6.1"});
  }

  out.push_back({"kernel hooks", "info",
                 "fentry where BPF trampolines are allowed (chosen as root on Debian's 6.1 and 6.12, tested), "
                 "else tp_btf (chosen on 6.18, which refuses fentry, tested), else raw_tp (forced in tests on "
                 "6.18); the hook lines below say what this kernel took"});
  out.push_back({"kernel large folios", "info",
                 "counted by folio size, any order: XFS caches large folios and btrfs single pages on 6.1 and "
                 "6.12 (tested in the guests, per folio); other filesystems and kernels untested"});
  out.push_back({"kernel merge module", "info",
                 "builds through DKMS and passes its merge tests on 6.1 and 6.12 (guests); 6.18 here loads no "
                 "modules; other kernels untested"});
  return out;
}

}  // namespace dupcache::doctor
