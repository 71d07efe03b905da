// SPDX-License-Identifier: GPL-2.0-only
// dupcache evict: one pass of the daemon's evict action, from the command line.
#include <fmt/format.h>

#include <iostream>

#include "cli/commands.hpp"
#include "util/log.hpp"
#include "output/evict.hpp"
#include "policy/evict_pass.hpp"
#include "util/text.hpp"

namespace dupcache {

void register_evict(CLI::App& app, evict_args& a) {
  auto* cmd = app.add_subcommand("evict", "Evict duplicate cached copies once, keeping one copy of each block");
  cmd->footer(
      "For every physical block cached by two or more files, one copy is kept and the clean pages "
      "of the others are dropped with POSIX_FADV_DONTNEED. The copy kept is a --keep-container's, "
      "else one a running process maps or has open, else one charged to a running container, else "
      "the most cached. Dirty pages are never dropped; file contents never change.\n"
      "Exit status: 0 ok, 1 a PATH could not be scanned or an action failed, 2 usage error.");
  cmd->add_option("PATH", a.paths, "Files or directories (default: every filesystem that can share extents)");
  cmd->add_flag("-n,--dry-run", a.dry_run, "Plan and print, act on nothing");
  cmd->add_flag("--json", a.json, "Print the result as one JSON document");
  cmd->add_flag("--bytes", a.bytes, "Sizes in bytes");
  add_container_filters(cmd, a.containers, a.cgroups, "Only evict copies charged to");
  cmd->add_option("--keep-container", a.keep_containers,
                  "Keep this container's copies in preference to others (repeatable)")
      ->allow_extra_args(false)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  cmd->add_option("--max-bytes", a.max_bytes, "Evict at most this many bytes (default: no limit)");
  cmd->add_flag("--cross-mounts", a.cross_mounts,
                "Also enter mounts of other filesystems below a PATH (mounts of the same filesystem are always entered)");
  cmd->add_flag("--no-pageout", a.no_pageout,
                "Leave mapped duplicates alone (default: page them out of the processes that map them, then evict)");
  cmd->add_option("--metadata-root", a.metadata_root, "Where container runtimes' metadata is read (default /)");
}

int run_evict(const evict_args& a) {
  log::use_command_style("evict");
  policy::evict_request req;
  req.paths = a.paths;
  req.cross_mounts = a.cross_mounts;
  req.dry_run = a.dry_run;
  req.pageout = !a.no_pageout;
  req.charged_to = {a.containers, a.cgroups};
  req.keep_containers = a.keep_containers;
  req.max_bytes = a.max_bytes;
  req.metadata_root = a.metadata_root;
  auto r = policy::run_evict_pass(req);
  if (!r) {
    log::error("{}", terminal_safe(r.err().message()));
    return exit_failure;
  }
  output::write_evict_diagnostics(stderr, *r);
  if (!r->usage_errors.empty()) return exit_usage;
  if (r->refused) return exit_failure;
  output::write_evict(std::cout, stderr, *r, {a.json, a.bytes});
  std::cout.flush();
  return r->failed || !std::cout ? exit_failure : exit_ok;
}

}  // namespace dupcache
