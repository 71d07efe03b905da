// SPDX-License-Identifier: GPL-2.0-only
// dupcache dedupe: content-identical ranges of files become shared extents. The options become a
// dedupe request; policy/dedupe_pass.hpp runs it and output/dedupe.hpp prints what it did.
#include <iostream>

#include "cli/commands.hpp"
#include "output/dedupe.hpp"
#include "policy/config.hpp"
#include "policy/dedupe_pass.hpp"
#include "util/log.hpp"
#include "util/text.hpp"

namespace dupcache {

void register_dedupe(CLI::App& app, dedupe_args& a) {
  auto* cmd = app.add_subcommand("dedupe", "Turn content-identical ranges of files into shared extents (btrfs, XFS "
                                           "with reflink, bcachefs)");
  cmd->footer(
      "Regular files of one size on one filesystem below the PATHs are hashed block by block (XXH3, read with "
      "O_DIRECT so the page cache is left as found); ranges whose hashes match and that do not already share an "
      "extent are handed to FIDEDUPERANGE, which compares the bytes under lock and shares the extents only when they "
      "are equal. File contents never change. Files open for writing are skipped and named. Mounts of other "
      "filesystems (and btrfs subvolumes) below a PATH are not entered.\n"
      "Exit status: 0 ok (skipped files and ranges the kernel found different are reported, not failures), 1 a PATH "
      "cannot be deduplicated (its filesystem cannot share extents), a file could not be read or a call failed, 2 "
      "usage error.");
  cmd->add_option("PATH", a.paths, "Files or directories on one or more filesystems that can share extents")
      ->required();
  cmd->add_flag("-n,--dry-run", a.dry_run, "Hash and print what would be shared, share nothing");
  cmd->add_option("--rate", a.rate,
                  "Read at most this many bytes per second, hashing and comparing (e.g. 64M, 1G, 100MiB; default: "
                  "no limit)");
  cmd->add_flag("--json", a.json, "Print the result as one JSON document");
  cmd->add_flag("--bytes", a.bytes, "Sizes in bytes");
}

int run_dedupe(const dedupe_args& a) {
  log::use_command_style("dedupe");
  policy::dedupe_request req;
  req.paths = a.paths;
  req.dry_run = a.dry_run;
  if (!a.rate.empty()) {
    auto rate = policy::parse_size(a.rate);
    if (!rate || *rate == 0) {
      log::error("--rate {}: {}", terminal_safe(a.rate), rate ? "must be above 0" : rate.err().reason());
      return exit_usage;
    }
    req.rate_bytes_per_s = *rate;
  }
  auto r = policy::run_dedupe_pass(req);
  if (!r) {
    log::error("{}", terminal_safe(r.err().message()));
    return exit_failure;
  }
  if (a.json) {
    output::dedupe_json(*r, std::cout);
  } else {
    output::dedupe_text(*r, a.bytes, std::cout, stderr);
  }
  std::cout.flush();
  return r->failed || !std::cout ? exit_failure : exit_ok;
}

}  // namespace dupcache
