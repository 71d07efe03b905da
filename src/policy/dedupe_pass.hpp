// SPDX-License-Identifier: GPL-2.0-only
#pragma once

// One `dupcache dedupe` (and the daemon's dedupe action): the regular files below the PATHs are
// walked, files of one size on one filesystem are hashed block by block (XXH3, policy/
// dedupe_plan.hpp), and the ranges whose hashes match and that FIEMAP does not already show at
// one physical address are handed to FIDEDUPERANGE, which compares the bytes under lock and
// shares the extents only when they are equal: file contents never change.
//
// The page cache is left as found: hashing reads with O_DIRECT where the filesystem takes it,
// and the pages that a buffered read or the kernel's own comparison brought in (and that are
// clean) are dropped again, measured against the file's residency before it was touched.
// Files open for writing are skipped and named (see is_open_for_writing in the .cpp).

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "util/result.hpp"

namespace dupcache::policy {

struct dedupe_request {
  std::vector<std::string> paths;  // files or directories on btrfs, XFS (reflink) or bcachefs
  bool dry_run = false;            // hash and plan, share nothing
  std::uint64_t rate_bytes_per_s = 0;  // bytes read by hashing plus twice the bytes compared; 0: no limit
  // When set and it turns true, the pass ends early (between reads and calls; report.stopped).
  const std::atomic<bool>* stop = nullptr;
};

// One range handed (or, in a dry run, that would be handed) to FIDEDUPERANGE.
struct dedupe_action {
  std::string src, dst;
  std::uint64_t offset = 0, length = 0;  // the same range of both files
  std::uint64_t shared_bytes = 0;        // what the kernel shared (dry run: 0)
  bool differs = false;                  // the kernel found the bytes different (a hash collision or a change)
  std::string error;                     // the call failed: action and reason
};

struct dedupe_skip {
  std::string path;
  std::string reason;
};

struct dedupe_report {
  bool dry_run = false;
  std::uint64_t files_examined = 0;   // regular files found
  std::uint64_t candidate_files = 0;  // with a same-size file on the same filesystem: hashed
  std::uint64_t hashed_bytes = 0;
  std::uint64_t planned_bytes = 0;         // bytes the plan would share
  std::uint64_t shared_bytes = 0;          // bytes the kernel shared
  std::uint64_t already_shared_bytes = 0;  // equal ranges already at one physical address
  std::uint64_t files_shared = 0;          // files that now share (dry run: would share) a range
  std::vector<dedupe_action> actions;
  std::vector<dedupe_skip> skipped;
  std::vector<std::string> errors;  // files that could not be read, calls that failed
  bool failed = false;              // an action or a read failed
  bool stopped = false;             // request.stop ended it early
};

// Fails before touching any file when a PATH cannot be opened or its filesystem cannot share
// extents: the message names the PATH, the filesystem and why.
result<dedupe_report> run_dedupe_pass(const dedupe_request& req);

}  // namespace dupcache::policy
