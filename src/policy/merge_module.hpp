// SPDX-License-Identifier: GPL-2.0-only
#pragma once

// The companion kernel module's client: /dev/dupcache opened, its ABI version checked, merge
// requests and counter reads sent as ioctls. Only merge_module.cpp includes the module's ABI
// header (kmod/dupcache_kmod.h); everything here is in policy's own types, converted to and from
// the ABI's structs there, so the ABI's sizes and numbering never leak into callers. An ABI 1.0
// module (no pidfd targets, 16 reason counters) is spoken to in its own sizes.

#include <array>
#include <cstdint>
#include <string>

#include "util/fd.hpp"
#include "util/result.hpp"

namespace dupcache::policy {

// Where the module's device appears when it is loaded.
inline constexpr const char* merge_module_device = "/dev/dupcache";

// The module's reasons for refusing a request (enum dupcache_reason) that dupcache acts on
// before asking; merge_module.cpp checks that they match the ABI.
inline constexpr std::uint32_t refused_cow = 7;       // the mapping holds copy-on-write pages
inline constexpr std::uint32_t refused_stopped = 14;  // the target is stopped or traced
// A refusal of dupcache's own, not the module's: the LSMs' ptrace check denied the target.
inline constexpr std::uint32_t refused_ptrace = 1000;

// "cow", "identity", ...; what the module's reason codes are called in output and docs.
std::string refusal_name(std::uint32_t reason);

// The module, opened and speaking the ABI major this dupcache was built for.
class merge_module {
 public:
  // One mapping of one process to point at the canonical copy.
  struct request {
    int pid = 0;
    int pidfd = -1;  // the target as a pidfd_open(2) file, or -1; used where the module takes one
    std::uint64_t start = 0, end = 0;  // exactly one mapping, page aligned
    int canonical_fd = -1;             // the canonical copy, open read-only
    unsigned timeout_ms = 0;           // 0: the module's default
    // The file mapped now, as this process saw it: the module refuses if the mapping moved on.
    std::uint64_t expect_dev = 0, expect_ino = 0;
    std::uint32_t expect_generation = 0;
  };
  struct answer {
    int error = 0;             // errno, 0 when merged
    std::uint32_t reason = 0;  // the module's reason code, for refusal_name()
  };
  // The module's counters since it was loaded.
  struct counters {
    std::uint64_t requests = 0, merged = 0, merged_bytes = 0, pending = 0;
    std::array<std::uint64_t, 32> refused{};  // by reason code (an ABI 1.0 module fills 16)
  };

  // Fails saying why: not loaded, no permission, or another ABI major.
  static result<merge_module> open(const char* device = merge_module_device);
  std::string version() const;  // "1.0"
  answer merge(const request& req) const;
  // Whether the module takes the target as a pidfd (ABI 1.1).
  bool takes_pidfd() const;
  result<counters> stats() const;

 private:
  unique_fd fd_;
  // What DUPCACHE_IOC_VERSION answered.
  std::uint32_t major_ = 0, minor_ = 0, merge_size_ = 0, stats_size_ = 0;
};

}  // namespace dupcache::policy
